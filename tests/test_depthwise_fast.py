"""darb_depthwise_s8's fast paths (runtime_c/src/darb_depthwise.c) against
darbgen.ops.depthwise.depthwise_int8, bit for bit.

The kernel has a plane path for 3x3 stride-1 layers whose shifts are right
shifts of 1..22 and |bias| < 2^29 (on the Cortex-M4 / M7 / M33 with DSP asm,
on the Cortex-M55 with MVE asm: bands of rows by tiles of columns copied into
planes padded with the input zero point), a channel-block loop for the other
layers of depth multiplier 1 and kernels of at most 9 taps (DSP asm, MVE asm,
plain C on the host and the Cortex-M3), with an unrolled 3x3 body for windows
inside the image and runs of border pixels, and the general loop for every
other shape, for the channels a 4-channel block leaves over, on the
Cortex-M0+ and under -DDARB_COMPACT. The cases here aim at all of them: 3x3
and other kernels, interior and border pixels (padding on every side,
windows wholly in the padding, images smaller than the window), strides 1..3,
dilation, 1..70 channels (whole blocks, 16, 64, tails, odd counts), depth
multipliers 1..3, misaligned tensors, extreme inputs, zero points,
multipliers and shifts (left shifts, right shifts up to 31, both in one
channel block, accumulators near 2^31 with multipliers near 2^31, rounding
ties); and for the plane path images taller than a band and wider than a
tile, odd row counts, fewer than 8 rows, narrow clamps, shifts of -1 and -22,
biases just under 2^29, and layers just outside it.

They run on the host under ASan and UBSan (plain C blocks, and -DDARB_COMPACT;
between them every line of the int8 kernel) and in QEMU on the Cortex-M0+,
M3, M4, M7, M33 and M55, and on the M4 and M55 with -DDARB_COMPACT, with guard
bytes around every output. The KWS layer (25x5x64, 3x3, "same") is also
counted in QEMU: the plane path against the instructions it took when
measured, the channel-block loop against CMSIS-NN's figures for the layer.
"""
import shutil
import subprocess

import numpy as np
import pytest

from conftest import need_tool, slow_except
from darbgen.errors import DarbgenError
from darbgen.ops.depthwise import DepthwiseGeometry, depthwise_int8
from darbgen.quantize import quantize_multiplier
from darbgen.resources import runtime_c_dir
from darbgen.toolchain import cortex_m, host

INT32_MAX = 2 ** 31 - 1
# Kernels: 3x3 mostly (the unrolled body), other shapes of at most 9 taps (the channel-block loop's
# generic runs, rows of more than 3 taps), and larger ones (the general loop).
KERNELS = [(3, 3)] * 8 + [(1, 1), (2, 2), (1, 3), (3, 1), (2, 3), (1, 9), (9, 1), (4, 2), (1, 5), (5, 5), (4, 3)]
CHANNELS = [1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 24, 31, 32, 33, 63, 64, 65, 70]


# ----------------------------------------------------------------------------- cases

def _geometry(rng):
    while True:
        kernel = KERNELS[int(rng.integers(len(KERNELS)))]
        in_h, in_w = (int(v) for v in rng.integers(1, 11, 2))
        if rng.random() < 0.3:                                  # long rows or columns: long runs
            in_h, in_w = (int(rng.integers(8, 26)), int(rng.integers(1, 6)))[:: 1 if rng.random() < 0.5 else -1]
        strides = tuple(int(v) for v in rng.choice([1, 1, 1, 2, 2, 3], 2))
        dil = tuple(int(v) for v in rng.integers(1, 4, 2)) if rng.random() < 0.25 else (1, 1)
        r = rng.random()
        if r < 0.25:
            padding = tuple(int(v) for v in rng.integers(0, 5, 4))     # explicit, up to windows wholly outside
        else:
            padding = "same" if r < 0.75 else "valid"
        in_c = int(rng.choice(CHANNELS)) if rng.random() < 0.7 else int(rng.integers(1, 71))
        mult = int(rng.choice([1, 1, 1, 1, 2, 3]))
        try:
            return DepthwiseGeometry.from_padding((in_h, in_w, in_c), kernel, strides, dil, padding, mult)
        except DarbgenError:
            continue


