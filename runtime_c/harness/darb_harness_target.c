/*
 * darb_harness_target.c - the Cortex-M test harness, run in QEMU: files on
 * the host through semihosting (inputs.bin and outputs.bin in QEMU's working
 * folder; format: darb_harness.c), the exit status through semihosting.
 *
 * It also measures the stack each layer needs (darb_stack_call paints the
 * free stack, makes the call and finds the deepest word it changed) and
 * writes the largest figure per layer to stack.bin (uint32 each, in table
 * order).
 */
#include "darb_harness.h"
#include "darb_semihost.h"
#include "darb_startup.h"

#define DARB_MAX_UNITS 256u

typedef struct {
    int32_t in;
    int32_t out;
} darb_target_files;

static uint32_t darb_stack_max[DARB_MAX_UNITS];

static int darb_target_read(void *ctx, void *buf, uint32_t n)
{
    return darb_sh_read(((darb_target_files *)ctx)->in, buf, n);
}

static int darb_target_write(void *ctx, const void *buf, uint32_t n)
{
    return darb_sh_write(((darb_target_files *)ctx)->out, buf, n);
}

static void darb_target_error(const char *what)
{
    darb_sh_puts("darb_harness: ");
    darb_sh_puts(what);
    darb_sh_puts("\n");
}

static void darb_harness_call_measured(void *ctx, uint32_t layer, darb_harness_run_fn run, const void *in,
                                       void *out)
{
    const uint32_t used = darb_stack_call(run, in, out);
    (void)ctx;
    if (layer < DARB_MAX_UNITS && used > darb_stack_max[layer]) {
        darb_stack_max[layer] = used;
    }
}

int main(void)
{
    darb_target_files files;
    darb_harness_io io;
    int32_t stack_file;
    int status;
    if (darb_harness_count > DARB_MAX_UNITS) {
        darb_target_error("too many layers for the target harness");
        return 2;
    }
    files.in = darb_sh_open("inputs.bin", DARB_SH_OPEN_RB);
    files.out = darb_sh_open("outputs.bin", DARB_SH_OPEN_WB);
    if (files.in < 0 || files.out < 0) {
        darb_target_error("cannot open inputs.bin / outputs.bin on the host");
        return 2;
    }
    io.ctx = &files;
    io.read = darb_target_read;
    io.write = darb_target_write;
    io.error = darb_target_error;
    io.call = darb_harness_call_measured;
    status = darb_harness_loop(&io);
    (void)darb_sh_close(files.in);
    if (!darb_sh_close(files.out) && status == 0) {
        darb_target_error("cannot close outputs.bin");
        status = 2;
    }
    stack_file = darb_sh_open("stack.bin", DARB_SH_OPEN_WB);
    if (stack_file < 0 || !darb_sh_write(stack_file, darb_stack_max, darb_harness_count * 4u) ||
        !darb_sh_close(stack_file)) {
        darb_target_error("cannot write stack.bin");
        status = status == 0 ? 2 : status;
    }
    return status;
}
