"""darb_fc_s8: DARB packed int8 weights times one input vector (runtime_c/src/darb_fc_s8.c), on each of its paths.

Each case is a C table entry whose run function calls darb_fc_s8 once on the
input (at a misalignment); the outputs must equal darbgen's NumPy int8
arithmetic on the masked matrix (the reference of tests/test_mm_s8.py) bit for
bit, and the 16 bytes on either side of the output must stay untouched. The
patterns are darbgen's own packed encoding (darbgen.formats.encode, with the
generator's 3-byte offset tail), with every class kind the kernel tells apart:
power-of-two blocks of 2 to 512 (rows of more and fewer blocks than a load,
a vector step or four-row step holds, rows whose offsets are not whole bytes,
so that rows start at every bit phase), other sizes (the general bit reader
and, on the M55, the four-row steps), b = 1 (dense rows), blocks as wide as
the row, classes of more rows than a batch, per-row and shared scales (the
shorter output stage of the DSP cores, with and without the whole int8 clamp),
left shifts, tables and extreme values. The host runs the portable path and
-DDARB_COMPACT under the sanitizers (input and output in exact-size heap
blocks); QEMU runs the portable path (M0+, M3), the DSP path (M4, M7, M33),
MVE (M55), the compact loop and -O0 builds (M4, M55: C loops stand in for the
asm ones). The count test measures a 128 x 128
layer at 8x and 4x (the MLPerf Tiny AD autoencoder's hidden layers' block
mix) on the M4 and the M55 against darb_mm_s8 on the unpruned matrix.
"""
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest

from conftest import slow_except
from darbgen.codegen.cformat import c_initializer
from darbgen.codegen.layer import OFFSET_TAIL_BYTES
from darbgen.formats import encode
from darbgen.resources import runtime_c_dir
from darbgen.toolchain import cortex_m, host
from darbgen.verify import _run_harness, _run_target
from test_fc_tile import darb_mask
from test_mm_s8 import GUARD, SENTINEL, check, make_case, scale_arrays, shared_scale

POW2 = (2, 4, 8, 16, 32, 64, 128, 256, 512)


def packed_case(rng, rows, cols, sizes, block_sizes=None, **kw):
    """A one-vector make_case case whose weight is DARB-pruned: each row's block size drawn from ``sizes`` (or
    ``block_sizes``, one per row), at most the row's width."""
    c = make_case(rng, rows, cols, 1, **kw)
    b = np.asarray(block_sizes) if block_sizes is not None else rng.choice(np.asarray(sizes), rows)
    c.block_sizes = np.minimum(b, cols)
    c.mask = darb_mask(rng, rows, cols, c.block_sizes)
    c.weight = np.where(c.mask, c.weight, 0).astype(np.int8)
    return c


def class_rows(counts):
    """Block sizes for rows, ``counts`` = {block: rows}, in a shuffled row order (deterministic)."""
    sizes = np.concatenate([np.full(n, b) for b, n in counts.items()])
    return np.random.default_rng(len(sizes)).permutation(sizes)


def shared_left(c, shift):
    """Every row with row 0's multiplier and one left shift: weights of -1..1 and small biases keep every
    accumulator shifted inside int32."""
    c.weight = np.clip(c.weight, -1, 1).astype(np.int8)
    c.bias = (c.bias % 2001 - 1000).astype(np.int32)
    c.multiplier = np.full(c.rows, c.multiplier[0], np.int32)
    c.shift = np.full(c.rows, shift, np.int8)
    return c


def shared_exact(c, clamp=(-128, 127), offset=None):
    """A per-tensor layer's output stage: one multiplier and right shift for every row, the given clamp."""
    c = shared_scale(c)
    c.act_min, c.act_max = clamp
    if offset is not None:
        c.output_offset = offset
    c.lut = None
    return c