def _zero_point(rng):
    return int(rng.choice([-128, 127, 0, -1])) if rng.random() < 0.4 else int(rng.integers(-128, 128))


def _output_stage(rng, oc, typical):
    """Per-channel (multiplier, shift) of one of several kinds, mixed within channel blocks."""
    kind = rng.random()
    if kind < 0.5:                                              # typical: outputs mostly inside int8
        pairs = [quantize_multiplier(60.0 / typical * 2.0 ** rng.uniform(-2, 2)) for _ in range(oc)]
    elif kind < 0.75:                                           # extreme multipliers and right shifts
        pairs = [(int(rng.choice([0, 1, 1 << 30, (1 << 30) + 1, INT32_MAX])),
                  int(rng.choice([-31, -30, -20, -8, -1, 0]))) for _ in range(oc)]
    else:                                                       # anything, left shifts included
        pairs = [(int(rng.integers(1 << 30, 1 << 31)), int(rng.integers(-31, 8))) for _ in range(oc)]
    return np.array([p[0] for p in pairs], np.int64), np.array([p[1] for p in pairs], np.int64)


def random_case(rng, geom=None):
    """(x, w, bias, geom, in_zp, out_zp, multiplier, shift, act_min, act_max) that depthwise_int8 accepts."""
    geom = geom or _geometry(rng)
    oc = geom.out_c
    n = int(rng.integers(1, 3))
    x = rng.integers(-128, 128, (n, *geom.in_shape)).astype(np.int8)
    if rng.random() < 0.15:
        x[...] = rng.choice([-128, 127])
    w = rng.integers(-127, 128, (geom.kh, geom.kw, oc)).astype(np.int8)
    if rng.random() < 0.15:
        w[...] = rng.choice([-128, -127, 127])
    in_zp, out_zp = _zero_point(rng), _zero_point(rng)
    typical = 75.0 * 74.0 * np.sqrt(geom.kh * geom.kw)
    bias = rng.integers(-int(typical), int(typical) + 1, oc).astype(np.int64) if rng.random() < 0.8 else None
    m, s = _output_stage(rng, oc, typical)
    if rng.random() < 0.5:
        lo, hi = -128, 127
    else:
        lo, hi = sorted(int(v) for v in rng.integers(-128, 128, 2))
    # Keep the layer inside the generator's no-overflow bound: drop the left shifts that break it.
    worst = max(abs(-128 - in_zp), abs(127 - in_zp)) * np.abs(w.astype(np.int64)).reshape(-1, oc).sum(axis=0)
    if bias is not None:
        worst = worst + np.abs(bias)
    s = np.where((worst << np.maximum(s, 0)) > INT32_MAX, np.minimum(s, 0), s)
    return x, w, bias, geom, in_zp, out_zp, m, s, lo, hi


def big_accumulator_case(rng):
    """Accumulators near +-2^31 (the bias at the bound) with multipliers near 2^31 and every right shift:
    the requantization's rounding must not overflow."""
    geom = DepthwiseGeometry.from_padding((3, 4, 40), (3, 3), 1, 1, "same", 1)
    oc = geom.out_c
    x = rng.integers(-128, 128, (1, *geom.in_shape)).astype(np.int8)
    w = rng.integers(-3, 4, (3, 3, oc)).astype(np.int8)
    in_zp = 127
    room = INT32_MAX - 255 * np.abs(w.astype(np.int64)).reshape(-1, oc).sum(axis=0)
    bias = np.where(np.arange(oc) % 2 == 0, room, -room).astype(np.int64)
    m = np.where(np.arange(oc) % 3 == 0, INT32_MAX, rng.integers((1 << 31) - 1000, 1 << 31, oc)).astype(np.int64)
    s = -(np.arange(oc) % 32).astype(np.int64)
    return x, w, bias, geom, in_zp, -3, m, s, -128, 127


