/*
 * darb_semihost.h - the few Arm semihosting calls darbgen's target harness
 * needs (file I/O with the host, console messages, exit with a status), for
 * Cortex-M cores running in QEMU (-semihosting-config enable=on).
 *
 * On M-profile cores a semihosting call is `bkpt 0xab` with the operation in
 * r0 and a pointer to its argument block in r1; the result comes back in r0.
 */
#ifndef DARB_SEMIHOST_H
#define DARB_SEMIHOST_H

#include <stdint.h>

#define DARB_SH_OPEN_RB 1u  /* fopen mode "rb" */
#define DARB_SH_OPEN_WB 5u  /* fopen mode "wb" */

/* A host file handle, or -1 */
int32_t darb_sh_open(const char *name, uint32_t mode);
/* 1 when all n bytes were read / written, else 0 */
int darb_sh_read(int32_t handle, void *buf, uint32_t n);
int darb_sh_write(int32_t handle, const void *buf, uint32_t n);
int darb_sh_close(int32_t handle);
/* a zero-terminated message on the host's console */
void darb_sh_puts(const char *text);
/* end the simulation with exit status `status` (0: success) */
void darb_sh_exit(int status) __attribute__((noreturn));

#endif /* DARB_SEMIHOST_H */
