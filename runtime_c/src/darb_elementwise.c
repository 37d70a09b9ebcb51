/*
 * darb_elementwise.c - ADD, QUANTIZE, DEQUANTIZE, CONCATENATION and PAD,
 * bit-exact with TensorFlow Lite Micro's reference kernels (int8) and with
 * darbgen's NumPy float32 references (darbgen/ops/elementwise.py,
 * darbgen/ops/shape_ops.py). See darb_ops_elementwise.h.
 */
#include <string.h>

#include "darb.h"
#include "darb_ops_elementwise.h"

static inline int32_t darb_clamp_s8(int32_t v, int32_t lo, int32_t hi)
{
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/* ---- ADD ------------------------------------------------------------------ */

/*
 * TFLM's int8 ADD, for every value: a = in + input_offset (|a| <= 255),
 * f = RDBP(SRDHM(a << left_shift, multiplier), -shift) per input, then
 * RDBP(SRDHM(f1 + f2, output_multiplier), -output_shift) + output_offset and
 * the clamp (SRDHM: gemmlowp's SaturatingRoundingDoublingHighMul, RDBP:
 * RoundingDivideByPOT). The general loop does exactly that. The fast loops
 * compute the same integers in fewer steps, for the parameters TFLM's
 * Prepare gives (add_params in darbgen/ops/elementwise.py):
 *
 * - The input with the larger scale has multiplier 2^30 and shift 0 (its
 *   real multiplier is exactly 1/2): SRDHM(a << L, 2^30) = (a * 2^L + 1) >> 1
 *   = a * 2^(L-1), no rounding at all. darb_add_fast_of picks it as the
 *   "unit" input u; the other, s, has shift -e <= -1 (or is a unit input
 *   too, when both scales are equal).
 * - SRDHM(x, m) = (x * m + 2^30) >> 31 = (2x * m + 2^31) >> 32: one SMMULR
 *   of 2x (Armv7E-M), one VQRDMULH of x (MVE).
 * - RDBP(v, e) for e >= 1 is (v + 2^(e-1) - (v < 0)) >> e. Where v =
 *   SRDHM(x, m) with m >= 0, "v < 0" may be replaced by "x < 0": the two
 *   differ only when v = 0 and x < 0, and then (2^(e-1) - 1) >> e = 0 as
 *   well. x is known before the multiplication, so the correction joins
 *   the multiply-accumulate's addend (SMMLAR, VQRDMLAH).
 * - The output zero point joins the rounding constant: (w + o * 2^e) >> e
 *   = (w >> e) + o (scalar paths, e <= 21 keeps every sum inside int32).
 *
 * Bounds (L <= 20): |a * 2^(L+1)| <= 255 * 2^21 < 2^29; |f1 + f2| <= 255 *
 * 2^L, so 2 (f1 + f2) < 2^30. Other parameters (never made by TFLM's
 * Prepare: a left_shift above 20, no unit input, a negative multiplier, an
 * output shift of 0, below -21 for the scalar paths) take the general loop,
 * as does -DDARB_COMPACT.
 *
 * Loops: MVE (Cortex-M55), four values a vector; Armv7E-M / Armv8-M DSP
 * (Cortex-M4, M7, M33) with L = 20, asm with SSAT, narrower clamps in a
 * second pass four bytes a word; plain C with 64-bit products elsewhere
 * (Cortex-M0+, M3, hosts, and -O0).
 */
/* (not inlined: its spills stay off the fast paths' stack) */
static void __attribute__((noinline)) darb_add_general(const darb_add_s8_params *params, const int8_t *in1,
                                                       const int8_t *in2, int8_t *out, uint32_t n)
{
    const darb_add_s8_params p = *params;
    uint32_t i;
    for (i = 0; i < n; ++i) {
        /* |in + offset| <= 255, so the shift by 20 stays far inside int32 */
        const int32_t shifted1 = (int32_t)(in1[i] + p.input1_offset) * ((int32_t)1 << p.left_shift);
        const int32_t shifted2 = (int32_t)(in2[i] + p.input2_offset) * ((int32_t)1 << p.left_shift);
        /* shifts are <= 0: darb_requantize_fast is then exactly gemmlowp's
         * SaturatingRoundingDoublingHighMul + RoundingDivideByPOT */
        const int32_t scaled1 = darb_requantize_fast(shifted1, p.input1_multiplier, p.input1_shift);
        const int32_t scaled2 = darb_requantize_fast(shifted2, p.input2_multiplier, p.input2_shift);
        const int32_t raw = darb_requantize_fast(scaled1 + scaled2, p.output_multiplier, p.output_shift) +
                            p.output_offset;
        out[i] = (int8_t)darb_clamp_s8(raw, p.act_min, p.act_max);
    }
}

#ifndef DARB_COMPACT
/* the asm paths are in gcc's (and clang's) syntax; not at -O0, where the
 * frame pointer takes a register they need */
#if defined(__GNUC__) && defined(__OPTIMIZE__) && defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#define DARB_ADD_MVE 1
#elif defined(__GNUC__) && defined(__OPTIMIZE__) && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP == 1
#define DARB_ADD_DSP 1
#endif

/* The fast loops' constants (see above). */
typedef struct {
    const int8_t *s;        /* the scaled input (a unit input too when both are) */
    const int8_t *u;        /* the unit input */
    int32_t both_unit;      /* both inputs have multiplier 2^30, shift 0 */
    int32_t left;           /* L */
    int32_t s_off;          /* input offset of s */
    int32_t u_off;          /* input offset of u */
    int32_t s_mult;
    int32_t s_exp;          /* e of s, >= 1 (unless both_unit) */
    int32_t out_mult;
    int32_t out_exp;        /* 1..31 (1..21 for the scalar path) */
    int32_t out_off;
    int32_t act_min;
    int32_t act_max;
} darb_add_fast;

static int darb_add_is_unit(int32_t multiplier, int32_t shift)
{
    return multiplier == ((int32_t)1 << 30) && shift == 0;
}

/* Fills f and returns 1 when the fast loops apply (see above), else 0. */
static int darb_add_fast_of(const darb_add_s8_params *p, const int8_t *in1, const int8_t *in2, uint32_t max_out_exp,
                            darb_add_fast *f)
{
    const int unit1 = darb_add_is_unit(p->input1_multiplier, p->input1_shift);
    const int unit2 = darb_add_is_unit(p->input2_multiplier, p->input2_shift);
    const int swap = !unit2; /* s = in1, u = in2 unless only in1 is a unit input */
    const int32_t s_mult = swap ? p->input2_multiplier : p->input1_multiplier;
    const int32_t s_shift = swap ? p->input2_shift : p->input1_shift;
    if (!(unit1 || unit2) || p->left_shift < 1 || p->left_shift > 20 || p->output_multiplier < 0 ||
        p->output_shift > -1 || p->output_shift < -(int32_t)max_out_exp) {
        return 0;
    }
    f->both_unit = unit1 && unit2;
    if (!f->both_unit && (s_mult < 0 || s_shift > -1 || s_shift < -31)) {
        return 0;
    }
    f->s = swap ? in2 : in1;
    f->u = swap ? in1 : in2;
    f->left = p->left_shift;
    f->s_off = swap ? p->input2_offset : p->input1_offset;
    f->u_off = swap ? p->input1_offset : p->input2_offset;
    f->s_mult = s_mult;
    f->s_exp = -s_shift;
    f->out_mult = p->output_multiplier;
    f->out_exp = -p->output_shift;
    f->out_off = p->output_offset;
    f->act_min = p->act_min;
    f->act_max = p->act_max;
    return 1;
}
#endif /* DARB_COMPACT */

#if defined(DARB_ADD_MVE)
#include <arm_mve.h>

/*
 * Four values a step in a tail-predicated loop (VLDRB.S32 widens them).
 * Scaled input: t = x * 2^L + s_off * 2^L (VMLAS), w = (t < 0 ? -1 : 0) +
 * VQRDMULH(t, m) (VQRDMLAH into the sign), f = VRSHL(w, -e) = (w + 2^(e-1))
 * >> e. Unit input: sum = f + x * 2^(L-1) (VMLA) + u_off * 2^(L-1). Output:
 * (sum < 0 ? -1 : 0) + VQRDMULH(sum, out_mult), VRSHL by -out_exp, plus the
 * zero point, clamped, stored as bytes (VSTRB.32).
 */
static void darb_add_mve(const darb_add_fast *f, int8_t *out, uint32_t n)
{
    const int8_t *ps = f->s;
    const int8_t *pu = f->u;
    const int32x4_t scale = vdupq_n_s32((int32_t)1 << f->left);
    const int32x4_t lo = vdupq_n_s32(f->act_min);
    const int32x4_t hi = vdupq_n_s32(f->act_max);
    const int32_t half = (int32_t)1 << (f->left - 1);
    const int32_t neg_out_exp = -f->out_exp;
    if (f->both_unit) {
        /* sum = (x_s + x_u) * 2^(L-1) + (s_off + u_off) * 2^(L-1) */
        const int32_t k = (f->s_off + f->u_off) * half;
        const int32x4_t half_v = vdupq_n_s32(half);
        __asm__ volatile("dlstp.32     lr, %[n]\n\t"
                         "1:\n\t"
                         "vldrb.s32    q0, [%[ps]], #4\n\t"
                         "vldrb.s32    q1, [%[pu]], #4\n\t"
                         "vadd.i32     q0, q0, q1\n\t"
                         "vmlas.u32    q0, %q[half], %[k]\n\t"
                         "vshr.s32     q1, q0, #31\n\t"
                         "vqrdmlah.s32 q1, q0, %[om]\n\t"
                         "vrshl.s32    q1, %[oe]\n\t"
                         "vadd.i32     q1, q1, %[oo]\n\t"
                         "vmax.s32     q1, q1, %q[lo]\n\t"
                         "vmin.s32     q1, q1, %q[hi]\n\t"
                         "vstrb.32     q1, [%[po]], #4\n\t"
                         "letp         lr, 1b\n\t"
                         : [ps] "+l"(ps), [pu] "+l"(pu), [po] "+l"(out)
                         : [n] "r"(n), [half] "w"(half_v), [k] "r"(k), [om] "r"(f->out_mult), [oe] "r"(neg_out_exp),
                           [oo] "r"(f->out_off), [lo] "w"(lo), [hi] "w"(hi)
                         : "q0", "q1", "lr", "memory");
    } else {
        const int32_t ks = f->s_off * ((int32_t)1 << f->left);
        const int32_t ku = f->u_off * half;
        const int32_t neg_s_exp = -f->s_exp;
        __asm__ volatile("dlstp.32     lr, %[n]\n\t"
                         "1:\n\t"
                         "vldrb.s32    q0, [%[ps]], #4\n\t"
                         "vmlas.u32    q0, %q[scale], %[ks]\n\t"
                         "vshr.s32     q1, q0, #31\n\t"
                         "vqrdmlah.s32 q1, q0, %[sm]\n\t"
                         "vrshl.s32    q1, %[se]\n\t"
                         "vldrb.s32    q0, [%[pu]], #4\n\t"
                         "vmla.u32     q1, q0, %[half]\n\t"
                         "vadd.i32     q1, q1, %q[ku]\n\t"
                         "vshr.s32     q0, q1, #31\n\t"
                         "vqrdmlah.s32 q0, q1, %[om]\n\t"
                         "vrshl.s32    q0, %[oe]\n\t"
                         "vadd.i32     q0, q0, %q[oo]\n\t"
                         "vmax.s32     q0, q0, %q[lo]\n\t"
                         "vmin.s32     q0, q0, %q[hi]\n\t"
                         "vstrb.32     q0, [%[po]], #4\n\t"
                         "letp         lr, 1b\n\t"
                         : [ps] "+l"(ps), [pu] "+l"(pu), [po] "+l"(out)
                         : [n] "r"(n), [scale] "w"(scale), [ks] "r"(ks), [sm] "r"(f->s_mult), [se] "r"(neg_s_exp),
                           [half] "r"(half), [ku] "w"(vdupq_n_s32(ku)), [om] "r"(f->out_mult),
                           [oe] "r"(neg_out_exp), [oo] "w"(vdupq_n_s32(f->out_off)), [lo] "w"(lo), [hi] "w"(hi)
                         : "q0", "q1", "lr", "memory");
    }
}

#elif !defined(DARB_COMPACT)

/* c + ((x * m + 2^31) >> 32) (SMMLAR) */
static inline int32_t darb_add_mlar(int32_t x, int32_t m, int32_t c)
{
    return c + (int32_t)(((int64_t)x * m + ((int64_t)1 << 31)) >> 32);
}

/*
 * One value. t = a_s * 2^(L+1): SRDHM(a_s << L, m) = SMMULR(t, m), so
 * f_s = (SMMLAR(t, m, 2^(e-1)) + (t >> 31)) >> e. Twice the sum: x2 =
 * a_u * 2^L + 2 f_s (f_u = a_u * 2^(L-1)); SRDHM(sum, out_mult) =
 * SMMULR(x2, out_mult), and the output is (SMMLAR(x2, out_mult, 2^(eo-1) +
 * out_off * 2^eo) + (x2 >> 31)) >> eo, clamped.
 */
static inline int8_t darb_add_one(int32_t xs, int32_t xu, int32_t ks, int32_t sm, int32_t sc, int32_t se,
                                  int32_t ls, int32_t ku, int32_t om, int32_t oc, int32_t oe, int32_t lo,
                                  int32_t hi, int both_unit)
{
    int32_t x2;
    int32_t v;
    if (both_unit) {
        x2 = (xs + xu) * ls + ks;
    } else {
        const int32_t t = xs * (ls * 2) + ks;
        const int32_t fs = (darb_add_mlar(t, sm, sc) + (t >> 31)) >> se;
        x2 = xu * ls + ku + fs * 2;
    }
    v = (darb_add_mlar(x2, om, oc) + (x2 >> 31)) >> oe;
    v = v < lo ? lo : v;
    v = v > hi ? hi : v;
    return (int8_t)v;
}

static inline void darb_add_loop(const darb_add_fast *f, int8_t *out, uint32_t n, int both_unit)
{
    const int8_t *ps = f->s;
    const int8_t *pu = f->u;
    const int32_t ls = (int32_t)1 << f->left;
    /* both_unit: x2 = (x_s + x_u + s_off + u_off) * 2^L */
    const int32_t ks = both_unit ? (f->s_off + f->u_off) * ls : f->s_off * (ls * 2);
    const int32_t ku = f->u_off * ls;
    const int32_t sc = both_unit ? 0 : (int32_t)1 << (f->s_exp - 1);
    const int32_t oc = ((int32_t)1 << (f->out_exp - 1)) + f->out_off * ((int32_t)1 << f->out_exp);
    uint32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = darb_add_one(ps[i], pu[i], ks, f->s_mult, sc, f->s_exp, ls, ku, f->out_mult, oc, f->out_exp,
                              f->act_min, f->act_max, both_unit);
    }
}

