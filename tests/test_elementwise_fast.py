"""The fast paths of darb_add_s8 (runtime_c/src/darb_elementwise.c) and of the
int8 pooling and MEAN kernels (runtime_c/src/darb_pool_nhwc.c) against the
NumPy references (darbgen.ops.elementwise.add_int8, darbgen.ops.pool), bit
for bit.

ADD has an MVE loop (Cortex-M55), a scalar loop with SMMLAR on the DSP cores
and with 64-bit products elsewhere, and the general loop (parameters TFLM's
Prepare never makes, and -DDARB_COMPACT). The cases: parameters from
add_params over random and extreme scale ratios (one input the "unit" one, or
both, in either position), every zero point class and clamp, and
hand-made parameters that must take the general loop; every pair of int8
inputs for some of them (every rounding tie), lengths 0..70 and odd ones
(the MVE tail), in-place calls (out = in1, out = in2) and misaligned
buffers.

Pooling and MEAN: windows of 1 to more than 256 positions (the 16-bit sums'
limit), counts even and odd, padding on every side, 1..70 channels (MVE and
DSP blocks and their tails), misaligned images, extreme and tie-making
inputs, every clamp.

Everything runs on the host under ASan and UBSan (also with
-DDARB_COMPACT) and in QEMU on the Cortex-M0+, M3, M4, M7, M33 and M55 (and
on the M4 and M55 with -DDARB_COMPACT), with guard bytes around every
output. ResNet-8's
first ADD and KWS's average pool are also counted in QEMU on the M4 and the
M55 against CMSIS-NN's figures.
"""
import shutil
import subprocess

import numpy as np
import pytest

from conftest import need_tool, slow_except
from darbgen.errors import DarbgenError
from darbgen.ops import elementwise as ew
from darbgen.ops import pool
from darbgen.quantize import quantize_multiplier
from darbgen.resources import runtime_c_dir
from darbgen.toolchain import cortex_m, host

ACTIVATIONS = [None, None, "relu", "relu6", "relu_n1_to_1"]
ALL_PAIRS = np.stack(np.meshgrid(np.arange(-128, 128), np.arange(-128, 128), indexing="ij"), 0).astype(np.int8)
OP_ADD, OP_AVG, OP_MAX, OP_MEAN = 1, 2, 3, 4


# ----------------------------------------------------------------------------- ADD cases

def _zp(rng):
    return int(rng.choice([-128, 127, 0, -1])) if rng.random() < 0.4 else int(rng.integers(-128, 128))


def _add_params(rng):
    """add_params of random scales: ratios from equal to 1e-6, output scales from saturating to collapsing."""
    while True:
        s1 = float(np.float32(10.0 ** rng.uniform(-4, 0)))
        r = rng.random()
        if r < 0.15:
            s2 = s1                                                    # both inputs "unit"
        elif r < 0.3:
            s2 = float(np.float32(s1 * 2.0 ** int(rng.integers(-12, 13))))   # power-of-two ratios: ties
        else:
            s2 = float(np.float32(s1 * 10.0 ** rng.uniform(-6, 6)))
        so = float(np.float32(max(s1, s2) * 10.0 ** rng.uniform(-1.5, 2.5)))
        z1, z2, zo = _zp(rng), _zp(rng), _zp(rng)
        if rng.random() < 0.6:
            lo, hi = ew.activation_range_s8(ACTIVATIONS[int(rng.integers(len(ACTIVATIONS)))], so, zo)
        else:
            lo, hi = sorted(int(v) for v in rng.integers(-128, 128, 2))
        try:
            return ew.add_params(s1, z1, s2, z2, so, zo, lo, hi)
        except DarbgenError:
            continue


