/*
 * darb_startup.c - start-up code and vector table for darbgen's Cortex-M
 * test images (QEMU's MPS2 / MPS3 boards; linked with darb_cortex_m.ld).
 *
 * Reset copies .data from flash, clears .bss, turns the FPU (and MVE) on
 * where the core has one, and runs main(); its return value becomes the
 * simulator's exit status over semihosting. Every fault or unexpected
 * exception prints its name and exits with status 3, so a crash never
 * leaves a simulator running.
 *
 * darb_stack_call() measures the stack a call needs: paint the free stack,
 * call, and find the deepest word that changed.
 */
#include <stdint.h>

#include "darb_semihost.h"
#include "darb_startup.h"

extern uint32_t __data_load[];
extern uint32_t __data_start[];
extern uint32_t __data_end[];
extern uint32_t __bss_start[];
extern uint32_t __bss_end[];
extern uint32_t __stack_limit[];
extern uint32_t __stack_top[];

int main(void);
void darb_reset_handler(void);

#define DARB_STACK_PAINT 0xA5A5A5A5u

static void darb_fault(const char *what)
{
    darb_sh_puts("darb: ");
    darb_sh_puts(what);
    darb_sh_puts(" on the target (a crash in generated or runtime code)\n");
    darb_sh_exit(3);
}

static void darb_nmi_handler(void) { darb_fault("NMI"); }
static void darb_hardfault_handler(void) { darb_fault("HardFault"); }
static void darb_memmanage_handler(void) { darb_fault("MemManage fault"); }
static void darb_busfault_handler(void) { darb_fault("BusFault"); }
static void darb_usagefault_handler(void) { darb_fault("UsageFault"); }
static void darb_securefault_handler(void) { darb_fault("SecureFault"); }
static void darb_other_handler(void) { darb_fault("unexpected exception"); }

typedef struct {
    uint32_t *initial_sp;
    void (*handlers[15])(void);
} darb_vector_table;

__attribute__((section(".vectors"), used)) static const darb_vector_table darb_vectors = {
    __stack_top,
    {
        darb_reset_handler, darb_nmi_handler, darb_hardfault_handler, darb_memmanage_handler,
        darb_busfault_handler, darb_usagefault_handler, darb_securefault_handler, darb_other_handler,
        darb_other_handler, darb_other_handler, darb_other_handler, darb_other_handler,
        darb_other_handler, darb_other_handler, darb_other_handler,
    },
};

__attribute__((noinline)) uint32_t darb_stack_call(void (*run)(const void *in, void *out), const void *in,
                                                   void *out)
{
    uint32_t *sp;
    /* volatile: the compiler must not turn the loop into a memset call, whose
     * own frame would lie in the region being painted */
    volatile uint32_t *p = __stack_limit;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    /* the stack below sp is free: paint it (this loop itself keeps to registers) */
    while (p < sp) {
        *p++ = DARB_STACK_PAINT;
    }
    run(in, out);
    p = __stack_limit;
    while (p < sp && *p == DARB_STACK_PAINT) {
        ++p;
    }
    return (uint32_t)(sp - p) * 4u;
}

void darb_reset_handler(void)
{
    uint32_t *src = __data_load;
    uint32_t *dst = __data_start;
    while (dst < __data_end) {
        *dst++ = *src++;
    }
    for (dst = __bss_start; dst < __bss_end; ++dst) {
        *dst = 0u;
    }
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    /* CPACR: full access to coprocessors 10 and 11 (the FPU and MVE) */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    darb_sh_exit(main());
}