#if defined(DARB_ADD_DSP)
/*
 * darb_add_one for L = 20 (TFLM's) as asm, two values a step: 13
 * instructions a value (9 with both inputs unit), SSAT for the int8 range;
 * gcc's own code shifted by registers and spilled (14 registers live).
 */
#define DARB_ADD_DSP_SCALED                             \
    "ldrsb  %[b], [%[ps]], #1\n\t"                      \
    "add    %[b], %[ks], %[b], lsl #21\n\t"             \
    "smmlar %[c], %[b], %[sm], %[sc]\n\t"               \
    "add    %[c], %[c], %[b], asr #31\n\t"              \
    "asr    %[c], %[c], %[se]\n\t"                      \
    "ldrsb  %[b], [%[pu]], #1\n\t"                      \
    "add    %[b], %[ku], %[b], lsl #20\n\t"             \
    "add    %[c], %[b], %[c], lsl #1\n\t"               \
    "smmlar %[b], %[c], %[om], %[oc]\n\t"               \
    "add    %[b], %[b], %[c], asr #31\n\t"              \
    "asr    %[b], %[b], %[oe]\n\t"                      \
    "ssat   %[b], #8, %[b]\n\t"                         \
    "strb   %[b], [%[po]], #1\n\t"
#define DARB_ADD_DSP_UNITS                              \
    "ldrsb  %[b], [%[ps]], #1\n\t"                      \
    "ldrsb  %[c], [%[pu]], #1\n\t"                      \
    "add    %[c], %[b], %[c]\n\t"                       \
    "add    %[c], %[ks], %[c], lsl #20\n\t"             \
    "smmlar %[b], %[c], %[om], %[oc]\n\t"               \
    "add    %[b], %[b], %[c], asr #31\n\t"              \
    "asr    %[b], %[b], %[oe]\n\t"                      \
    "ssat   %[b], #8, %[b]\n\t"                         \
    "strb   %[b], [%[po]], #1\n\t"