def _odd_params(rng):
    """Parameters TFLM never makes (no unit input, shift 0 with another multiplier, left shifts other than
    20, output shifts 0 or below -21, tiny multipliers): the general loop, still bit-exact."""
    def mult():
        return int(rng.choice([0, 1, 1 << 30, (1 << 31) - 1, int(rng.integers(1 << 30, 1 << 31)),
                               int(rng.integers(0, 1 << 31))]))
    lo, hi = sorted(int(v) for v in rng.integers(-128, 128, 2)) if rng.random() < 0.5 else (-128, 127)
    kind = int(rng.integers(4))
    left = int(rng.choice([0, 1, 12, 20, 21, 22]))
    if kind == 0:                                                    # no unit input
        m1, s1, m2, s2 = mult(), -int(rng.integers(0, 32)), mult(), -int(rng.integers(0, 32))
    else:                                                            # a unit input, other oddities
        m1, s1 = 1 << 30, 0
        m2, s2 = (mult(), 0) if kind == 1 else (int(rng.integers(1 << 30, 1 << 31)), -int(rng.integers(1, 32)))
    if rng.random() < 0.5:
        m1, s1, m2, s2 = m2, s2, m1, s1
    left = min(left, 20) if kind != 3 else left
    mo = mult()
    so = -int(rng.choice([0, 0, 1, 17, 21, 22, 25, 31])) if kind == 3 else -int(rng.integers(1, 32))
    return ew.AddParams(-_zp(rng), -_zp(rng), _zp(rng), left, m1, s1, m2, s2, mo, so, lo, hi)


def _sensitive_params(rng, left):
    """A unit input and a scaled one whose contributions stay small, with a fine output stage: every rounding
    of the scaled input and of the output shows in the result (TFLM's own parameters, output shifts near
    -20, hide most of them). Multipliers down to 0, left shifts 1..20: still the fast loops' domain."""
    fmax = 2.0 ** rng.uniform(2, 12)                                # largest |f_s| wanted
    if rng.random() < 0.2:
        m_s, sh_s = int(rng.choice([0, 1, 7, 1023, 1 << 20])), -int(rng.integers(1, 9))
    else:
        m_s, sh_s = quantize_multiplier(min(fmax / (255.0 * 2.0 ** left), 0.49))
        if sh_s > -1:
            m_s, sh_s = quantize_multiplier(0.3)
    real_o = min(2.0 ** rng.uniform(3, 8) / fmax, 0.49) * 2.0 ** -rng.uniform(0, 1)
    m_o, sh_o = quantize_multiplier(real_o)
    lo, hi = sorted(int(v) for v in rng.integers(-128, 128, 2)) if rng.random() < 0.3 else (-128, 127)
    u_off = -_zp(rng)
    if rng.random() < 0.5:
        return ew.AddParams(-_zp(rng), u_off, _zp(rng), left, m_s, sh_s, 1 << 30, 0, m_o, sh_o, lo, hi), 2
    return ew.AddParams(u_off, -_zp(rng), _zp(rng), left, 1 << 30, 0, m_s, sh_s, m_o, sh_o, lo, hi), 1


def _sensitive_case(rng, left):
    """Every scaled input value against unit inputs at and near minus their offset (small sums)."""
    params, unit = _sensitive_params(rng, left)
    u_off = params.input1_offset if unit == 1 else params.input2_offset
    xu = np.clip(np.arange(-u_off - 2, -u_off + 3), -128, 127)
    if left < 12:
        xu = np.concatenate([xu, rng.integers(-128, 128, 3)])
    grid = np.stack(np.meshgrid(np.arange(-128, 128), xu, indexing="ij"), 0).reshape(2, -1).astype(np.int8)
    xs, xu = grid[0], grid[1]
    a, b = (xu, xs) if unit == 1 else (xs, xu)
    return ("add", params, a, b, int(rng.integers(0, 3)), tuple(int(v) for v in rng.integers(0, 4, 3)))


def _add_case(rng, params, n):
    a = rng.integers(-128, 128, n).astype(np.int8)
    b = rng.integers(-128, 128, n).astype(np.int8)
    r = rng.random()
    if r < 0.1:
        a[:] = rng.choice([-128, 127])
    elif r < 0.2:
        b[:] = rng.choice([-128, 127])
    alias = int(rng.choice([0, 0, 0, 1, 2]))
    skews = tuple(int(v) for v in rng.integers(0, 4, 3))
    return ("add", params, a, b, alias, skews)


