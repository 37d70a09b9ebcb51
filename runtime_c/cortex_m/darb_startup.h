/*
 * darb_startup.h - what darb_startup.c offers the target harness.
 */
#ifndef DARB_STARTUP_H
#define DARB_STARTUP_H

#include <stdint.h>

/* Call run(in, out) and return the bytes of stack it used: the free stack
 * is painted first, and the deepest word the call changed found after. */
uint32_t darb_stack_call(void (*run)(const void *in, void *out), const void *in, void *out);

#endif /* DARB_STARTUP_H */