def tie_case(rng):
    """Multipliers 2^30 (one half) and small accumulators: ties at every rounding, both signs."""
    geom = DepthwiseGeometry.from_padding((5, 6, 17), (3, 3), 1, 1, "same", 1)
    oc = geom.out_c
    x = rng.integers(-6, 7, (2, *geom.in_shape)).astype(np.int8)
    w = rng.integers(-2, 3, (3, 3, oc)).astype(np.int8)
    s = -(np.arange(oc) % 5).astype(np.int64)
    return x, w, None, geom, 0, 0, np.full(oc, 1 << 30, np.int64), s, -128, 127


def fixed_cases(rng):
    """Hand-picked shapes: KWS's layer, MobileNet-like strides, windows in the padding, tiny images."""
    shapes = [((25, 5, 64), (3, 3), 1, 1, "same", 1),
              ((10, 10, 16), (3, 3), 2, 1, "same", 1),
              ((9, 7, 8), (3, 3), 1, 2, "same", 1),
              ((1, 1, 70), (3, 3), 1, 1, "same", 1),
              ((2, 2, 33), (3, 3), 1, 1, (4, 4, 4, 4), 1),
              ((6, 6, 24), (3, 3), 3, 1, (1, 0, 2, 3), 1),
              ((7, 3, 5), (3, 3), 1, 1, "valid", 1),
              ((5, 5, 11), (3, 3), 1, 1, "same", 3),
              ((4, 9, 9), (1, 9), 1, 1, "same", 1),
              ((12, 12, 4), (2, 2), 2, 1, "valid", 1)]
    return [random_case(rng, DepthwiseGeometry.from_padding(*s)) for s in shapes]