LENGTHS = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64, 70, 127, 1000]


def add_cases(seed, count, pairs=4, sensitive=40):
    rng = np.random.default_rng(seed)
    cases = []
    # every pair of int8 inputs: every tie of every rounding, for TFLM parameters and odd ones
    for k in range(pairs):
        params = _add_params(rng) if k % 3 != 2 else _odd_params(rng)
        cases.append(("add", params, ALL_PAIRS[0].ravel(), ALL_PAIRS[1].ravel(), k % 3, (k % 4, 0, 3 - k % 4)))
    # hand-picked: ResNet-8's first ADD, extreme ratios (either input the unit one), equal scales
    fixed = [ew.AddParams(128, -4, -128, 20, 1623821475, -2, 1 << 30, 0, 1098017566, -17, -128, 127),
             ew.add_params(1.0, -128, 1e-6, 127, 1e-5, -128),
             ew.add_params(1e-6, 127, 1.0, -128, 0.01, 127, *ew.activation_range_s8("relu", 0.01, 127)),
             ew.add_params(0.1, 0, 0.1, 0, 0.1, 0),
             ew.add_params(0.02, 5, 0.03, -7, 1e-4, 0),
             ew.add_params(0.02, 5, 0.03, -7, 50.0, 3)]
    for params in fixed:
        for n in (1, 5, 17, 300):
            cases.append(_add_case(rng, params, n))
    for k in range(sensitive):
        cases.append(_sensitive_case(rng, 20 if k % 2 == 0 else int(rng.integers(1, 21))))
    for _ in range(count):
        params = _add_params(rng) if rng.random() < 0.8 else _odd_params(rng)
        n = int(rng.choice(LENGTHS)) if rng.random() < 0.7 else int(rng.integers(0, 200))
        cases.append(_add_case(rng, params, n))
    return cases


# ----------------------------------------------------------------------------- pooling and MEAN cases

CHANNELS = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 40, 48, 63, 64, 65, 70]


def _pool_geometry(rng):
    while True:
        in_h, in_w = (int(v) for v in rng.integers(1, 10, 2))
        kh, kw = (int(v) for v in rng.integers(1, 5, 2))
        r = rng.random()
        if r < 0.15:                                                  # global pooling, up to > 256 positions
            in_h, in_w = (int(v) for v in rng.integers(1, 23, 2))
            kh, kw = in_h, in_w
        strides = tuple(int(v) for v in rng.choice([1, 1, 2, 2, 3], 2))
        r = rng.random()
        if r < 0.3:
            padding = tuple(int(v) for v in rng.integers(0, 4, 4))
        else:
            padding = "same" if r < 0.65 else "valid"
        in_c = int(rng.choice(CHANNELS)) if rng.random() < 0.7 else int(rng.integers(1, 71))
        try:
            return pool.PoolGeometry.from_padding((in_h, in_w, in_c), (kh, kw), strides, padding)
        except DarbgenError:
            continue


def _pool_input(rng, shape, images):
    x = rng.integers(-128, 128, (images, *shape)).astype(np.int8)
    r = rng.random()
    if r < 0.1:
        x[...] = rng.choice([-128, 127])                              # extreme sums (-128 * 256 fills int16)
    elif r < 0.25:
        x = rng.integers(-3, 4, x.shape).astype(np.int8)              # small sums: ties of the rounding
    return x


def _clamp(rng):
    if rng.random() < 0.5:
        return -128, 127
    return tuple(sorted(int(v) for v in rng.integers(-128, 128, 2)))


def pool_case(rng, geom=None, kind=None):
    geom = geom or _pool_geometry(rng)
    kind = kind or ("avg" if rng.random() < 0.75 else "max")
    x = _pool_input(rng, geom.in_shape, int(rng.integers(1, 3)))
    lo, hi = _clamp(rng)
    return (kind, geom, x, lo, hi, int(rng.integers(0, 4)))


