/*
 * darb_harness.h - the table a generated test harness provides, and the loop
 * that runs it (darb_harness.c).
 */
#ifndef DARB_HARNESS_H
#define DARB_HARNESS_H

#include <stdint.h>

typedef struct {
    const char *name;
    uint32_t in_bytes;                       /* bytes of one input vector */
    uint32_t out_bytes;                      /* bytes of one output vector */
    void (*run)(const void *in, void *out);  /* wraps <layer>_run */
} darb_harness_entry;

extern const darb_harness_entry darb_harness_layers[];
extern const uint32_t darb_harness_count;
/* Scratch for one vector, at least the largest in_bytes / out_bytes, 8-aligned. */
extern int64_t darb_harness_in_buf[];
extern int64_t darb_harness_out_buf[];

typedef void (*darb_harness_run_fn)(const void *in, void *out);

/* Where the loop reads vectors and writes results: read / write return 1
 * when all n bytes moved; call (optional) makes each run(in, out) call, to
 * measure it. */
typedef struct {
    void *ctx;
    int (*read)(void *ctx, void *buf, uint32_t n);
    int (*write)(void *ctx, const void *buf, uint32_t n);
    void (*error)(const char *what);
    void (*call)(void *ctx, uint32_t layer, darb_harness_run_fn run, const void *in, void *out);
} darb_harness_io;

/* Run every layer of the table on the input stream: 0, or 2 after io->error. */
int darb_harness_loop(const darb_harness_io *io);

#endif /* DARB_HARNESS_H */