/* an odd n does one value first, then pairs */
#define DARB_ADD_DSP_LOOP(BODY)                         \
    "tst    %[n], #1\n\t"                               \
    "beq    2f\n\t"                                     \
    BODY                                                \
    "2:\n\t"                                            \
    "lsrs   %[n], %[n], #1\n\t"                         \
    "beq    3f\n\t"                                     \
    "1:\n\t"                                            \
    BODY                                                \
    BODY                                                \
    "subs   %[n], %[n], #1\n\t"                         \
    "bne    1b\n\t"                                     \
    "3:\n\t"

/* clamps n int8 values to [lo, hi] in place, four a step (SSUB8 + SEL) */
static void darb_add_dsp_clamp(int8_t *out, uint32_t n, int32_t lo, int32_t hi)
{
    const uint32_t lo4 = (uint32_t)(uint8_t)lo * 0x01010101u;
    const uint32_t hi4 = (uint32_t)(uint8_t)hi * 0x01010101u;
    for (; n >= 4u; n -= 4u, out += 4) {
        uint32_t v;
        uint32_t t;
        memcpy(&v, out, 4u);
        __asm__("ssub8  %[t], %[v], %[lo]\n\t"
                "sel    %[v], %[v], %[lo]\n\t"
                "ssub8  %[t], %[v], %[hi]\n\t"
                "sel    %[v], %[hi], %[v]"
                : [v] "+r"(v), [t] "=&r"(t)
                : [lo] "r"(lo4), [hi] "r"(hi4)
                : "cc");
        memcpy(out, &v, 4u);
    }
    for (; n != 0u; --n, ++out) {
        *out = (int8_t)darb_clamp_s8(*out, lo, hi);
    }
}