def mean_case(rng, shape=None):
    if shape is None:
        shape = (int(rng.integers(1, 20)), int(rng.integers(1, 20)), int(rng.choice(CHANNELS)))
    x = _pool_input(rng, shape, 1)
    while True:
        in_scale = float(np.float32(10.0 ** rng.uniform(-3, 0)))
        r = rng.random()
        if r < 0.3:                                                  # power-of-two ratios: ties at every rounding
            out_scale = float(np.float32(in_scale * 2.0 ** int(rng.integers(-6, 12))))
        else:                                                        # left shifts to long right shifts
            out_scale = float(np.float32(in_scale * 10.0 ** rng.uniform(-2.5, 4)))
        try:
            pool.mean_params_int8(in_scale, out_scale, shape[0] * shape[1])
            break
        except DarbgenError:
            continue
    return ("mean", shape, x, _zp(rng), in_scale, _zp(rng), out_scale, int(rng.integers(0, 4)))


def pool_cases(seed, count):
    rng = np.random.default_rng(seed)
    fixed = [((25, 5, 64), (25, 5), 1, "valid"),                   # KWS
             ((8, 8, 64), (8, 8), 8, "valid"),                      # ResNet-8
             ((16, 16, 33), (16, 16), 16, "valid"),                 # 256 positions: the int16 sums' limit
             ((16, 17, 20), (16, 17), 1, "valid"),                  # 272: beyond it
             ((40, 30, 9), (40, 30), 1, "valid"),                   # 1200
             ((7, 9, 70), (3, 3), 2, "same"),
             ((5, 5, 8), (2, 2), 1, (1, 1, 1, 1)),                  # windows of 1 position in the corners
             ((6, 6, 16), (1, 1), 1, "valid"),
             ((3, 4, 3), (3, 3), 1, "same")]
    cases = []
    for shape, k, s, p in fixed:
        g = pool.PoolGeometry.from_padding(shape, k, s, p)
        cases.append(pool_case(rng, g, "avg"))
        cases.append(pool_case(rng, g, "max"))
    # the int16 sums at their limits: 256 positions in one run; more than 256 in rows narrower than the image
    # (chunks of whole rows) and in one long run (pieces of it)
    for shape, k in (((16, 16, 40), (16, 16)), ((20, 22, 37), (20, 20)), ((30, 30, 19), (30, 30))):
        g = pool.PoolGeometry.from_padding(shape, k, 2, "valid")
        for v in (-128, 127):
            cases.append(("avg", g, np.full((1, *shape), v, np.int8), -128, 127, 1))
    cases += [mean_case(rng, s) for s in ((25, 5, 64), (16, 16, 17), (20, 20, 9), (1, 1, 5))]
    for _ in range(count):
        cases.append(pool_case(rng) if rng.random() < 0.85 else mean_case(rng))
    return cases


# ----------------------------------------------------------------------------- records

def _words(*values):
    return np.asarray(values, np.int64).astype("<i4").tobytes()


def record(case):
    """One case as the drivers read it, and the expected output bytes."""
    kind = case[0]
    if kind == "add":
        _, p, a, b, alias, skews = case
        want = ew.add_int8(a, b, p)
        rec = _words(OP_ADD, a.size, alias, *skews, p.input1_offset, p.input2_offset, p.output_offset, p.left_shift,
                     p.input1_multiplier, p.input1_shift, p.input2_multiplier, p.input2_shift, p.output_multiplier,
                     p.output_shift, p.act_min, p.act_max) + a.tobytes() + b.tobytes()
        return rec, want.tobytes()
    if kind in ("avg", "max"):
        _, g, x, lo, hi, skew = case
        want = (pool.avg_pool_int8 if kind == "avg" else pool.max_pool_int8)(x, g, lo, hi)
        rec = _words(OP_AVG if kind == "avg" else OP_MAX, x.shape[0], skew, g.in_h, g.in_w, g.in_c, g.kh, g.kw,
                     g.stride_h, g.stride_w, g.pad_top, g.pad_left, g.out_h, g.out_w, lo, hi) + x.tobytes()
        return rec, want.tobytes()
    _, shape, x, in_zp, in_scale, out_zp, out_scale, skew = case
    want = pool.mean_int8(x, in_zp, in_scale, out_zp, out_scale)
    m, s = pool.mean_params_int8(in_scale, out_scale, shape[0] * shape[1])
    rec = _words(OP_MEAN, 1, skew, *shape, in_zp, out_zp, m, s) + x.tobytes()
    return rec, want.tobytes()


