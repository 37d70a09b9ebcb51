/*
 * darb_harness_host.c - the host test harness: files through stdio.
 *
 *   darb_harness IN OUT
 *
 * Exit status 0 on success; 2 with a message on stderr when the input file
 * does not match the table (format: darb_harness.c).
 */
#include <stdio.h>

#include "darb_harness.h"

typedef struct {
    FILE *in;
    FILE *out;
} darb_host_files;

static int darb_host_read(void *ctx, void *buf, uint32_t n)
{
    return fread(buf, 1, n, ((darb_host_files *)ctx)->in) == n;
}

static int darb_host_write(void *ctx, const void *buf, uint32_t n)
{
    return fwrite(buf, 1, n, ((darb_host_files *)ctx)->out) == n;
}

static void darb_host_error(const char *what)
{
    fprintf(stderr, "darb_harness: %s\n", what);
}

int main(int argc, char **argv)
{
    darb_host_files files;
    darb_harness_io io;
    int status;
    if (argc != 3) {
        darb_host_error("usage: darb_harness IN OUT");
        return 2;
    }
    files.in = fopen(argv[1], "rb");
    if (files.in == 0) {
        darb_host_error("cannot open the input file");
        return 2;
    }
    files.out = fopen(argv[2], "wb");
    if (files.out == 0) {
        fclose(files.in);
        darb_host_error("cannot open the output file");
        return 2;
    }
    io.ctx = &files;
    io.read = darb_host_read;
    io.write = darb_host_write;
    io.error = darb_host_error;
    io.call = 0;
    status = darb_harness_loop(&io);
    fclose(files.in);
    if (fclose(files.out) != 0 && status == 0) {
        darb_host_error("cannot close the output file");
        status = 2;
    }
    return status;
}
