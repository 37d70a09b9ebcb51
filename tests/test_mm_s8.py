"""darb_mm_s8: the int8 matrix times several pixels' vectors (runtime_c/src/darb_mm_s8.c).

Every case is a C table entry (runtime_c/harness) whose run function calls
darb_mm_s8 on one input buffer (its pixels ``in_stride`` apart, at a chosen
misalignment, the weights at another); the outputs must equal darbgen's
NumPy int8 arithmetic (darbgen.qmath.requantize_s8, as
darbgen.layers.dense.dense_int) bit for bit, and the 16 bytes on either side
of the output must stay untouched. The host runs the portable C path and the
-DDARB_COMPACT loop under the sanitizers (inputs and outputs in heap blocks
of their exact size); QEMU runs the portable path (Cortex-M0+), the SMLAD
path (Cortex-M4, M7, M33; with and without widened weights) and the MVE path
(Cortex-M55), and the compact loop. The last test counts instructions per
multiply-add in QEMU against darb_dense_fc_s8 called once per pixel and
CMSIS-NN's figures.
"""
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from conftest import slow_except
from darbgen.codegen.cformat import c_initializer
from darbgen.qmath import requantize_s8
from darbgen.resources import runtime_c_dir
from darbgen.toolchain import cortex_m, host
from darbgen.verify import _run_harness, _run_target

GUARD = 16          # bytes checked on either side of the output
SENTINEL = 0x5A
INT32_MAX = (1 << 31) - 1


@dataclass
class Case:
    rows: int
    cols: int
    pixels: int
    in_stride: int
    weight: np.ndarray          # (rows, cols) int8
    bias: np.ndarray            # (rows,) int32
    multiplier: np.ndarray      # (rows,) int32, 0 .. 2^31 - 1
    shift: np.ndarray           # (rows,) int8, -31 .. 30
    output_offset: int
    act_min: int
    act_max: int
    lut: np.ndarray = None      # (256,) int8 or None
    w_off: int = 0              # misalignment of the weights
    in_off: int = 0             # misalignment of the input
    inputs: np.ndarray = None   # (n, in_bytes) int8

    @property
    def in_bytes(self):
        return self.in_off + max(self.pixels - 1, 0) * self.in_stride + self.cols

    @property
    def out_bytes(self):
        return self.pixels * self.rows

    @property
    def macs(self):
        return self.rows * self.cols * self.pixels

    def reference(self, x):
        """(n, in_bytes) int8 -> (n, pixels * rows) int8: dense_int's arithmetic per pixel."""
        if self.pixels == 0:
            return np.zeros((x.shape[0], 0), np.int8)
        starts = self.in_off + self.in_stride * np.arange(self.pixels)
        pix = np.stack([x[:, s:s + self.cols] for s in starts], axis=1).astype(np.int64)
        acc = pix @ self.weight.astype(np.int64).T + self.bias.astype(np.int64)
        left = np.maximum(self.shift.astype(np.int64), 0)
        assert np.abs(acc << left).max() <= INT32_MAX              # as the generator proves for its layers
        v = requantize_s8(acc, self.multiplier.astype(np.int64), self.shift.astype(np.int64)) + self.output_offset
        v = np.clip(v, self.act_min, self.act_max)
        if self.lut is not None:
            v = self.lut.astype(np.int64)[v + 128]
        return v.reshape(x.shape[0], -1).astype(np.int8)