def write_cases(folder, cases):
    records = [record(c) for c in cases]
    (folder / "in.bin").write_bytes(_words(len(records)) + b"".join(r for r, _ in records))
    return [want for _, want in records]


def _describe(case):
    if case[0] == "add":
        return f"add n={case[2].size} alias={case[4]} skews={case[5]} {case[1]}"
    if case[0] == "mean":
        return f"mean {case[1]} zp {case[3]}/{case[5]} scales {case[4]}/{case[6]}"
    return f"{case[0]} {case[1]} clamp [{case[3]}, {case[4]}]"


def check_outputs(blob, cases, wants, where):
    at = 0
    for case, want in zip(cases, wants):
        got = blob[at:at + len(want)]
        at += len(want)
        if got != want:
            g, w = np.frombuffer(got, np.int8), np.frombuffer(want, np.int8)
            bad = np.flatnonzero(g != w) if g.size == w.size else [0]
            raise AssertionError(f"{where}: {_describe(case)}: {len(bad)} of {w.size} differ, first at {bad[0]}: "
                                 f"C {g[bad[0]] if g.size else None}, NumPy {w[bad[0]]}")
    assert at == len(blob), f"{where}: {len(blob)} output bytes for {at} expected"


# ----------------------------------------------------------------------------- drivers

DRIVER_BODY = r"""
static int32_t word(void)
{
    int32_t v;
    get(&v, 4);
    return v;
}

static int8_t *guarded(uint32_t n, uint32_t skew)
{
    uint32_t i;
    int8_t *o = (int8_t *)take(n + 2u * GUARD, skew);
    for (i = 0; i < n + 2u * GUARD; ++i) {
        o[i] = (int8_t)0x5A;
    }
    return o + GUARD;
}

static void check_guards(const int8_t *o, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < GUARD; ++i) {
        if (o[(int32_t)i - (int32_t)GUARD] != (int8_t)0x5A || o[n + i] != (int8_t)0x5A) {
            fail("a write outside the output");
        }
    }
}

static void run_add(void)
{
    darb_add_s8_params p;
    const uint32_t n = (uint32_t)word();
    const int32_t alias = word();
    const uint32_t skew1 = (uint32_t)word(), skew2 = (uint32_t)word(), skewo = (uint32_t)word();
    int8_t *a, *b, *o;
    p.input1_offset = word(); p.input2_offset = word(); p.output_offset = word(); p.left_shift = word();
    p.input1_multiplier = word(); p.input1_shift = word(); p.input2_multiplier = word(); p.input2_shift = word();
    p.output_multiplier = word(); p.output_shift = word(); p.act_min = word(); p.act_max = word();
    /* the aliased input gets the guards of an output */
    a = alias == 1 ? guarded(n, skew1) : (int8_t *)take(n, skew1);
    b = alias == 2 ? guarded(n, skew2) : (int8_t *)take(n, skew2);
    get(a, n);
    get(b, n);
    o = alias == 1 ? a : (alias == 2 ? b : guarded(n, skewo));
    darb_add_s8(&p, a, b, o, n);
    check_guards(o, n);
    put(o, n);
    release();
}

static void run_pool(int32_t op)
{
    darb_pool_geometry g;
    const int32_t images = word();
    const uint32_t skew = (uint32_t)word();
    int32_t lo, hi, k;
    uint32_t in_n, out_n;
    int8_t *in, *out;
    g.in_h = (uint16_t)word(); g.in_w = (uint16_t)word(); g.in_c = (uint16_t)word();
    g.kh = (uint16_t)word(); g.kw = (uint16_t)word(); g.stride_h = (uint16_t)word(); g.stride_w = (uint16_t)word();
    g.pad_top = (uint16_t)word(); g.pad_left = (uint16_t)word(); g.out_h = (uint16_t)word();
    g.out_w = (uint16_t)word();
    lo = word();
    hi = word();
    in_n = (uint32_t)g.in_h * g.in_w * g.in_c;
    out_n = (uint32_t)g.out_h * g.out_w * g.in_c;
    in = (int8_t *)take(in_n, skew);
    out = guarded(out_n, 3u - skew);
    for (k = 0; k < images; ++k) {
        get(in, in_n);
        if (op == 2) {
            darb_avgpool_nhwc_s8(&g, lo, hi, in, out);
        } else {
            darb_maxpool_nhwc_s8(&g, lo, hi, in, out);
        }
        check_guards(out, out_n);
        put(out, out_n);
    }
    release();
}

static void run_mean(void)
{
    darb_mean_geometry g;
    darb_mean_quant_s8 q;
    const int32_t images = word();
    const uint32_t skew = (uint32_t)word();
    uint32_t in_n;
    int8_t *in, *out;
    (void)images;
    g.in_h = (uint16_t)word(); g.in_w = (uint16_t)word(); g.channels = (uint16_t)word();
    q.input_zero_point = word(); q.output_zero_point = word(); q.multiplier = word(); q.shift = word();
    in_n = (uint32_t)g.in_h * g.in_w * g.channels;
    in = (int8_t *)take(in_n, skew);
    out = guarded(g.channels, 3u - skew);
    get(in, in_n);
    darb_mean_s8(&g, &q, in, out);
    check_guards(out, g.channels);
    put(out, g.channels);
    release();
}

static void run_case(void)
{
    const int32_t op = word();
    if (op == 1) {
        run_add();
    } else if (op == 2 || op == 3) {
        run_pool(op);
    } else {
        run_mean();
    }
}
"""