/* The loops, in functions of their own: nothing else may be live around
 * the 14 registers of the asm. */
static void __attribute__((noinline)) darb_add_dsp_scaled(const darb_add_fast *f, int8_t *out, uint32_t n)
{
    const int8_t *ps = f->s;
    const int8_t *pu = f->u;
    const int32_t ks = f->s_off * ((int32_t)1 << 21);
    const int32_t sm = f->s_mult;
    const int32_t sc = (int32_t)1 << (f->s_exp - 1);
    const int32_t se = f->s_exp;
    const int32_t ku = f->u_off * ((int32_t)1 << 20);
    const int32_t om = f->out_mult;
    const int32_t oc = ((int32_t)1 << (f->out_exp - 1)) + f->out_off * ((int32_t)1 << f->out_exp);
    const int32_t oe = f->out_exp;
    int32_t b_;
    int32_t c_;
    __asm__ volatile(DARB_ADD_DSP_LOOP(DARB_ADD_DSP_SCALED)
                     : [ps] "+r"(ps), [pu] "+r"(pu), [po] "+r"(out), [n] "+r"(n), [b] "=&r"(b_), [c] "=&r"(c_)
                     : [ks] "r"(ks), [sm] "r"(sm), [sc] "r"(sc), [se] "r"(se), [ku] "r"(ku), [om] "r"(om),
                       [oc] "r"(oc), [oe] "r"(oe)
                     : "cc", "memory");
}