def plane_case(rng, geom=None):
    """A layer of the 3x3 stride-1 plane path (DSP, MVE): depth multiplier 1, every shift a right shift of
    1..22 and |bias| < 2^29; images taller than a band (26 rows with DSP, 30 with MVE) and wider than a tile
    (5, 14 columns), any padding, channel counts with tails of 4, clamps, extreme multipliers."""
    while geom is None:
        in_h = int(rng.integers(1, 64)) if rng.random() < 0.3 else int(rng.integers(1, 30))
        in_w = int(rng.integers(1, 34)) if rng.random() < 0.3 else int(rng.integers(1, 9))
        r = rng.random()
        padding = "same" if r < 0.5 else "valid" if r < 0.65 else tuple(int(v) for v in rng.integers(0, 3, 4))
        in_c = int(rng.choice(CHANNELS)) if rng.random() < 0.7 else int(rng.integers(1, 71))
        in_c = max(1, min(in_c, 12000 // (in_h * in_w)))           # the target driver's arena
        try:
            geom = DepthwiseGeometry.from_padding((in_h, in_w, in_c), (3, 3), 1, 1, padding, 1)
        except DarbgenError:
            geom = None
    oc = geom.out_c
    x, w, bias, geom, in_zp, out_zp, m, s, lo, hi = random_case(rng, geom)
    kind = rng.random()
    if kind < 0.5:
        s = -rng.integers(1, 23, oc).astype(np.int64)
    elif kind < 0.8:
        s = np.minimum(s, -1)
        s = np.maximum(s, -22)
    else:
        s = -rng.choice([1, 2, 21, 22], oc).astype(np.int64)
    if rng.random() < 0.3:
        m = rng.choice([0, 1, 1 << 30, (1 << 30) + 1, INT32_MAX], oc).astype(np.int64)
    if bias is not None and rng.random() < 0.2:
        bias = rng.choice([(1 << 29) - 1, -(1 << 29) + 1, 0], oc).astype(np.int64)
    return x, w, bias, geom, in_zp, out_zp, m, s, lo, hi


def plane_edge_cases(rng):
    """The plane path's limits: shifts -1 and -22, |bias| just under 2^29 with inputs and weights at the
    extremes (accumulators near 2^30), rounding ties; and layers just outside it (a shift of 0 or -23,
    |bias| = 2^29, one channel is enough), which the channel-block loop takes."""
    cases = []
    geom = DepthwiseGeometry.from_padding((9, 6, 12), (3, 3), 1, 1, "same", 1)
    oc = geom.out_c
    for in_zp in (-128, 127):
        x = rng.choice([-128, 127], (1, *geom.in_shape)).astype(np.int8)
        w = rng.choice([-128, -127, 127], (3, 3, oc)).astype(np.int8)
        bias = np.where(np.arange(oc) % 2 == 0, (1 << 29) - 1, -(1 << 29) + 1).astype(np.int64)
        m = np.where(np.arange(oc) % 3 == 0, INT32_MAX, rng.integers(1 << 30, 1 << 31, oc)).astype(np.int64)
        s = -np.where(np.arange(oc) % 2 == 0, 1, 22).astype(np.int64)
        cases.append((x, w, bias, geom, in_zp, int(rng.integers(-128, 128)), m, s, -128, 127))
    tie = DepthwiseGeometry.from_padding((11, 7, 20), (3, 3), 1, 1, "same", 1)
    x = rng.integers(-6, 7, (2, *tie.in_shape)).astype(np.int8)
    w = rng.integers(-2, 3, (3, 3, tie.out_c)).astype(np.int8)
    s = -(1 + np.arange(tie.out_c) % 6).astype(np.int64)
    cases.append((x, w, None, tie, 0, 0, np.full(tie.out_c, 1 << 30, np.int64), s, -128, 127))
    # fewer than 8 image rows in a band, output widths 2..5 (every entry into the MVE column loop), two
    # tiles (15 columns), one output column, padding of 2
    for shape, padding in [((4, 2, 8), "same"), ((6, 3, 5), "valid"), ((7, 4, 16), "same"), ((5, 5, 4), "same"),
                           ((9, 15, 8), "same"), ((10, 1, 12), "same"), ((2, 2, 6), (2, 2, 2, 2)),
                           ((27, 6, 4), (1, 0, 2, 1))]:
        cases.append(plane_case(rng, DepthwiseGeometry.from_padding(shape, (3, 3), 1, 1, padding, 1)))
    for change in ("shift 0", "shift -23", "bias 2^29"):
        x, w, bias, g, in_zp, out_zp, m, s, lo, hi = plane_case(rng, geom)
        s, bias = s.copy(), np.zeros(oc, np.int64) if bias is None else bias.copy()
        if change == "shift 0":
            s[5] = 0
        elif change == "shift -23":
            s[5] = -23
        else:
            bias[5] = 1 << 29
            w[..., 5] = rng.integers(-3, 4, (3, 3))
        cases.append((x, w, bias, g, in_zp, out_zp, m, s, lo, hi))
    return cases


def all_cases(seed, count):
    rng = np.random.default_rng(seed)
    cases = fixed_cases(rng) + [big_accumulator_case(rng), tie_case(rng)]
    cases += [random_case(rng) for _ in range(count)]
    return cases


# ----------------------------------------------------------------------------- records

def _words(*values):
    return np.asarray(values, np.int64).astype("<i4").tobytes()


def record(case):
    """One case as the drivers read it, and the expected output."""
    x, w, bias, g, in_zp, out_zp, m, s, lo, hi = case
    want = depthwise_int8(x, w, bias, g, in_zp, out_zp, m, s, lo, hi)
    rec = (_words(x.shape[0], g.in_h, g.in_w, g.in_c, g.mult, g.kh, g.kw, g.stride_h, g.stride_w, g.dil_h, g.dil_w,
                  g.pad_top, g.pad_left, g.out_h, g.out_w, -in_zp, out_zp, lo, hi, bias is not None)
           + w.astype(np.int8).tobytes() + (b"" if bias is None else np.asarray(bias, "<i4").tobytes())
           + np.asarray(m, "<i4").tobytes() + np.asarray(s, np.int8).tobytes() + x.tobytes())
    return rec, want


def write_cases(folder, cases):
    records = [record(c) for c in cases]
    (folder / "in.bin").write_bytes(_words(len(records)) + b"".join(r for r, _ in records))
    return [want for _, want in records]


def check_outputs(blob, cases, wants, where):
    at = 0
    for case, want in zip(cases, wants):
        got = np.frombuffer(blob[at:at + want.size], np.int8).reshape(want.shape)
        at += want.size
        bad = np.flatnonzero(got.reshape(-1) != want.reshape(-1))
        if bad.size:
            g = case[3]
            raise AssertionError(f"{where}: {g} in_zp {case[4]} out_zp {case[5]} clamp [{case[8]}, {case[9]}]: "
                                 f"{bad.size} of {want.size} differ, first at {np.unravel_index(bad[0], want.shape)}: "
                                 f"C {got.reshape(-1)[bad[0]]}, NumPy {want.reshape(-1)[bad[0]]}")
    assert at == len(blob), f"{where}: {len(blob)} output bytes for {at} expected"


# ----------------------------------------------------------------------------- drivers

# Shared by both drivers: read one case's header and arrays with get(), run it image by image, put() the
# outputs. The tensors sit at odd offsets (misaligned) in their buffers; the host driver gives each its own
# allocation (ASan sees any over-read), the target driver checks guard bytes around the output.
DRIVER_BODY = r"""
static int32_t word(void)
{
    int32_t v;
    get(&v, 4);
    return v;
}

static void run_case(void)
{
    darb_dw_geometry g;
    darb_dw_quant_s8 q;
    const int32_t images = word();
    uint32_t oc, in_n, out_n, w_n, i;
    int32_t b, has_bias;
    int8_t *w, *in, *out;
    int32_t *bias, *mult;
    int8_t *shift;
    g.in_h = (uint16_t)word(); g.in_w = (uint16_t)word(); g.in_c = (uint16_t)word();
    g.mult = (uint16_t)word(); g.kh = (uint16_t)word(); g.kw = (uint16_t)word();
    g.stride_h = (uint16_t)word(); g.stride_w = (uint16_t)word();
    g.dil_h = (uint16_t)word(); g.dil_w = (uint16_t)word();
    g.pad_top = (uint16_t)word(); g.pad_left = (uint16_t)word();
    g.out_h = (uint16_t)word(); g.out_w = (uint16_t)word();
    q.input_offset = word(); q.output_offset = word(); q.act_min = word(); q.act_max = word();
    has_bias = word();
    oc = (uint32_t)g.in_c * g.mult;
    in_n = (uint32_t)g.in_h * g.in_w * g.in_c;
    out_n = (uint32_t)g.out_h * g.out_w * oc;
    w_n = (uint32_t)g.kh * g.kw * oc;
    w = (int8_t *)take(w_n, 1u);
    get(w, w_n);
    bias = 0;
    if (has_bias) {
        bias = (int32_t *)take(oc * 4u, 0u);
        get(bias, oc * 4u);
    }
    mult = (int32_t *)take(oc * 4u, 0u);
    get(mult, oc * 4u);
    shift = (int8_t *)take(oc, 3u);
    get(shift, oc);
    q.bias = bias;
    q.multiplier = mult;
    q.shift = shift;
    in = (int8_t *)take(in_n, 3u);
    out = (int8_t *)take(out_n + 2u * GUARD, 1u);
    for (b = 0; b < images; ++b) {
        get(in, in_n);
        for (i = 0; i < out_n + 2u * GUARD; ++i) {
            out[i] = (int8_t)0x5A;
        }
        darb_depthwise_s8(&g, w, &q, in, out + GUARD);
        for (i = 0; i < GUARD; ++i) {
            if (out[i] != (int8_t)0x5A || out[GUARD + out_n + i] != (int8_t)0x5A) {
                fail("a write outside the output");
            }
        }
        put(out + GUARD, out_n);
    }
    release();
}
"""

HOST_DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

#include "darb_ops_spatial.h"
#include "darb_semihost.h"

#define GUARD 16u
#define ARENA 131072u

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


def _runtime_files(folder):
    rt = runtime_c_dir()
    for name in ("darb.h", "darb_ops_spatial.h"):
        shutil.copyfile(rt / "include" / name, folder / name)
    shutil.copyfile(rt / "src" / "darb_depthwise.c", folder / "darb_depthwise.c")


def run_host(folder, cases, extra=()):
    need_tool("gcc")
    folder.mkdir(parents=True, exist_ok=True)
    _runtime_files(folder)
    (folder / "driver.c").write_text(HOST_DRIVER)
    # The kernel with the strict flags; the driver (test code) with the sanitizers only.
    host.run_compiler(["gcc", *host.STRICT_FLAGS, *host.SANITIZE_FLAGS, *extra, "-I.", "-c", "darb_depthwise.c"],
                      cwd=folder)
    host.run_compiler(["gcc", "-std=c99", "-O1", *host.SANITIZE_FLAGS, "-I.", "driver.c", "darb_depthwise.o",
                       "-o", "driver"], cwd=folder)
    wants = write_cases(folder, cases)
    proc = subprocess.run([str(folder / "driver"), "in.bin", "out.bin"], cwd=folder, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_outputs((folder / "out.bin").read_bytes(), cases, wants, f"host {' '.join(extra)}")


def run_target(folder, core_name, cases, extra=()):
    folder.mkdir(parents=True, exist_ok=True)
    _runtime_files(folder)
    (folder / "main.c").write_text(TARGET_DRIVER)
    core = cortex_m.core(core_name)
    elf = cortex_m.link_image(folder, ["main.c", "darb_depthwise.c"], core, extra_flags=tuple(extra))
    wants = write_cases(folder, cases)
    cortex_m.run_image(elf, core, folder)
    check_outputs((folder / "out.bin").read_bytes(), cases, wants, f"{core_name} {' '.join(extra)}")


# ----------------------------------------------------------------------------- tests

@pytest.mark.parametrize("extra", [(), ("-DDARB_COMPACT",)], ids=["blocks", "compact"])
def test_host_bit_exact_under_sanitizers(tmp_path, extra):
    run_host(tmp_path, all_cases(1, 1500), extra)


# M3: plain C blocks; M4, M7, M33: DSP; M55: MVE; M0+ and -DDARB_COMPACT: the general loop only.
#: the cores the default run uses, one of each path: portable, DSP, MVE
FAST_CORES = ("cortex-m0plus", "cortex-m4", "cortex-m55")
TARGETS = [("cortex-m0plus", (), 300), ("cortex-m3", (), 200), ("cortex-m4", (), 600), ("cortex-m7", (), 200),
           ("cortex-m33", (), 200), ("cortex-m55", (), 600), ("cortex-m4", ("-DDARB_COMPACT",), 200),
           ("cortex-m55", ("-DDARB_COMPACT",), 200)]


# by default one core of each path (portable, DSP, MVE; compact: the host test); every one in the full run
@pytest.mark.parametrize("core, extra, count", slow_except(TARGETS, {t for t in TARGETS if t[0] in FAST_CORES and not t[1]}),
                         ids=[c[len("cortex-"):] + ("-compact" if e else "") for c, e, _ in TARGETS])
def test_target_bit_exact_in_qemu(tmp_path, qemu, core, extra, count):
    run_target(tmp_path, core, all_cases(sum(map(ord, core)) + len(extra), count), extra)


# The plane path (3x3, stride 1) on the cores that have it: DSP (M4, M7, M33) and MVE (M55).
PLANE_TARGETS = [("cortex-m4", 500), ("cortex-m7", 150), ("cortex-m33", 150), ("cortex-m55", 500)]


@pytest.mark.parametrize("core, count", slow_except(PLANE_TARGETS, {t for t in PLANE_TARGETS if t[0] in FAST_CORES}), ids=[c[len("cortex-"):] for c, _ in PLANE_TARGETS])
def test_plane_path_bit_exact_in_qemu(tmp_path, qemu, core, count):
    rng = np.random.default_rng(sum(map(ord, core)) + 14)
    run_target(tmp_path, core, plane_edge_cases(rng) + [plane_case(rng) for _ in range(count)])


KWS = DepthwiseGeometry.from_padding((25, 5, 64), (3, 3), 1, 1, "same", 1)
# CMSIS-NN's instructions for this layer (docs/benchmarks.md, `darbgen bench model` on kws_ref_model.tflite)
CMSIS_NN_KWS = {"cortex-m4": 560_953, "cortex-m55": 168_672}
# The plane path's on the layer with KWS's quantization, measured (138,215 and 63,613: 0.25x and 0.38x
# CMSIS-NN's), with 2 % to spare; the channel-block loop's (a left shift in one channel) was 319,125 and
# 129,320.
PLANE_KWS = {"cortex-m4": 141_000, "cortex-m55": 65_000}


def kws_case(rng, plane=True):
    """One image of the KWS layer with the quantization of kws_ref_model.tflite's depthwise layers (input
    and output zero point -128, ReLU as the whole int8 range, right shifts 5..9); plane=False puts a left
    shift in one channel, which sends the layer to the channel-block loop."""
    x, w, bias, g, _, _, _, _, _, _ = random_case(rng, KWS)
    m = rng.integers(1 << 30, 1 << 31, g.out_c).astype(np.int64)
    s = -rng.integers(5, 10, g.out_c).astype(np.int64)
    bias = rng.integers(-9000, 9000, g.out_c).astype(np.int64)
    if not plane:
        s[17] = 1
        m[17] = 1 << 30
    return x[:1], w, bias, g, -128, -128, m, s, -128, 127


def count_kws(tmp_path, core, case):
    """darb_depthwise_s8's instructions on one case in QEMU (checked bit-exact)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    _runtime_files(tmp_path)
    (tmp_path / "main.c").write_text(TARGET_DRIVER)
    c = cortex_m.core(core)
    elf = cortex_m.link_image(tmp_path, ["main.c", "darb_depthwise.c"], c)
    wants = write_cases(tmp_path, [case])
    trace = tmp_path / "trace.log"
    cortex_m.run_image(elf, c, tmp_path, trace=trace)
    check_outputs((tmp_path / "out.bin").read_bytes(), [case], wants, core)
    syms = cortex_m.symbols(elf)
    callers = [(a, a + n) for name, (a, n) in syms.items() if name in ("main", "run_case")]
    (count,) = cortex_m.count_calls(trace, [syms["darb_depthwise_s8"][0]], callers)
    trace.unlink()
    return count


@pytest.mark.parametrize("core", list(CMSIS_NN_KWS))
def test_kws_layer_beats_cmsis_nn(tmp_path, qemu, core):
    """The KWS depthwise layer: bit-exact, and at most PLANE_KWS instructions through the plane path;
    through the channel-block loop (a layer the plane path does not take) still fewer than CMSIS-NN's."""
    rng = np.random.default_rng(7)
    count = count_kws(tmp_path / "plane", core, kws_case(rng))
    assert count <= PLANE_KWS[core], f"{core}: {count:,} instructions, at most {PLANE_KWS[core]:,} expected"
    count = count_kws(tmp_path / "blocks", core, kws_case(rng, plane=False))
    assert count < CMSIS_NN_KWS[core], f"{core}: {count:,} instructions, CMSIS-NN {CMSIS_NN_KWS[core]:,}"