HOST_DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "darb_ops_elementwise.h"
#include "darb_ops_spatial.h"

#define GUARD 16u

static FILE *fin;
static FILE *fout;
static void *blocks[8];
static int nblocks;

static void fail(const char *what)
{
    fprintf(stderr, "%s\n", what);
    exit(3);
}

static void get(void *p, uint32_t n)
{
    if (n != 0u && fread(p, 1, n, fin) != n) {
        fail("input truncated");
    }
}

static void put(const void *p, uint32_t n)
{
    if (n != 0u && fwrite(p, 1, n, fout) != n) {
        fail("output failed");
    }
}

/* n bytes at offset `skew` into their own allocation (which ends right after them) */
static void *take(uint32_t n, uint32_t skew)
{
    unsigned char *p = malloc(n + skew > 0u ? n + skew : 1u);
    if (p == NULL) {
        fail("out of memory");
    }
    blocks[nblocks++] = p;
    return p + skew;
}

static void release(void)
{
    while (nblocks > 0) {
        free(blocks[--nblocks]);
    }
}
""" + DRIVER_BODY + r"""
int main(int argc, char **argv)
{
    int32_t n, k;
    (void)argc;
    fin = fopen(argv[1], "rb");
    fout = fopen(argv[2], "wb");
    if (fin == NULL || fout == NULL) {
        fail("cannot open the files");
    }
    n = word();
    for (k = 0; k < n; ++k) {
        run_case();
    }
    fclose(fin);
    return fclose(fout) == 0 ? 0 : 5;
}
"""

TARGET_DRIVER = r"""
#include <stdint.h>

#include "darb_ops_elementwise.h"
#include "darb_ops_spatial.h"
#include "darb_semihost.h"

#define GUARD 16u
#define ARENA 262144u

static uint32_t arena_words[ARENA / 4u];
static uint32_t used;
static int32_t fin;
static int32_t fout;

static void fail(const char *what)
{
    darb_sh_puts(what);
    darb_sh_puts("\n");
    darb_sh_exit(4);
}

static void get(void *p, uint32_t n)
{
    if (n != 0u && !darb_sh_read(fin, p, n)) {
        fail("input truncated");
    }
}

static void put(const void *p, uint32_t n)
{
    if (n != 0u && !darb_sh_write(fout, p, n)) {
        fail("output failed");
    }
}