def make_case(rng, rows, cols, pixels, in_stride=None, extreme=False, n_random=2, w_off=None, in_off=None,
              clamp=None, lut=None):
    """A random case; ``extreme``: weights and inputs at -128 / 127 and the
    largest biases the accumulator allows (rows that shift left keep their
    shifted accumulator inside int32, as the generator proves)."""
    in_stride = cols + int(rng.integers(0, 9)) if in_stride is None else in_stride
    w_off = int(rng.integers(0, 4)) if w_off is None else w_off
    in_off = int(rng.integers(0, 4)) if in_off is None else in_off
    multiplier = rng.integers(1 << 30, 1 << 31, rows).astype(np.int64)
    special = rng.random(rows) < 0.25
    multiplier[special] = rng.choice([0, 1, (1 << 30), INT32_MAX], int(special.sum()))
    shift = rng.integers(-12, 1, rows)
    ends = rng.random(rows) < 0.3
    shift[ends] = rng.choice([-31, -30, -1, 1, 2, 8, 29, 30], int(ends.sum()))
    if extreme:
        weight = rng.choice(np.array([-128, 127, -127, 0]), (rows, cols), p=[0.45, 0.45, 0.05, 0.05])
    else:
        weight = rng.integers(-128, 128, (rows, cols))
    bias = np.zeros(rows, np.int64)
    for r in range(rows):
        left = max(int(shift[r]), 0)
        limit = (1 << (31 - left)) - 1                    # |acc| limit, shifted or not
        products = 128 * int(np.abs(weight[r]).sum())
        if products > limit // 2:                          # a row that shifts far left: few, small weights
            keep = np.zeros(cols, bool)
            keep[rng.permutation(cols)[:(limit // 2) // 128]] = True
            weight[r] = np.where(keep, np.clip(weight[r], -1, 1), 0)
            products = 128 * int(np.abs(weight[r]).sum())
        room = limit - products
        bias[r] = rng.choice([room, -room]) if extreme else rng.integers(-min(room, 1 << 20), min(room, 1 << 20) + 1)
    if clamp is None:
        lo, hi = sorted(rng.integers(-128, 128, 2)) if rng.random() < 0.3 else (-128, 127)
    else:
        lo, hi = clamp
    case = Case(rows, cols, pixels, in_stride, weight.astype(np.int8), bias.astype(np.int32),
                multiplier.astype(np.int32), shift.astype(np.int8), int(rng.integers(-128, 128)), int(lo), int(hi),
                lut, w_off, in_off)
    n = case.in_bytes
    xs = [rng.integers(-128, 128, n) for _ in range(n_random)]
    if extreme:
        xs += [np.full(n, -128), np.full(n, 127), np.where(np.arange(n) % 2 == 0, -128, 127)]
    case.inputs = np.stack(xs).astype(np.int8)
    return case


def shared_scale(c):
    """The case with row 0's multiplier and shift on every row (the bias keeps every row's accumulator in range:
    the shift only moves right, or left no more than row 0's did)."""
    c.multiplier = np.full(c.rows, c.multiplier[0], np.int32)
    c.shift = np.full(c.rows, min(int(c.shift[0]), 0), np.int8)
    return c


def is_shared(c):
    return c.rows > 1 and np.all(c.multiplier == c.multiplier[0]) and np.all(c.shift == c.shift[0])


def scale_arrays(i, c):
    """The C arrays of a case's multipliers and shifts, and its scale_mask: one pair when the rows share it."""
    n = 1 if is_shared(c) else c.rows
    return ([f"static const int32_t c{i}_mul[{n}] = {{", c_initializer(c.multiplier[:n], "int32_t"), "};",
             f"static const int8_t c{i}_shift[{n}] = {{", c_initializer(c.shift[:n], "int8_t"), "};"],
            "DARB_SCALE_SHARED" if n == 1 and c.rows > 1 else "DARB_SCALE_PER_ROW")


def edge_cases(seed=0):
    """Every small shape (odd rows, odd pixels, each column tail), large and
    strided ones, and the extremes."""
    rng = np.random.default_rng(seed)
    cases = []
    k = 0
    for rows in (1, 2, 3, 4, 5, 6, 7, 8, 9):
        for cols in (1, 2, 3, 4, 5, 7, 8, 12, 15, 16, 17, 19, 20, 31, 32, 33, 47, 48, 49, 64):
            cases.append(make_case(rng, rows, cols, 1 + k % 7, n_random=1))
            k += 1
    for rows, cols, pixels in ((64, 64, 5), (64, 40, 4), (70, 300, 7), (69, 299, 3), (33, 65, 6), (2, 300, 2),
                               (70, 1, 7), (1, 300, 1), (16, 128, 2), (11, 97, 5)):
        cases.append(make_case(rng, rows, cols, pixels))
    for _ in range(12):
        rows, cols = int(rng.integers(1, 71)), int(rng.integers(1, 301))
        cases.append(make_case(rng, rows, cols, int(rng.integers(1, 8)), in_stride=cols + int(rng.integers(0, 40))))
    lut = rng.integers(-128, 128, 256).astype(np.int8)
    for rows, cols, pixels in ((5, 300, 3), (4, 64, 2), (3, 17, 7), (70, 33, 4)):
        cases.append(make_case(rng, rows, cols, pixels, extreme=True))
        cases.append(make_case(rng, rows, cols, pixels, extreme=True, lut=lut))
    cases.append(make_case(rng, 6, 20, 3, clamp=(127, 127)))
    cases.append(make_case(rng, 6, 20, 3, clamp=(-128, -128)))
    cases.append(make_case(rng, 7, 24, 5, clamp=(-5, 3), lut=lut))
    cases.append(make_case(rng, 9, 36, 2, in_stride=36, w_off=1, in_off=3))
    # 8 pixels or more: the SMLAD path widens each row pair's weights first
    # when cols <= DARB_MM_PACK_COLS (64; 128 in one build below)
    for k, cols in enumerate((4, 5, 7, 12, 15, 16, 17, 20, 33, 40, 63, 64, 65, 100, 127, 128, 129, 300)):
        cases.append(make_case(rng, (2, 3, 5, 8)[k % 4], cols, 8 + k % 5))
    cases.append(make_case(rng, 7, 96, 11, extreme=True))
    cases.append(make_case(rng, 6, 24, 9, in_stride=0))            # every pixel the same vector
    cases.append(make_case(rng, 5, 24, 10, in_stride=7))           # overlapping pixel vectors
    cases.append(make_case(rng, 4, 24, 0))                         # no pixels: nothing written
    # one pixel (a fully connected layer): four rows at a time, then a pair, then the odd row
    for rows, cols in ((4, 16), (5, 17), (7, 64), (8, 3), (11, 100), (13, 33), (64, 640)):
        cases.append(make_case(rng, rows, cols, 1))
    cases.append(make_case(rng, 9, 48, 1, extreme=True))
    # one multiplier and shift for every row (a per-tensor layer: DARB_SCALE_SHARED), on each path
    for rows, cols, pixels in ((7, 40, 1), (8, 64, 5), (5, 33, 9), (70, 20, 3)):
        cases.append(shared_scale(make_case(rng, rows, cols, pixels, clamp=(-128, 127))))
    for rows in (8, 7):                 # halves at every shift: rounding away from zero, both signs
        c = make_case(rng, rows, 16, 5, n_random=4)
        c.weight = rng.integers(-1, 2, (rows, 16)).astype(np.int8)
        c.bias = rng.integers(-50, 51, rows).astype(np.int32)
        c.multiplier = np.full(rows, 1 << 30, np.int32)
        c.shift = (-np.arange(rows) % 4).astype(np.int8) * -1
        c.output_offset, c.act_min, c.act_max, c.lut = 0, -128, 127, None
        cases.append(c)
    return cases


# ----------------------------------------------------------------------------- C

_RUN = """
typedef struct {
    const darb_dense_shape *shape;
    const int8_t *weights;
    const darb_quant_s8 *quant;
    uint32_t in_off, pixels, in_stride, in_bytes, out_bytes;
} mm_case;

/* out: GUARD sentinel bytes, the output, GUARD more. On the host the input
 * and output live in heap blocks of their exact size, so that the sanitizer
 * sees any access past them. */
__attribute__((noinline)) void mm_call(const mm_case *c, const void *in, void *out)
{
    int8_t *o = (int8_t *)out;
    uint32_t i;
    for (i = 0; i < c->out_bytes + 2u * GUARD; ++i) {
        o[i] = (int8_t)SENTINEL;
    }
#ifdef MM_EXACT_BUFFERS
    {
        int8_t *x = (int8_t *)malloc(c->in_bytes);
        int8_t *y = (int8_t *)malloc(c->out_bytes);
        if (x == 0 || y == 0) {
            abort();
        }
        memcpy(x, in, c->in_bytes);
        darb_mm_s8(c->shape, c->weights, c->quant, x + c->in_off, c->pixels, c->in_stride, y);
        memcpy(o + GUARD, y, c->out_bytes);
        free(x);
        free(y);
    }
#else
    darb_mm_s8(c->shape, c->weights, c->quant, (const int8_t *)in + c->in_off, c->pixels, c->in_stride, o + GUARD);
#endif
}

/* the same product, darb_dense_fc_s8 called once per pixel (for the counts) */
__attribute__((noinline)) void mm_per_pixel(const mm_case *c, const int8_t *x, int8_t *o)
{
    uint32_t p;
    for (p = 0; p < c->pixels; ++p) {
        darb_dense_fc_s8(c->shape, c->weights, c->quant, x + p * c->in_stride, o + p * c->shape->rows);
    }
}

static inline void mm_call_per_pixel(const mm_case *c, const void *in, void *out)
{
    uint32_t i;
    for (i = 0; i < c->out_bytes + 2u * GUARD; ++i) {
        ((int8_t *)out)[i] = (int8_t)SENTINEL;
    }
    mm_per_pixel(c, (const int8_t *)in + c->in_off, (int8_t *)out + GUARD);
}
"""


def c_source(cases, per_pixel=()):
    """The harness table: one entry per case (darb_mm_s8), then one per index
    in ``per_pixel`` (the same case through darb_dense_fc_s8)."""
    src = ["#include <stdint.h>", "#include <stdlib.h>", "#include <string.h>", '#include "darb.h"',
           '#include "darb_harness.h"', f"#define GUARD {GUARD}u", f"#define SENTINEL 0x{SENTINEL:02X}", _RUN]
    entries = []
    for i, c in enumerate(cases):
        w = np.concatenate([np.zeros(c.w_off, np.int8), c.weight.ravel()])
        src += [f"static const int8_t c{i}_w[{w.size}] = {{", c_initializer(w, "int8_t"), "};",
                f"static const int32_t c{i}_bias[{c.rows}] = {{", c_initializer(c.bias, "int32_t"), "};"]
        scale_src, mask = scale_arrays(i, c)
        src += scale_src
        lut = "0"
        if c.lut is not None:
            src += [f"static const int8_t c{i}_lut[256] = {{", c_initializer(c.lut, "int8_t"), "};"]
            lut = f"c{i}_lut"
        src += [f"static const darb_dense_shape c{i}_shape = {{ {c.rows}u, {c.cols}u }};",
                f"static const darb_quant_s8 c{i}_quant = {{ c{i}_bias, c{i}_mul, c{i}_shift, {c.output_offset}, "
                f"{c.act_min}, {c.act_max}, {lut}, {mask} }};",
                f"static const mm_case c{i} = {{ &c{i}_shape, c{i}_w + {c.w_off}, &c{i}_quant, {c.in_off}u, "
                f"{c.pixels}u, {c.in_stride}u, {c.in_bytes}u, {c.out_bytes}u }};",
                f"static void c{i}_run(const void *in, void *out) {{ mm_call(&c{i}, in, out); }}"]
        entries.append(f'{{ "c{i}", {c.in_bytes}u, {c.out_bytes + 2 * GUARD}u, c{i}_run }}')
    for i in per_pixel:
        src.append(f"static void c{i}_pp(const void *in, void *out) {{ mm_call_per_pixel(&c{i}, in, out); }}")
        c = cases[i]
        entries.append(f'{{ "c{i}_pp", {c.in_bytes}u, {c.out_bytes + 2 * GUARD}u, c{i}_pp }}')
    in_max = max(c.in_bytes for c in cases)
    out_max = max(c.out_bytes for c in cases) + 2 * GUARD
    src += ["const darb_harness_entry darb_harness_layers[] = {", ",\n".join("    " + e for e in entries), "};",
            f"const uint32_t darb_harness_count = {len(entries)}u;",
            f"int64_t darb_harness_in_buf[{(in_max + 7) // 8}];",
            f"int64_t darb_harness_out_buf[{(out_max + 7) // 8}];", ""]
    return "\n".join(src)


def _copy_runtime(folder, main_file):
    rt = runtime_c_dir()
    for path in (rt / "include" / "darb.h", rt / "src" / "darb_internal.h", rt / "src" / "darb_mm_s8.c",
                 rt / "src" / "darb_dense_fc_s8.c", rt / "harness" / "darb_harness.c",
                 rt / "harness" / "darb_harness.h", rt / "harness" / main_file):
        (Path(folder) / path.name).write_bytes(path.read_bytes())
    return ["mm_cases.c", "darb_mm_s8.c", "darb_dense_fc_s8.c", "darb_harness.c", main_file]


def run_cases(cases, target="host", extra_flags=(), per_pixel=(), trace=False):
    """Build the cases for ``target`` ("host": gcc with the sanitizers), run
    them; returns (outputs per entry, and with ``trace`` the instructions of
    each darb_mm_s8 call then of each per-pixel loop, else None)."""
    entry_cases = list(cases) + [cases[i] for i in per_pixel]
    inputs = [c.inputs for c in entry_cases]
    with tempfile.TemporaryDirectory(prefix="darbgen-mm-") as tmp:
        folder = Path(tmp)
        (folder / "mm_cases.c").write_text(c_source(cases, per_pixel), encoding="ascii")
        syms = counts = None
        if target == "host":
            sources = _copy_runtime(folder, "darb_harness_host.c")
            host.run_compiler([host.host_compiler(), *host.STRICT_FLAGS, *host.SANITIZE_FLAGS, *extra_flags,
                               "-DMM_EXACT_BUFFERS", "-I.", *sources, "-o", "mm"], cwd=folder)
            raw = _run_harness(folder / "mm", folder, inputs, 120)
        else:
            core = cortex_m.core(target)
            sources = _copy_runtime(folder, "darb_harness_target.c")
            elf = cortex_m.link_image(folder, sources, core, "mm.elf", extra_flags)
            raw, _ = _run_target(elf, core, folder, inputs, cortex_m.RUN_TIMEOUT,
                                 trace=folder / "trace.log" if trace else None)
            if trace:
                syms = cortex_m.symbols(elf)
                # darb_mm_s8 from its entry to its return into mm_call; the
                # per-pixel loop (mm_per_pixel) to its return into its caller
                entries = [syms["darb_mm_s8"][0]] * len(cases) + [syms["mm_per_pixel"][0]] * len(per_pixel)
                callers = [(a, a + n) for name, (a, n) in syms.items()
                           if (name.startswith(("darb_harness", "darb_stack_call", "mm_call")) or
                               re.fullmatch(r"c\d+_(run|pp)", name)) and n > 0]
                counts = cortex_m.count_calls(folder / "trace.log", entries, callers)
    outs, pos = [], 0
    for c in entry_cases:
        n = c.inputs.shape[0] * (c.out_bytes + 2 * GUARD)
        outs.append(np.frombuffer(raw, np.int8, n, pos).reshape(c.inputs.shape[0], -1))
        pos += n
    assert pos == len(raw)
    return outs, counts


def check(cases, outs, what):
    for i, (c, got) in enumerate(zip(cases, outs)):
        want = c.reference(c.inputs)
        guard = np.concatenate([got[:, :GUARD], got[:, GUARD + c.out_bytes:]], axis=1)
        assert np.all(guard.view(np.uint8) == SENTINEL), f"{what}: case {i} wrote outside its output"
        body = got[:, GUARD:GUARD + c.out_bytes]
        bad = np.argwhere(body != want)
        assert bad.size == 0, (f"{what}: case {i} ({c.rows}x{c.cols}, {c.pixels} pixels, stride {c.in_stride}): "
                               f"{len(bad)} outputs differ, first at {tuple(bad[0])}: C {body[tuple(bad[0])]}, "
                               f"reference {want[tuple(bad[0])]}")


# ----------------------------------------------------------------------------- tests

def test_reference_is_dense_int():
    """The test's NumPy arithmetic is darbgen's dense layer reference (dense_int) on each pixel."""
    from darbgen.graph import Dense
    from darbgen.layers.dense import dense_int, quantize_dense
    from darbgen.qmath import tensor_quant

    rng = np.random.default_rng(3)
    layer = Dense("d", rng.standard_normal((9, 21)).astype(np.float32), rng.standard_normal(9), activation="relu")
    q = quantize_dense(layer, "int8", input_quant=tensor_quant(-3.0, 2.0, "int8"), output_range=(-4.0, 6.0))
    case = Case(9, 21, 4, 25, q.weight, q.bias, q.multiplier, q.shift, q.output_offset, q.act_min, q.act_max,
                q.lut, 0, 2)
    x = rng.integers(-128, 128, (3, case.in_bytes)).astype(np.int8)
    got = case.reference(x).reshape(3, 4, 9)
    for p in range(4):
        pix = x[:, 2 + 25 * p: 2 + 25 * p + 21]
        assert np.array_equal(got[:, p], dense_int(q, pix))


def test_host_sanitized(gcc):
    """The portable path and -DDARB_COMPACT's loop: strict flags, -fsanitize=address,undefined, exact-size buffers."""
    cases = edge_cases()
    for flags in ((), ("-DDARB_COMPACT",)):
        outs, _ = run_cases(cases, "host", flags)
        check(cases, outs, f"host {' '.join(flags)}")


# by default one core of each path (portable, SMLAD, MVE; compact: test_host_sanitized); every one in the full run
@pytest.mark.parametrize("core, flags", slow_except([("cortex-m0plus", ()), ("cortex-m3", ()), ("cortex-m4", ()),
                                                     ("cortex-m55", ()), ("cortex-m7", ()), ("cortex-m33", ()),
                                                     ("cortex-m4", ("-DDARB_MM_PACK_COLS=0",)),
                                                     ("cortex-m4", ("-DDARB_MM_PACK_COLS=128",)),
                                                     ("cortex-m4", ("-DDARB_COMPACT",)),
                                                     ("cortex-m55", ("-DDARB_COMPACT",))], {("cortex-m0plus", ()), ("cortex-m4", ()), ("cortex-m55", ())}))
def test_on_target(qemu, core, flags):
    """Every path on its core in QEMU: portable C (M0+, M3), SMLAD 2x2 (M4, M7, M33; weights widened or not), MVE
    (M55), compact."""
    cases = edge_cases()
    outs, _ = run_cases(cases, core, flags)
    check(cases, outs, f"{core} {' '.join(flags)}")


# the counted layers: KWS's pointwise 1x1 (64 x 64 on 25 x 5 pixels) and its first
# convolution's matrix (10 x 4 x 1 patches: 64 x 40), 125 pixels each
COUNTED = ((64, 64, 125, 64), (64, 40, 125, 40))
#: CMSIS-NN's instructions per multiply-add on KWS's pointwise 1x1 layers (arm_convolve_wrapper_s8, 512,000
#: multiply-adds; `darbgen bench model kws_ref_model.tflite`, docs/benchmarks.md)
CMSIS_NN_POINTWISE = {"cortex-m4": 1_069_003 / 512_000, "cortex-m55": 202_897 / 512_000}
#: what darb_mm_s8 measures (M4: 1.47 and 1.73; M55: 0.31 and 0.44), with room for other compilers
LIMIT = {"cortex-m4": (1.6, 1.9), "cortex-m55": (0.35, 0.48)}


def counted_cases(seed=1):
    """The counted layers with a trained layer's output stage: per-channel
    multipliers in [2^30, 2^31), right shifts, a ReLU clamp, no table."""
    rng = np.random.default_rng(seed)
    cases = []
    for rows, cols, pixels, stride in COUNTED:
        c = make_case(rng, rows, cols, pixels, in_stride=stride, n_random=1, w_off=0, in_off=0, clamp=(-20, 127))
        c.multiplier = rng.integers(1 << 30, 1 << 31, rows).astype(np.int32)
        c.shift = rng.integers(-10, -5, rows).astype(np.int8)
        c.bias = rng.integers(-5000, 5000, rows).astype(np.int32)
        c.output_offset = -20
        cases.append(c)
    return cases


@pytest.mark.parametrize("core", ["cortex-m4", "cortex-m55"])
def test_instructions_per_mac(qemu, core, record_property):
    """Counted in QEMU: darb_mm_s8 against darb_dense_fc_s8 once per pixel,
    and below CMSIS-NN's instructions per multiply-add on KWS's pointwise
    layers (M4 2.09, M55 0.40)."""
    cases = counted_cases()
    outs, counts = run_cases(cases, core, per_pixel=range(len(cases)), trace=True)
    check(cases + cases, outs, core)
    n = len(cases)
    for c, mm, pp in zip(cases, counts[:n], counts[n:]):
        record_property(f"{core} {c.rows}x{c.cols}x{c.pixels}", {"darb_mm_s8": mm, "per_pixel": pp,
                                                                 "mm_per_mac": mm / c.macs,
                                                                 "per_pixel_per_mac": pp / c.macs})
        print(f"{core} {c.rows}x{c.cols} x {c.pixels} pixels: darb_mm_s8 {mm:,} ({mm / c.macs:.3f}/MAC), "
              f"darb_dense_fc_s8 per pixel {pp:,} ({pp / c.macs:.3f}/MAC), ratio {mm / pp:.3f}")
        assert mm < pp / 2
    per_mac = [mm / c.macs for c, mm in zip(cases, counts[:n])]
    assert per_mac[0] < CMSIS_NN_POINTWISE[core]
    assert per_mac[0] <= LIMIT[core][0] and per_mac[1] <= LIMIT[core][1]
