/*
 * darb_math_f32.c - exp, sigmoid and tanh in float32 from + - * / only.
 *
 * Library expf differs between glibc, newlib and NumPy in the last bit; these
 * do not, because every step is one correctly rounded float32 operation
 * (compile with -ffp-contract=off). Constants are hexadecimal so that C and
 * Python read exactly the same bits. Error: about 2 ulp over the whole range.
 * darbgen/reference.py holds the NumPy twin, step for step.
 */
#include "darb.h"

#define DARB_LOG2E 0x1.715476p+0f   /* 1/ln 2 */
#define DARB_LN2_HI 0x1.62e400p-1f  /* ln 2, high part: k * LN2_HI is exact */
#define DARB_LN2_LO 0x1.7f7d1cp-20f /* ln 2 - LN2_HI */

float darb_expf(float x)
{
    float t;
    int32_t k;
    float kf;
    float r;
    float p;
    union {
        uint32_t u;
        float f;
    } scale;
    if (x != x) {
        return x; /* NaN stays NaN (and never reaches the float-to-int conversion) */
    }
    if (x > 88.0f) {
        x = 88.0f;
    }
    if (x < -87.0f) {
        x = -87.0f;
    }
    /* x = k ln2 + r with |r| <= ln2 / 2 (k rounded half away from zero) */
    t = x * DARB_LOG2E;
    t = t >= 0.0f ? t + 0.5f : t - 0.5f;
    k = (int32_t)t;
    kf = (float)k;
    r = x - kf * DARB_LN2_HI;
    r = r - kf * DARB_LN2_LO;
    /* exp(r) by its Taylor series to r^7 (error below 2^-27 on |r| <= ln2/2) */
    p = 0x1.a01a02p-13f;             /* 1/7! */
    p = p * r + 0x1.6c16c2p-10f;     /* 1/6! */
    p = p * r + 0x1.111112p-7f;      /* 1/5! */
    p = p * r + 0x1.555556p-5f;      /* 1/4! */
    p = p * r + 0x1.555556p-3f;      /* 1/3! */
    p = p * r + 0x1.000000p-1f;      /* 1/2! */
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    scale.u = (uint32_t)(k + 127) << 23; /* 2^k, k in -126..127 */
    return p * scale.f;
}

float darb_sigmoidf(float x)
{
    return 1.0f / (1.0f + darb_expf(-x));
}

/* exp(x) - 1, accurate near 0 (where expf(x) - 1 would cancel). */
static float darb_expm1f(float x)
{
    float p;
    if (x > 0x1.62e430p-2f || x < -0x1.62e430p-2f) { /* |x| > ln2 / 2 */
        return darb_expf(x) - 1.0f;
    }
    /* Taylor series to x^9 (error below 2^-30 relative) */
    p = 0x1.71de3ap-19f;             /* 1/9! */
    p = p * x + 0x1.a01a02p-16f;     /* 1/8! */
    p = p * x + 0x1.a01a02p-13f;     /* 1/7! */
    p = p * x + 0x1.6c16c2p-10f;     /* 1/6! */
    p = p * x + 0x1.111112p-7f;      /* 1/5! */
    p = p * x + 0x1.555556p-5f;      /* 1/4! */
    p = p * x + 0x1.555556p-3f;      /* 1/3! */
    p = p * x + 0x1.000000p-1f;      /* 1/2! */
    p = p * x + 1.0f;
    return p * x;
}

float darb_tanhf(float x)
{
    /* tanh x = (e^2x - 1) / (e^2x + 1), with e^2x - 1 from expm1 so that
     * small x keep their relative accuracy */
    const float em1 = darb_expm1f(2.0f * x);
    return em1 / (em1 + 2.0f);
}
