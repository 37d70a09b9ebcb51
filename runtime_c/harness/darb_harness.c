/*
 * darb_harness.c - runs generated layers on test vectors from a file.
 *
 *   harness IN OUT
 *
 * IN:  uint32 magic 0x44524231 ("DRB1"), uint32 n (= darb_harness_count),
 *      then for each layer in turn: uint32 count, and count input vectors of
 *      in_bytes each (little-endian, native types).
 * OUT: for each layer in turn, its count output vectors of out_bytes each.
 *
 * Exit status 0 on success; 2 with a message on stderr when the file does
 * not match the table. Used by darbgen.verify on the host (and, over
 * semihosting, on the target).
 */
#include <stdio.h>

#include "darb_harness.h"

#define DARB_HARNESS_MAGIC 0x44524231u

static int fail(const char *what)
{
    fprintf(stderr, "darb_harness: %s\n", what);
    return 2;
}

static int read_u32(FILE *f, uint32_t *value)
{
    return fread(value, sizeof *value, 1, f) == 1;
}

int main(int argc, char **argv)
{
    FILE *in;
    FILE *out;
    uint32_t magic;
    uint32_t n;
    uint32_t count;
    uint32_t layer;
    int status = 0;
    if (argc != 3) {
        return fail("usage: harness IN OUT");
    }
    in = fopen(argv[1], "rb");
    if (in == 0) {
        return fail("cannot open the input file");
    }
    if (!read_u32(in, &magic) || magic != DARB_HARNESS_MAGIC || !read_u32(in, &n) || n != darb_harness_count) {
        fclose(in);
        return fail("input file header does not match this harness");
    }
    out = fopen(argv[2], "wb");
    if (out == 0) {
        fclose(in);
        return fail("cannot open the output file");
    }
    for (layer = 0; layer < n && status == 0; ++layer) {
        const darb_harness_entry *e = &darb_harness_layers[layer];
        uint32_t v;
        if (!read_u32(in, &count)) {
            status = fail("input file truncated at a vector count");
            break;
        }
        for (v = 0; v < count; ++v) {
            if (fread(darb_harness_in_buf, 1, e->in_bytes, in) != e->in_bytes) {
                status = fail("input file truncated");
                break;
            }
            e->run(darb_harness_in_buf, darb_harness_out_buf);
            if (fwrite(darb_harness_out_buf, 1, e->out_bytes, out) != e->out_bytes) {
                status = fail("cannot write the output file");
                break;
            }
        }
    }
    fclose(in);
    if (fclose(out) != 0 && status == 0) {
        status = fail("cannot close the output file");
    }
    return status;
}
