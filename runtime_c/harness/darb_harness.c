/*
 * darb_harness.c - runs generated layers on test vectors (the loop shared by
 * the host and the Cortex-M harness; darb_harness_host.c and
 * darb_harness_target.c supply main() and the I/O).
 *
 * IN:  uint32 magic 0x44524231 ("DRB1"), uint32 n (= darb_harness_count),
 *      then for each layer in turn: uint32 count, and count input vectors of
 *      in_bytes each (little-endian, native types).
 * OUT: for each layer in turn, its count output vectors of out_bytes each.
 *
 * The loop returns 0 on success, 2 with a message when the file does not
 * match the table. Used by darbgen.verify.
 */
#include "darb_harness.h"

#define DARB_HARNESS_MAGIC 0x44524231u

static int darb_harness_fail(const darb_harness_io *io, const char *what)
{
    io->error(what);
    return 2;
}

int darb_harness_loop(const darb_harness_io *io)
{
    uint32_t header[2];
    uint32_t count;
    uint32_t layer;
    if (!io->read(io->ctx, header, sizeof header) || header[0] != DARB_HARNESS_MAGIC ||
        header[1] != darb_harness_count) {
        return darb_harness_fail(io, "input file header does not match this harness");
    }
    for (layer = 0; layer < darb_harness_count; ++layer) {
        const darb_harness_entry *e = &darb_harness_layers[layer];
        uint32_t v;
        if (!io->read(io->ctx, &count, sizeof count)) {
            return darb_harness_fail(io, "input file truncated at a vector count");
        }
        for (v = 0; v < count; ++v) {
            if (!io->read(io->ctx, darb_harness_in_buf, e->in_bytes)) {
                return darb_harness_fail(io, "input file truncated");
            }
            if (io->call != 0) {
                io->call(io->ctx, layer, e->run, darb_harness_in_buf, darb_harness_out_buf);
            } else {
                e->run(darb_harness_in_buf, darb_harness_out_buf);
            }
            if (!io->write(io->ctx, darb_harness_out_buf, e->out_bytes)) {
                return darb_harness_fail(io, "cannot write the output file");
            }
        }
    }
    return 0;
}
