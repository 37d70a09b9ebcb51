/*
 * cmsis_compiler.h - darbgen's own stand-in for CMSIS core's compiler header,
 * just large enough to build CMSIS-DSP's arm_mat_vec_mult_q7.c (and the
 * headers it includes: arm_math_types.h, arm_math_memory.h, dsp/none.h,
 * dsp/utils.h, dsp/matrix_functions.h) with arm-none-eabi-gcc for the
 * Cortex-M cores darbgen supports (M0+, M3, M4, M7, M33, M55).
 *
 * CMSIS-DSP's source distribution on PyPI does not ship CMSIS core, whose
 * cmsis_compiler.h / cmsis_gcc.h arm_math_types.h includes. This file is
 * written from scratch for darbgen's CMSIS-DSP benchmark (it is not ARM's
 * header): it defines only what that code uses, in plain C, gcc builtins
 * and one-instruction inline assembly.
 *
 *   __STATIC_INLINE, __STATIC_FORCEINLINE   inline helper functions
 *   __ALIGNED(x), __WEAK                    attributes
 *   __CLZ(x)                                count leading zeros (32 for 0)
 *   __SSAT(x, n)                            saturate to n-bit signed
 *   __ROR(x, n)                             rotate right
 *   __SXTB16(x), __SMLAD(x, y, acc)         the DSP extension's SIMD
 *                                           sign-extend and dual multiply-add
 *
 * __SXTB16 and __SMLAD are defined only when the core has the DSP
 * extension (__ARM_FEATURE_DSP: M4, M7, M33, M55). Without it (M0+, M3)
 * CMSIS-DSP's dsp/none.h supplies plain C versions of them, which must not
 * collide with ours. __SSAT uses the SSAT instruction where the core has it
 * (__ARM_FEATURE_SAT: ARMv7-M and ARMv8-M Mainline), plain C otherwise.
 *
 * All of them compute exactly what the instructions compute: SMLAD adds
 * the two 16x16-bit products to the accumulator modulo 2^32 (it only sets
 * the Q flag on overflow), SXTB16 sign-extends bytes 0 and 2 into the two
 * halfwords, SSAT clamps to [-2^(n-1), 2^(n-1) - 1].
 *
 * SSAT, SXTB16 and SMLAD are one-instruction inline assembly, SSAT and
 * SMLAD volatile, because that is how CMSIS core builds them for gcc, and
 * the benchmark must measure the code CMSIS users get. It matters: gcc 12
 * may reorder the builtins (__builtin_arm_smlad, ...) freely, and its
 * pre-register-allocation scheduler then hoists the loads and extends of
 * arm_mat_vec_mult_q7's four-row loop, runs out of registers and spills
 * (36 instead of 31 instructions a step on the M4, +16%); with volatile
 * asm the SMLADs stay in source order and nothing spills. Likewise a
 * builtin SSAT would absorb the `>> 7` before it (SSAT's shift operand),
 * one instruction an output fewer than CMSIS core's asm.
 */
#ifndef DARB_CMSIS_COMPILER_H
#define DARB_CMSIS_COMPILER_H

#include <stdint.h>

#if !defined(__GNUC__) || !defined(__arm__)
#error "darbgen's cmsis_compiler.h is for arm-none-eabi-gcc only"
#endif

#ifndef __STATIC_INLINE
#define __STATIC_INLINE static inline
#endif
#ifndef __STATIC_FORCEINLINE
#define __STATIC_FORCEINLINE __attribute__((always_inline)) static inline
#endif
#ifndef __ALIGNED
#define __ALIGNED(x) __attribute__((aligned(x)))
#endif
#ifndef __WEAK
#define __WEAK __attribute__((weak))
#endif

/* Leading zeros of a 32-bit word; 32 for 0, as the CLZ instruction gives
 * (gcc folds the test into the instruction where the core has one). */
__STATIC_FORCEINLINE uint8_t __CLZ(uint32_t value)
{
    return (uint8_t)(value == 0u ? 32 : __builtin_clz(value));
}

/* Rotate right by n bits (n taken modulo 32); gcc emits one ROR. */
__STATIC_FORCEINLINE uint32_t __ROR(uint32_t value, uint32_t n)
{
    n &= 31u;
    return n == 0u ? value : (value >> n) | (value << (32u - n));
}

#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
/* SSAT: the bit count must be a constant from 1 to 32, as for the instruction. */
#define __SSAT(value, bits)                                                        \
    __extension__({                                                                \
        int32_t darb_ssat_in_ = (int32_t)(value);                                  \
        int32_t darb_ssat_out_;                                                    \
        __asm__ volatile("ssat %0, %1, %2"                                         \
                         : "=r"(darb_ssat_out_)                                    \
                         : "I"(bits), "r"(darb_ssat_in_)                           \
                         : "cc");                                                  \
        darb_ssat_out_;                                                            \
    })
#else
__STATIC_FORCEINLINE int32_t darb_cmsis_ssat(int32_t value, uint32_t bits)
{
    int32_t hi;
    if (bits == 0u || bits >= 32u) {
        return value;
    }
    hi = (int32_t)((1u << (bits - 1u)) - 1u);
    if (value > hi) {
        return hi;
    }
    if (value < -hi - 1) {
        return -hi - 1;
    }
    return value;
}
#define __SSAT(value, bits) darb_cmsis_ssat((int32_t)(value), (uint32_t)(bits))
#endif

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* SXTB16: bytes 0 and 2 of value, each sign-extended to a halfword. */
__STATIC_FORCEINLINE uint32_t __SXTB16(uint32_t value)
{
    uint32_t result;
    __asm__("sxtb16 %0, %1" : "=r"(result) : "r"(value));
    return result;
}

/* SMLAD: acc + lo(x) * lo(y) + hi(x) * hi(y), halfwords signed, modulo 2^32. */
__STATIC_FORCEINLINE uint32_t __SMLAD(uint32_t x, uint32_t y, uint32_t acc)
{
    uint32_t result;
    __asm__ volatile("smlad %0, %1, %2, %3" : "=r"(result) : "r"(x), "r"(y), "r"(acc));
    return result;
}
#endif

#endif /* DARB_CMSIS_COMPILER_H */