static void __attribute__((noinline)) darb_add_dsp_units(const darb_add_fast *f, int8_t *out, uint32_t n)
{
    const int8_t *ps = f->s;
    const int8_t *pu = f->u;
    const int32_t ks = (f->s_off + f->u_off) * ((int32_t)1 << 20);
    const int32_t om = f->out_mult;
    const int32_t oc = ((int32_t)1 << (f->out_exp - 1)) + f->out_off * ((int32_t)1 << f->out_exp);
    const int32_t oe = f->out_exp;
    int32_t b_;
    int32_t c_;
    __asm__ volatile(DARB_ADD_DSP_LOOP(DARB_ADD_DSP_UNITS)
                     : [ps] "+r"(ps), [pu] "+r"(pu), [po] "+r"(out), [n] "+r"(n), [b] "=&r"(b_), [c] "=&r"(c_)
                     : [ks] "r"(ks), [om] "r"(om), [oc] "r"(oc), [oe] "r"(oe)
                     : "cc", "memory");
}

static void darb_add_dsp(const darb_add_fast *f, int8_t *out, uint32_t n)
{
    if (f->both_unit) {
        darb_add_dsp_units(f, out, n);
    } else {
        darb_add_dsp_scaled(f, out, n);
    }
    if (f->act_min != -128 || f->act_max != 127) {
        darb_add_dsp_clamp(out, n, f->act_min, f->act_max);
    }
}
#endif /* DARB_ADD_DSP */