def fast_cases(seed=0):
    rng = np.random.default_rng(seed)
    cases = []
    # each power-of-two class alone: rows of many blocks with a partial last block, of 3 and 5 blocks, a
    # 128-column layer, and more blocks than a vector or a word of offsets holds; 1 to 9 rows (the four-row
    # steps' tails), per-row scales
    for k, b in enumerate(POW2):
        for cols in (b * 17 + b // 2 + 1, b * 3, b * 5 - 1, 128, min(b * 33, 3000)):
            cases.append(packed_case(rng, 1 + (k + cols) % 9, cols, (b,), n_random=1))
    # rows whose offsets are not whole bytes start at every bit phase; a class of more rows than a batch
    for b, cols in ((2, 7), (4, 13), (8, 40), (8, 136), (16, 80), (16, 272), (32, 160), (32, 224), (32, 288),
                    (64, 448), (128, 384), (4, 100)):
        cases.append(packed_case(rng, 23, cols, (b,), n_random=1))
    cases.append(packed_case(rng, 70, 128, (8,), n_random=1))
    # rows of 1 to 64 blocks, each row one vector or several rows a vector (the M55's 8-bit lanes), and rows of
    # whole groups of a word of offsets (the DSP cores' row loops), with and without a partial last block
    for b in POW2:
        for nb in (1, 2, 4, 8, 16, 32, 64):
            if 2 <= nb * b <= 2048:
                cols = nb * b - (b // 2 if (nb + b) % 3 == 0 else 0)
                cases.append(packed_case(rng, 1 + (nb + b) % 19, cols, (b,), n_random=1))
    cases.append(packed_case(rng, 300, 40, (2, 4, 8, 16, 32), n_random=1))       # many batches
    # rows of whole bytes of offsets longer than 16 blocks with a few blocks after the last 16 (and odd numbers of
    # 16-block steps)
    for b, nb in ((2, 24), (2, 40), (2, 56), (4, 20), (4, 36), (4, 44), (8, 24), (8, 40), (16, 18), (16, 34)):
        cases.append(packed_case(rng, 1 + nb % 7, nb * b - b // 2, (b,), n_random=1))
    cases.append(shared_exact(packed_case(rng, 75, 40, (32,), n_random=1)))
    cases.append(packed_case(rng, 37, 640, (2, 4, 8, 16), n_random=1))
    # other sizes (the general reader), dense rows (b = 1), blocks as wide as the row, mixed classes
    for rows, cols in ((9, 64), (16, 40), (33, 300), (7, 17), (12, 1), (5, 3), (40, 200), (3, 1000), (6, 2000)):
        cases.append(packed_case(rng, rows, cols, (1, 2, 3, 4, 5, 6, 8, 12, 16, 32, 64, 100, 300, 1024)))
    cases.append(packed_case(rng, 5, 2500, (), (1000, 1024, 2500, 600, 1024)))    # offsets of 10 to 12 bits
    for cols in (1, 15, 16, 17, 33, 100):
        cases.append(packed_case(rng, 6, cols, (1,), n_random=1))
    for _ in range(6):
        rows, cols = int(rng.integers(1, 60)), int(rng.integers(1, 700))
        cases.append(packed_case(rng, rows, cols, (1, 2, 4, 7, 8, 16, 32, 128, 512)))
    # the AD autoencoder's mixes, per-tensor (the DSP cores' shorter output stage)
    for rows, cols, counts in ((128, 128, {2: 14, 4: 11, 8: 24, 16: 31, 32: 31, 64: 7, 128: 10}),
                               (128, 640, {2: 12, 4: 23, 8: 21, 16: 16, 32: 14, 64: 8, 128: 6, 256: 3, 512: 25}),
                               (128, 8, {8: 128}), (8, 128, {4: 1, 8: 6, 16: 1})):
        cases.append(shared_exact(packed_case(rng, rows, cols, (), class_rows(counts), n_random=1), offset=-128))
    # output stages: tables, extremes, clamps, shared scales with and without the whole int8 clamp, left shifts
    lut = rng.integers(-128, 128, 256).astype(np.int8)
    for rows, cols in ((6, 300), (8, 64), (13, 128)):
        cases.append(packed_case(rng, rows, cols, (2, 4, 8, 32), extreme=True))
        cases.append(packed_case(rng, rows, cols, (2, 4, 8, 64), extreme=True, lut=lut))
        cases.append(shared_exact(packed_case(rng, rows, cols, (4, 8, 16), extreme=True)))
    cases.append(packed_case(rng, 6, 20, (2, 4), clamp=(127, 127)))
    cases.append(packed_case(rng, 6, 20, (2, 4), clamp=(-128, -128)))
    cases.append(packed_case(rng, 7, 24, (2, 4, 8), clamp=(-5, 3), lut=lut))
    for clamp, offset in (((-128, 127), 5), ((-20, 127), -20), ((-128, 0), 100), ((-7, 9), 127), ((3, 3), -128)):
        cases.append(shared_exact(packed_case(rng, 9, 96, (2, 8, 16, 32)), clamp, offset))
    shared_lut = shared_scale(packed_case(rng, 9, 96, (2, 8, 16)))
    shared_lut.lut = lut
    cases.append(shared_lut)
    for shift in (0, 1, 2, 8):
        cases.append(shared_left(packed_case(rng, 9, 50, (2, 4, 8)), shift))
    for shift in (0, -1, -2, -3, -31):    # halves at every shift: rounding away from zero, both signs
        c = packed_case(rng, 8, 64, (4, 8), n_random=6)
        c.weight = np.where(c.mask, rng.integers(-1, 2, (8, 64)), 0).astype(np.int8)
        c.bias = rng.integers(-50, 51, 8).astype(np.int32)
        c.multiplier = np.full(8, 1 << 30, np.int32)
        c.shift = np.full(8, shift, np.int8)
        c.output_offset, c.act_min, c.act_max, c.lut = 0, -128, 127, None
        cases.append(c)
    return cases


_RUN = """
typedef struct {
    const darb_pattern *pattern;
    const int8_t *values;
    const darb_quant_s8 *quant;
    uint32_t in_off, in_bytes, out_bytes;
} fc_case;

/* the counted call */
__attribute__((noinline)) void fc_layer(const fc_case *c, const int8_t *x, int8_t *y)
{
    darb_fc_s8(c->pattern, c->values, c->quant, x, y);
}

__attribute__((noinline)) void fc_call(const fc_case *c, const void *in, void *out)
{
    int8_t *o = (int8_t *)out;
    uint32_t i;
    for (i = 0; i < c->out_bytes + 2u * GUARD; ++i) {
        o[i] = (int8_t)SENTINEL;
    }
#ifdef FC_EXACT_BUFFERS
    {
        int8_t *x = (int8_t *)malloc(c->in_bytes);
        int8_t *y = (int8_t *)malloc(c->out_bytes);
        if (x == 0 || y == 0) {
            abort();
        }
        memcpy(x, in, c->in_bytes);
        fc_layer(c, x + c->in_off, y);
        memcpy(o + GUARD, y, c->out_bytes);
        free(x);
        free(y);
    }
#else
    fc_layer(c, (const int8_t *)in + c->in_off, o + GUARD);
#endif
}
"""

_DENSE = """
/* the unpruned matrix through darb_mm_s8 (one pixel), for the counts */
__attribute__((noinline)) void fc_dense(const int8_t *x, int8_t *y)
{
    darb_mm_s8(&dense_shape, dense_weights, &DENSE_QUANT, x, 1u, DENSE_COLS, y);
}

static void dense_run(const void *in, void *out)
{
    int8_t *o = (int8_t *)out;
    uint32_t i;
    for (i = 0; i < DENSE_ROWS + 2u * GUARD; ++i) {
        o[i] = (int8_t)SENTINEL;
    }
    fc_dense((const int8_t *)in + DENSE_IN_OFF, o + GUARD);
}
"""


def c_source(cases, dense=None):
    """The C table of ``cases``; ``dense``: (case index, full int8 weight) also run through darb_mm_s8."""
    src = ["#include <stdint.h>", "#include <stdlib.h>", "#include <string.h>", '#include "darb.h"',
           '#include "darb_harness.h"', f"#define GUARD {GUARD}u", f"#define SENTINEL 0x{SENTINEL:02X}", _RUN]
    entries = []
    for i, c in enumerate(cases):
        enc = encode(c.weight, "darb", mask=c.mask, block_sizes=c.block_sizes)
        a = enc.arrays
        offsets = np.concatenate([a["offsets"], np.zeros(OFFSET_TAIL_BYTES, np.uint8)]) if a["offsets"].size else \
            np.zeros(1, np.uint8)
        for name, ctype, arr in (("values", "int8_t", a["values"]), ("offsets", "uint8_t", offsets),
                                 ("class_block", "uint16_t", a["class_block"]),
                                 ("class_rows", "uint16_t", a["class_rows"]),
                                 ("class_start", "uint32_t", a["class_start"]),
                                 ("row_order", "uint16_t", a["row_order"]), ("bias", "int32_t", c.bias)):
            src += [f"static const {ctype} c{i}_{name}[{max(arr.size, 1)}] = {{",
                    c_initializer(np.asarray(arr), ctype) if arr.size else "0", "};"]
        scale_src, mask = scale_arrays(i, c)
        src += scale_src
        lut = "0"
        if c.lut is not None:
            src += [f"static const int8_t c{i}_lut[256] = {{", c_initializer(c.lut, "int8_t"), "};"]
            lut = f"c{i}_lut"
        src += [f"static const darb_pattern c{i}_pattern = {{ {c.rows}u, {c.cols}u, {a['class_block'].size}u, "
                f"c{i}_class_block, c{i}_class_rows, c{i}_class_start, c{i}_row_order, c{i}_offsets }};",
                f"static const darb_quant_s8 c{i}_quant = {{ c{i}_bias, c{i}_mul, c{i}_shift, {c.output_offset}, "
                f"{c.act_min}, {c.act_max}, {lut}, {mask} }};",
                f"static const fc_case c{i} = {{ &c{i}_pattern, c{i}_values, &c{i}_quant, {c.in_off}u, "
                f"{c.in_bytes}u, {c.out_bytes}u }};",
                f"static void c{i}_run(const void *in, void *out) {{ fc_call(&c{i}, in, out); }}"]
        entries.append(f'{{ "c{i}", {c.in_bytes}u, {c.out_bytes + 2 * GUARD}u, c{i}_run }}')
    if dense is not None:
        i, weight = dense
        c = cases[i]
        src += [f"static const int8_t dense_weights[{weight.size}] = {{", c_initializer(weight.ravel(), "int8_t"),
                "};", f"static const darb_dense_shape dense_shape = {{ {c.rows}u, {c.cols}u }};",
                f"#define DENSE_QUANT c{i}_quant", f"#define DENSE_ROWS {c.rows}u", f"#define DENSE_COLS {c.cols}u",
                f"#define DENSE_IN_OFF {c.in_off}u", _DENSE]
        entries.append(f'{{ "dense", {c.in_bytes}u, {c.out_bytes + 2 * GUARD}u, dense_run }}')
    in_max = max(c.in_bytes for c in cases)
    out_max = max(c.out_bytes for c in cases) + 2 * GUARD
    src += ["const darb_harness_entry darb_harness_layers[] = {", ",\n".join("    " + e for e in entries), "};",
            f"const uint32_t darb_harness_count = {len(entries)}u;",
            f"int64_t darb_harness_in_buf[{(in_max + 7) // 8}];",
            f"int64_t darb_harness_out_buf[{(out_max + 7) // 8}];", ""]
    return "\n".join(src)


SOURCES = ("include/darb.h", "src/darb_internal.h", "src/darb_fc_s8.c", "harness/darb_harness.c",
           "harness/darb_harness.h")


def run_cases(cases, target="host", extra_flags=(), dense=None, trace=False):
    """Build and run the cases; returns (outputs per entry, instructions per darb_fc_s8 call then per darb_mm_s8
    call with ``trace``, else None)."""
    entry_cases = list(cases) + ([cases[dense[0]]] if dense is not None else [])
    inputs = [c.inputs for c in entry_cases]
    rt = runtime_c_dir()
    with tempfile.TemporaryDirectory(prefix="darbgen-fc-") as tmp:
        folder = Path(tmp)
        (folder / "fc_cases.c").write_text(c_source(cases, dense), encoding="ascii")
        main = "darb_harness_host.c" if target == "host" else "darb_harness_target.c"
        rels = SOURCES + (f"harness/{main}",) + (("src/darb_mm_s8.c",) if dense is not None else ())
        for rel in rels:
            (folder / Path(rel).name).write_bytes((rt / rel).read_bytes())
        sources = ["fc_cases.c", "darb_fc_s8.c", "darb_harness.c", main] + \
            (["darb_mm_s8.c"] if dense is not None else [])
        counts = None
        if target == "host":
            host.run_compiler([host.host_compiler(), *host.STRICT_FLAGS, *host.SANITIZE_FLAGS, *extra_flags,
                               "-DFC_EXACT_BUFFERS", "-I.", *sources, "-o", "fc"], cwd=folder)
            raw = _run_harness(folder / "fc", folder, inputs, 120)
        else:
            core = cortex_m.core(target)
            elf = cortex_m.link_image(folder, sources, core, "fc.elf", extra_flags)
            raw, _ = _run_target(elf, core, folder, inputs, cortex_m.RUN_TIMEOUT,
                                 trace=folder / "trace.log" if trace else None)
            if trace:
                syms = cortex_m.symbols(elf)
                entries = [syms["fc_layer"][0]] * len(cases) + ([syms["fc_dense"][0]] if dense is not None else [])
                callers = [(a, a + n) for name, (a, n) in syms.items()
                           if (name.startswith(("darb_harness", "darb_stack_call", "fc_call", "dense_run")) or
                               re.fullmatch(r"c\d+_run", name)) and n > 0]
                counts = cortex_m.count_calls(folder / "trace.log", entries, callers)
    outs, pos = [], 0
    for c in entry_cases:
        n = c.inputs.shape[0] * (c.out_bytes + 2 * GUARD)
        outs.append(np.frombuffer(raw, np.int8, n, pos).reshape(c.inputs.shape[0], -1))
        pos += n
    assert pos == len(raw)
    return outs, counts


def test_cases_cover_every_class_kind():
    """Every power-of-two class, other sizes, b = 1, per-row and shared scales, left shifts, tables, rows starting
    at every bit phase, classes of more rows than a batch."""
    cases = fast_cases()
    sizes = set()
    for c in cases:
        sizes |= {int(b) for b in c.block_sizes}
    assert set(POW2) <= sizes and {1, 3, 5, 12, 100, 300} <= sizes
    shared = [c for c in cases if np.all(c.multiplier == c.multiplier[0]) and np.all(c.shift == c.shift[0])]
    assert any(c.shift[0] > 0 for c in shared) and any(c.shift[0] < 0 for c in shared)
    assert any(c.lut is not None for c in cases) and any(c.lut is None and c.act_min > -128 for c in shared)
    assert any(np.bincount(c.block_sizes).max() > 32 for c in cases)
    phases = set()
    for c in cases:
        for b in set(int(v) for v in c.block_sizes):
            if b > 1 and b & (b - 1) == 0:
                row_bits = -(-c.cols // b) * (b.bit_length() - 1)
                phases |= {(b, row_bits * r % 8) for r in range(int(np.sum(c.block_sizes == b)))}
    assert {(8, p) for p in range(8)} <= phases and {(32, p) for p in range(8)} <= phases


def test_host_sanitized(gcc):
    """The portable path and -DDARB_COMPACT on the host: strict flags, ASan + UBSan, exact-size buffers."""
    cases = fast_cases()
    for flags in ((), ("-DDARB_COMPACT",)):
        outs, _ = run_cases(cases, "host", flags)
        check(cases, outs, f"host {' '.join(flags)}")


# by default one core of each path (portable, DSP, MVE; compact: test_host_sanitized); every one in the full run
@pytest.mark.parametrize("core, flags", slow_except([("cortex-m0plus", ()), ("cortex-m3", ()), ("cortex-m4", ()),
                                                     ("cortex-m7", ()), ("cortex-m33", ()), ("cortex-m55", ()),
                                                     ("cortex-m4", ("-DDARB_COMPACT",)),
                                                     ("cortex-m55", ("-DDARB_COMPACT",)),
                                                     ("cortex-m4", ("-O0",)), ("cortex-m55", ("-O0",))], {("cortex-m0plus", ()), ("cortex-m4", ()), ("cortex-m55", ())}))
def test_on_target(qemu, core, flags):
    """Every path on its core in QEMU: portable (M0+, M3), DSP (M4, M7, M33), MVE (M55), compact, and at -O0 the C
    loops that stand in for the asm ones."""
    cases = fast_cases()
    outs, _ = run_cases(cases, core, flags)
    check(cases, outs, f"{core} {' '.join(flags)}")


def ad_layer(counts, seed=5):
    """A 128 x 128 hidden layer of the AD autoencoder pruned with the given block mix, per-tensor quantized
    (one multiplier, a right shift, output zero point -128, the whole int8 clamp)."""
    rng = np.random.default_rng(seed)
    c = packed_case(rng, 128, 128, (), class_rows(counts), n_random=2, w_off=0, in_off=0, clamp=(-128, 127))
    c.multiplier = np.full(128, 1_518_500_250, np.int32)
    c.shift = np.full(128, -9, np.int8)
    c.bias = rng.integers(-3000, 3000, 128).astype(np.int32)
    c.output_offset = -128
    return c, rng.integers(-128, 128, (128, 128)).astype(np.int8)


#: the block mixes darbgen's DARB pruning gives ad01's dense_1 at 8x and 4x
AD_8X = {2: 14, 4: 11, 8: 24, 16: 31, 32: 31, 64: 7, 128: 10}
AD_4X = {1: 4, 2: 26, 4: 37, 8: 32, 16: 23, 32: 4, 64: 1, 128: 1}

#: darb_fc_s8's instructions on those layers, at most: what was measured (M4 13,326 at 8x, 21,566 at 4x; M55 2,708
#: and 3,613; before this kernel's rewrite 23,532, 34,337, 17,168 and 23,844) with 3 % to spare
LIMITS = {("cortex-m4", 8): 13_700, ("cortex-m4", 4): 22_200, ("cortex-m55", 8): 2_790, ("cortex-m55", 4): 3_720}


@pytest.mark.parametrize("core", ["cortex-m4", "cortex-m55"])
def test_instructions(qemu, core, record_property):
    """Counted in QEMU on a 128 x 128 layer at 8x and 4x: at most the measured figures, and fewer instructions than
    darb_mm_s8 on the unpruned matrix."""
    for ratio, mix in ((8, AD_8X), (4, AD_4X)):
        c, dense_w = ad_layer(mix)
        outs, counts = run_cases([c], core, dense=(0, dense_w), trace=True)
        check([c], outs[:1], core)
        pruned, dense = counts
        kept = int(c.mask.sum())
        record_property(f"{core} 128x128 {ratio}x", {"darb_fc_s8": pruned, "darb_mm_s8 dense": dense})
        print(f"{core} 128x128 at {ratio}x ({kept} kept): darb_fc_s8 {pruned:,} ({pruned / c.rows:.1f} per row, "
              f"{pruned / kept:.2f} per kept weight), darb_mm_s8 unpruned {dense:,}, ratio {pruned / dense:.3f}")
        assert pruned <= LIMITS[(core, ratio)]
        assert pruned < dense
