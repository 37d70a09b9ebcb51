/*
 * darb_harness.h - the table a generated test harness provides.
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

#endif /* DARB_HARNESS_H */