static void __attribute__((noinline)) darb_add_portable(const darb_add_fast *f, int8_t *out, uint32_t n)
{
    if (f->both_unit) {
        darb_add_loop(f, out, n, 1);
    } else {
        darb_add_loop(f, out, n, 0);
    }
}

static void darb_add_scalar(const darb_add_fast *f, int8_t *out, uint32_t n)
{
#if defined(DARB_ADD_DSP)
    if (f->left == 20) {
        darb_add_dsp(f, out, n);
        return;
    }
#endif
    darb_add_portable(f, out, n);
}
#endif

void darb_add_s8(const darb_add_s8_params *params, const int8_t *in1, const int8_t *in2, int8_t *out, uint32_t n)
{
#if defined(DARB_ADD_MVE)
    darb_add_fast f;
    if (n != 0u && darb_add_fast_of(params, in1, in2, 31u, &f)) {
        darb_add_mve(&f, out, n);
        return;
    }
#elif !defined(DARB_COMPACT)
    darb_add_fast f;
    if (darb_add_fast_of(params, in1, in2, 21u, &f)) {
        darb_add_scalar(&f, out, n);
        return;
    }
#endif
    darb_add_general(params, in1, in2, out, n);
}

void darb_add_f32(const float *in1, const float *in2, float *out, uint32_t n, float act_min, float act_max)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        float s = in1[i] + in2[i];
        s = s < act_min ? act_min : s; /* std::max(s, act_min) */
        s = act_max < s ? act_max : s; /* std::min(s, act_max) */
        out[i] = s;
    }
}

/* ---- QUANTIZE / DEQUANTIZE ------------------------------------------------ */

void darb_quantize_f32_s8(const float *in, int8_t *out, uint32_t n, float scale, int32_t zero_point)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        float r = in[i] / scale;
        int32_t q = 0;
        if (r == r) {
            /* beyond +-1024 every zero point saturates anyway */
            r = r > 1024.0f ? 1024.0f : r;
            r = r < -1024.0f ? -1024.0f : r;
            q = (int32_t)r; /* truncation; r - q is exact */
            {
                const float frac = r - (float)q;
                if (frac >= 0.5f) {
                    ++q;
                } else if (frac <= -0.5f) {
                    --q;
                }
            }
        }
        out[i] = (int8_t)darb_clamp_s8(q + zero_point, -128, 127);
    }
}

void darb_dequantize_s8_f32(const int8_t *in, float *out, uint32_t n, float scale, int32_t zero_point)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = scale * (float)((int32_t)in[i] - zero_point);
    }
}

void darb_requantize_s8(const darb_requant_s8 *params, const int8_t *in, int8_t *out, uint32_t n)
{
    const darb_requant_s8 p = *params;
    uint32_t i;
    for (i = 0; i < n; ++i) {
        /* |in - zp| <= 255 and shift <= 23: the left shift stays inside int32 */
        const int32_t v = darb_requantize_fast((int32_t)in[i] - p.in_zero_point, p.multiplier, p.shift);
        out[i] = (int8_t)darb_clamp_s8(v + p.out_zero_point, -128, 127);
    }
}

/* ---- CONCATENATION -------------------------------------------------------- */

static int darb_requant_is_identity(const darb_requant_s8 *r)
{
    return r->multiplier == ((int32_t)1 << 30) && r->shift == 1 && r->in_zero_point == r->out_zero_point;
}