/* n bytes at offset `skew` from a word boundary of the arena */
static void *take(uint32_t n, uint32_t skew)
{
    uint8_t *p = (uint8_t *)arena_words + used + skew;
    used += (n + skew + 7u) & ~3u;
    if (used > ARENA) {
        fail("arena too small");
    }
    return p;
}

static void release(void)
{
    used = 0u;
}
""" + DRIVER_BODY + r"""
int main(void)
{
    int32_t n, k;
    fin = darb_sh_open("in.bin", DARB_SH_OPEN_RB);
    fout = darb_sh_open("out.bin", DARB_SH_OPEN_WB);
    if (fin < 0 || fout < 0) {
        fail("cannot open the files");
    }
    n = word();
    for (k = 0; k < n; ++k) {
        run_case();
    }
    darb_sh_close(fin);
    return darb_sh_close(fout) ? 0 : 5;
}
"""

KERNELS = ("darb_elementwise.c", "darb_pool_nhwc.c")


def _runtime_files(folder):
    rt = runtime_c_dir()
    for name in ("darb.h", "darb_ops_elementwise.h", "darb_ops_spatial.h"):
        shutil.copyfile(rt / "include" / name, folder / name)
    for name in KERNELS:
        shutil.copyfile(rt / "src" / name, folder / name)


def run_host(folder, cases, extra=()):
    need_tool("gcc")
    folder.mkdir(parents=True, exist_ok=True)
    _runtime_files(folder)
    (folder / "driver.c").write_text(HOST_DRIVER)
    # The kernels with the strict flags; the driver (test code) with the sanitizers only.
    objects = []
    for name in KERNELS:
        host.run_compiler(["gcc", *host.STRICT_FLAGS, *host.SANITIZE_FLAGS, *extra, "-I.", "-c", name], cwd=folder)
        objects.append(name[:-2] + ".o")
    host.run_compiler(["gcc", "-std=c99", "-O1", *host.SANITIZE_FLAGS, "-I.", "driver.c", *objects, "-o", "driver"],
                      cwd=folder)
    wants = write_cases(folder, cases)
    env = {"ASAN_OPTIONS": "detect_leaks=0", "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"}
    proc = subprocess.run([str(folder / "driver"), "in.bin", "out.bin"], cwd=folder, capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_outputs((folder / "out.bin").read_bytes(), cases, wants, f"host {' '.join(extra)}")


def build_target(folder, core_name, extra=()):
    folder.mkdir(parents=True, exist_ok=True)
    _runtime_files(folder)
    (folder / "main.c").write_text(TARGET_DRIVER)
    core = cortex_m.core(core_name)
    return core, cortex_m.link_image(folder, ["main.c", *KERNELS], core, extra_flags=tuple(extra))


def run_target(folder, core_name, cases, extra=()):
    core, elf = build_target(folder, core_name, extra)
    wants = write_cases(folder, cases)
    cortex_m.run_image(elf, core, folder)
    check_outputs((folder / "out.bin").read_bytes(), cases, wants, f"{core_name} {' '.join(extra)}")


# ----------------------------------------------------------------------------- tests

def all_cases(seed, n_add, n_pool, pairs=4):
    return add_cases(seed, n_add, pairs) + pool_cases(seed + 1, n_pool)


@pytest.mark.parametrize("extra", [(), ("-DDARB_COMPACT",)], ids=["fast", "compact"])
def test_host_bit_exact_under_sanitizers(tmp_path, extra):
    run_host(tmp_path, all_cases(1, 1500, 600, pairs=9), extra)


# M0+ and M3: the scalar ADD loop with 64-bit products, the general pooling loops; M4 (and M7, M33): SMMLAR,
# SXTAB16, SSUB8 + SEL; M55: MVE; -DDARB_COMPACT: the general loops only.
#: the cores the default run uses, one of each path: portable, DSP, MVE
FAST_CORES = ("cortex-m0plus", "cortex-m4", "cortex-m55")
TARGETS = [("cortex-m0plus", (), 150, 100, 2), ("cortex-m3", (), 300, 150, 3), ("cortex-m4", (), 600, 400, 6),
           ("cortex-m7", (), 200, 150, 2), ("cortex-m33", (), 200, 150, 2), ("cortex-m55", (), 600, 400, 6),
           ("cortex-m4", ("-DDARB_COMPACT",), 150, 100, 2), ("cortex-m55", ("-DDARB_COMPACT",), 150, 100, 2)]


# by default one core of each path (portable, DSP, MVE; compact: the host test); every one in the full run
@pytest.mark.parametrize("core, extra, n_add, n_pool, pairs",
                         slow_except(TARGETS, {t for t in TARGETS if t[0] in FAST_CORES and not t[1]}),
                         ids=[c[len("cortex-"):] + ("-compact" if e else "") for c, e, *_ in TARGETS])
def test_target_bit_exact_in_qemu(tmp_path, qemu, core, extra, n_add, n_pool, pairs):
    run_target(tmp_path, core, all_cases(sum(map(ord, core)) + len(extra), n_add, n_pool, pairs), extra)


def _count(tmp_path, core_name, case, function):
    """Runs one case in QEMU, checks it, returns the instructions of its kernel call."""
    core, elf = build_target(tmp_path, core_name)
    wants = write_cases(tmp_path, [case])
    trace = tmp_path / "trace.log"
    cortex_m.run_image(elf, core, tmp_path, trace=trace)
    check_outputs((tmp_path / "out.bin").read_bytes(), [case], wants, core_name)
    syms = cortex_m.symbols(elf)
    callers = [(a, a + n) for name, (a, n) in syms.items() if name in ("main", "run_case", "run_add", "run_pool")]
    (count,) = cortex_m.count_calls(trace, [syms[function][0]], callers)
    trace.unlink()
    return count


# CMSIS-NN's instructions (`darbgen bench model ... --ratios 1` on pretrainedResnet_quant.tflite and
# kws_ref_model.tflite): arm_elementwise_add_s8 on ResNet-8's first ADD (16384 values), arm_avgpool_s8 on
# KWS's average pool (25x5x64 -> 1x1x64).
CMSIS_NN_RESNET_ADD = {"cortex-m4": 1_331_617, "cortex-m55": 225_346}
CMSIS_NN_KWS_AVGPOOL = {"cortex-m4": 50_737, "cortex-m55": 13_075}


@pytest.mark.parametrize("core", list(CMSIS_NN_RESNET_ADD))
def test_resnet_add_beats_cmsis_nn(tmp_path, qemu, core):
    """ResNet-8's first ADD (its parameters, 32x32x16 values): bit-exact, fewer instructions than CMSIS-NN."""
    rng = np.random.default_rng(3)
    params = ew.AddParams(128, -4, -128, 20, 1623821475, -2, 1 << 30, 0, 1098017566, -17, -128, 127)
    case = ("add", params, rng.integers(-128, 128, 16384).astype(np.int8),
            rng.integers(-128, 128, 16384).astype(np.int8), 0, (0, 0, 0))
    count = _count(tmp_path, core, case, "darb_add_s8")
    assert count < CMSIS_NN_RESNET_ADD[core], f"{core}: {count:,} instructions, CMSIS-NN {CMSIS_NN_RESNET_ADD[core]:,}"


@pytest.mark.parametrize("core", list(CMSIS_NN_KWS_AVGPOOL))
def test_kws_avgpool_beats_cmsis_nn(tmp_path, qemu, core):
    """KWS's average pool (25x5x64 -> 1x1x64): bit-exact, fewer instructions than CMSIS-NN."""
    rng = np.random.default_rng(4)
    g = pool.PoolGeometry.from_padding((25, 5, 64), (25, 5), 1, "valid")
    case = ("avg", g, rng.integers(-128, 128, (1, 25, 5, 64)).astype(np.int8), -128, 127, 0)
    count = _count(tmp_path, core, case, "darb_avgpool_nhwc_s8")
    assert count < CMSIS_NN_KWS_AVGPOOL[core], \
        f"{core}: {count:,} instructions, CMSIS-NN {CMSIS_NN_KWS_AVGPOOL[core]:,}"
