/*
 * darb_semihost.c - Arm semihosting calls for the Cortex-M target harness.
 */
#include "darb_semihost.h"

#define SYS_OPEN 0x01u
#define SYS_CLOSE 0x02u
#define SYS_WRITE0 0x04u
#define SYS_WRITE 0x05u
#define SYS_READ 0x06u
#define SYS_EXIT 0x18u
#define SYS_EXIT_EXTENDED 0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

static int32_t darb_sh_call(uint32_t op, const void *args)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = args;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return (int32_t)r0;
}

static uint32_t darb_strlen(const char *s)
{
    uint32_t n = 0;
    while (s[n] != '\0') {
        ++n;
    }
    return n;
}

int32_t darb_sh_open(const char *name, uint32_t mode)
{
    const uint32_t args[3] = { (uint32_t)(uintptr_t)name, mode, darb_strlen(name) };
    return darb_sh_call(SYS_OPEN, args);
}

int darb_sh_read(int32_t handle, void *buf, uint32_t n)
{
    const uint32_t args[3] = { (uint32_t)handle, (uint32_t)(uintptr_t)buf, n };
    return darb_sh_call(SYS_READ, args) == 0;        /* the call returns the bytes NOT read */
}

int darb_sh_write(int32_t handle, const void *buf, uint32_t n)
{
    const uint32_t args[3] = { (uint32_t)handle, (uint32_t)(uintptr_t)buf, n };
    return darb_sh_call(SYS_WRITE, args) == 0;       /* the bytes NOT written */
}

int darb_sh_close(int32_t handle)
{
    const uint32_t args[1] = { (uint32_t)handle };
    return darb_sh_call(SYS_CLOSE, args) == 0;
}

void darb_sh_puts(const char *text)
{
    (void)darb_sh_call(SYS_WRITE0, text);
}

void darb_sh_exit(int status)
{
    const uint32_t args[2] = { ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status };
    (void)darb_sh_call(SYS_EXIT_EXTENDED, args);
    for (;;) {
        /* not reached: the simulator has stopped */
    }
}