void darb_concat_s8(const darb_concat_shape *shape, const darb_requant_s8 *requant, const int8_t *const *in,
                    int8_t *out)
{
    uint32_t k;
    uint32_t i;
    for (k = 0; k < shape->outer; ++k) {
        for (i = 0; i < shape->n_inputs; ++i) {
            const uint32_t size = shape->copy_size[i];
            const int8_t *src = in[i] + (uint32_t)(k * size);
            if (requant == 0 || darb_requant_is_identity(&requant[i])) {
                memcpy(out, src, size);
            } else {
                darb_requantize_s8(&requant[i], src, out, size);
            }
            out += size;
        }
    }
}

void darb_concat_f32(const darb_concat_shape *shape, const float *const *in, float *out)
{
    uint32_t k;
    uint32_t i;
    for (k = 0; k < shape->outer; ++k) {
        for (i = 0; i < shape->n_inputs; ++i) {
            const uint32_t size = shape->copy_size[i];
            memcpy(out, in[i] + (uint32_t)(k * size), size * sizeof(float));
            out += size;
        }
    }
}

/* ---- PAD ------------------------------------------------------------------ */

/*
 * Walks the output row by row (a row: the last dimension). A row whose
 * leading coordinates all fall inside the input copies its input row between
 * the last dimension's pads; any other row is all padding. `elem` is the
 * element size; `pad` points to one element of the pad value.
 */
static void darb_pad_rows(const darb_pad_geometry *g, const uint8_t *in, uint8_t *out, const uint8_t *pad,
                          uint32_t elem)
{
    uint32_t out_dims[DARB_PAD_MAX_DIMS];
    uint32_t in_stride[DARB_PAD_MAX_DIMS];
    uint32_t index[DARB_PAD_MAX_DIMS];
    const uint32_t rank = g->rank < 1 ? 1 : (g->rank > DARB_PAD_MAX_DIMS ? DARB_PAD_MAX_DIMS : g->rank);
    const uint32_t last = rank - 1;
    uint32_t rows = 1;
    uint32_t r;
    uint32_t d;
    for (d = 0; d < rank; ++d) {
        out_dims[d] = g->before[d] + g->in_dims[d] + g->after[d];
        index[d] = 0;
    }
    in_stride[last] = 1;
    for (d = last; d > 0; --d) {
        in_stride[d - 1] = in_stride[d] * g->in_dims[d];
    }
    for (d = 0; d < last; ++d) {
        rows *= out_dims[d];
    }
    for (r = 0; r < rows; ++r) {
        const uint8_t *src = in;
        int inside = 1;
        uint32_t j;
        for (d = 0; d < last; ++d) {
            if (index[d] < g->before[d] || index[d] >= g->before[d] + g->in_dims[d]) {
                inside = 0;
                break;
            }
            src += (size_t)(index[d] - g->before[d]) * in_stride[d] * elem;
        }
        if (inside) {
            for (j = 0; j < g->before[last]; ++j, out += elem) {
                memcpy(out, pad, elem);
            }
            memcpy(out, src, (size_t)g->in_dims[last] * elem);
            out += (size_t)g->in_dims[last] * elem;
            for (j = 0; j < g->after[last]; ++j, out += elem) {
                memcpy(out, pad, elem);
            }
        } else {
            for (j = 0; j < out_dims[last]; ++j, out += elem) {
                memcpy(out, pad, elem);
            }
        }
        /* next row: odometer over the leading dimensions */
        for (d = last; d > 0; --d) {
            if (++index[d - 1] < out_dims[d - 1]) {
                break;
            }
            index[d - 1] = 0;
        }
    }
}

void darb_pad_s8(const darb_pad_geometry *geometry, const int8_t *in, int8_t *out, int8_t pad_value)
{
    darb_pad_rows(geometry, (const uint8_t *)in, (uint8_t *)out, (const uint8_t *)&pad_value, 1u);
}

void darb_pad_f32(const darb_pad_geometry *geometry, const float *in, float *out, float pad_value)
{
    darb_pad_rows(geometry, (const uint8_t *)in, (uint8_t *)out, (const uint8_t *)&pad_value,
                  (uint32_t)sizeof(float));
}
