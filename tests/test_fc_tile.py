"""darb_fc_s8_tile: DARB packed int8 weights times tiles of 4 pixels (runtime_c/src/darb_fc_s8_tile.c),
the weight-stationary sparse convolution, and the tile writers of darb_graph.h (darb_tile_s8).

Each case is a C table entry whose run function writes its pixels (``in_stride``
apart, at a misalignment) into tiles of 4 with darb_tile_s8 and calls
darb_fc_s8_tile per tile, as a generated 1x1 convolution does. The outputs
must equal darbgen's NumPy int8 arithmetic on the masked matrix (the
reference of tests/test_mm_s8.py), and the 16 bytes on either side of the
output must stay untouched. The patterns are darbgen's own packed encoding
(darbgen.formats.encode, with the generator's 3-byte offset tail) with every
class kind: power-of-two blocks of 2 to 512 (each of the kernel's loops and
their tails), other sizes (the general bit reader), b = 1 (dense rows) and
blocks as wide as the row. The host runs the portable path and
-DDARB_COMPACT under the sanitizers (the tile and output in exact-size heap
blocks); QEMU runs the portable path (M0+, M3), the SMLAxB path (M4, M7,
M33), MVE (M55) and the compact loop. The count test compares the
instructions in QEMU with darb_fc_s8 called once per pixel.
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
from test_mm_s8 import GUARD, SENTINEL, check, make_case, scale_arrays, shared_scale

TILE = 4


def darb_mask(rng, rows, cols, block_sizes):
    """One kept position per block of each row (the last block may be partial)."""
    mask = np.zeros((rows, cols), bool)
    for r, b in enumerate(block_sizes):
        b = min(int(b), cols)
        for start in range(0, cols, b):
            mask[r, start + int(rng.integers(0, min(b, cols - start)))] = True
    return mask


def make_tile_case(rng, rows, cols, pixels, sizes, **kw):
    """A make_case case whose weight is DARB-pruned with block sizes drawn from ``sizes``."""
    c = make_case(rng, rows, cols, pixels, **kw)
    c.block_sizes = np.minimum(rng.choice(np.asarray(sizes), rows), cols)
    c.mask = darb_mask(rng, rows, cols, c.block_sizes)
    c.weight = np.where(c.mask, c.weight, 0).astype(np.int8)
    return c


def tile_cases(seed=0):
    rng = np.random.default_rng(seed)
    cases = []
    pow2 = (2, 4, 8, 16, 32, 64, 128, 256, 512)
    # each power-of-two class alone, with and without a tail of blocks, every pixel count
    for k, b in enumerate(pow2):
        for cols in (b * 16 + b // 2 + 1, b * 3, min(b * 33, 4000)):
            cases.append(make_tile_case(rng, 1 + (k + cols) % 7, cols, 1 + (k + cols) % 9, (b,), n_random=1))
    # mixed classes, other sizes (general loop), dense rows (b = 1), blocks wider than the row
    for rows, cols, pixels in ((9, 64, 5), (16, 40, 4), (33, 300, 7), (7, 17, 3), (12, 1, 4), (5, 3, 2),
                               (40, 200, 9), (3, 1000, 1)):
        cases.append(make_tile_case(rng, rows, cols, pixels, (1, 2, 3, 4, 5, 6, 8, 12, 16, 32, 64, 1024)))
    for _ in range(8):
        rows, cols = int(rng.integers(1, 50)), int(rng.integers(1, 400))
        cases.append(make_tile_case(rng, rows, cols, int(rng.integers(1, 12)), (1, 2, 4, 7, 8, 16, 128),
                                    in_stride=cols + int(rng.integers(0, 20))))
    lut = rng.integers(-128, 128, 256).astype(np.int8)
    for rows, cols, pixels in ((6, 300, 3), (8, 64, 6)):
        cases.append(make_tile_case(rng, rows, cols, pixels, (2, 4, 8), extreme=True))
        cases.append(make_tile_case(rng, rows, cols, pixels, (2, 4, 8), extreme=True, lut=lut))
    cases.append(make_tile_case(rng, 6, 24, 9, (4,), in_stride=0))        # every pixel the same vector
    for shift in (-1, -2, -31):         # the assembly output stage's constant k at each end of the right shifts
        c = make_tile_case(rng, 6, 40, 8, (2, 4), clamp=(-128, 127), n_random=3)
        c.shift = np.full(6, shift, np.int8)
        cases.append(c)
    for rows, cols, pixels in ((9, 64, 8), (5, 100, 3)):                   # one multiplier and shift for all rows
        c = make_tile_case(rng, rows, cols, pixels, (2, 4, 8), clamp=(-128, 127))
        cases.append(shared_scale(c))
    cases.append(make_tile_case(rng, 4, 24, 0, (4,)))                     # no pixels: nothing written
    return cases


_RUN = """
typedef struct {
    const darb_pattern *pattern;
    const int8_t *values;
    const darb_quant_s8 *quant;
    uint32_t in_off, pixels, in_stride, in_bytes, out_bytes;
} tile_case;

#ifndef TILE_EXACT_BUFFERS
static int8_t tile_buf[DARB_TILE * MAX_COLS];
#endif

/* the pixels DARB_TILE at a time, as a generated 1x1 convolution runs them (the counted call) */
__attribute__((noinline)) void tile_layer(const tile_case *c, const int8_t *x, int8_t *y, int8_t *tile)
{
    uint32_t p;
    for (p = 0; p < c->pixels; p += DARB_TILE) {
        const uint32_t n = p + DARB_TILE <= c->pixels ? DARB_TILE : c->pixels - p;
        darb_tile_s8(x + p * c->in_stride, n, c->in_stride, c->pattern->cols, tile);
        darb_fc_s8_tile(c->pattern, c->values, c->quant, tile, n, y + p * c->pattern->rows);
    }
}

__attribute__((noinline)) void tile_call(const tile_case *c, const void *in, void *out)
{
    int8_t *o = (int8_t *)out;
    uint32_t i;
    for (i = 0; i < c->out_bytes + 2u * GUARD; ++i) {
        o[i] = (int8_t)SENTINEL;
    }
#ifdef TILE_EXACT_BUFFERS
    {
        int8_t *x = (int8_t *)malloc(c->in_bytes + 1u);
        int8_t *y = (int8_t *)malloc(c->out_bytes + 1u);
        int8_t *t = (int8_t *)malloc(DARB_TILE * c->pattern->cols);
        if (x == 0 || y == 0 || t == 0) {
            abort();
        }
        memcpy(x, in, c->in_bytes);
        tile_layer(c, x + c->in_off, y, t);
        memcpy(o + GUARD, y, c->out_bytes);
        free(x);
        free(y);
        free(t);
    }
#else
    tile_layer(c, (const int8_t *)in + c->in_off, o + GUARD, tile_buf);
#endif
}

/* the same layer, darb_fc_s8 once per pixel (for the counts) */
__attribute__((noinline)) void tile_per_pixel(const tile_case *c, const int8_t *x, int8_t *o)
{
    uint32_t p;
    for (p = 0; p < c->pixels; ++p) {
        darb_fc_s8(c->pattern, c->values, c->quant, x + p * c->in_stride, o + p * c->pattern->rows);
    }
}

static inline void tile_call_per_pixel(const tile_case *c, const void *in, void *out)
{
    uint32_t i;
    for (i = 0; i < c->out_bytes + 2u * GUARD; ++i) {
        ((int8_t *)out)[i] = (int8_t)SENTINEL;
    }
    tile_per_pixel(c, (const int8_t *)in + c->in_off, (int8_t *)out + GUARD);
}
"""


def c_source(cases, per_pixel=()):
    src = ["#include <stdint.h>", "#include <stdlib.h>", "#include <string.h>", '#include "darb.h"',
           '#include "darb_graph.h"', '#include "darb_harness.h"', f"#define GUARD {GUARD}u",
           f"#define SENTINEL 0x{SENTINEL:02X}", f"#define MAX_COLS {max(c.cols for c in cases)}u", _RUN]
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
            src += [f"static const {ctype} c{i}_{name}[{arr.size}] = {{", c_initializer(np.asarray(arr), ctype),
                    "};"]
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
                f"static const tile_case c{i} = {{ &c{i}_pattern, c{i}_values, &c{i}_quant, {c.in_off}u, "
                f"{c.pixels}u, {c.in_stride}u, {c.in_bytes}u, {c.out_bytes}u }};",
                f"static void c{i}_run(const void *in, void *out) {{ tile_call(&c{i}, in, out); }}"]
        entries.append(f'{{ "c{i}", {c.in_bytes}u, {c.out_bytes + 2 * GUARD}u, c{i}_run }}')
    for i in per_pixel:
        src.append(f"static void c{i}_pp(const void *in, void *out) {{ tile_call_per_pixel(&c{i}, in, out); }}")
        c = cases[i]
        entries.append(f'{{ "c{i}_pp", {c.in_bytes}u, {c.out_bytes + 2 * GUARD}u, c{i}_pp }}')
    in_max = max(c.in_bytes for c in cases)
    out_max = max(c.out_bytes for c in cases) + 2 * GUARD
    src += ["const darb_harness_entry darb_harness_layers[] = {", ",\n".join("    " + e for e in entries), "};",
            f"const uint32_t darb_harness_count = {len(entries)}u;",
            f"int64_t darb_harness_in_buf[{(in_max + 7) // 8}];",
            f"int64_t darb_harness_out_buf[{(out_max + 7) // 8}];", ""]
    return "\n".join(src)


SOURCES = ("include/darb.h", "include/darb_graph.h", "src/darb_internal.h", "src/darb_fc_s8_tile.c",
           "src/darb_fc_s8.c", "src/darb_im2col.c", "harness/darb_harness.c", "harness/darb_harness.h")


def run_cases(cases, target="host", extra_flags=(), per_pixel=(), trace=False):
    """Build and run the cases; returns (outputs per entry, instructions per
    darb_fc_s8_tile layer then per per-pixel loop with ``trace``, else None)."""
    entry_cases = list(cases) + [cases[i] for i in per_pixel]
    inputs = [c.inputs for c in entry_cases]
    rt = runtime_c_dir()
    with tempfile.TemporaryDirectory(prefix="darbgen-tile-") as tmp:
        folder = Path(tmp)
        (folder / "tile_cases.c").write_text(c_source(cases, per_pixel), encoding="ascii")
        main = "darb_harness_host.c" if target == "host" else "darb_harness_target.c"
        for rel in SOURCES + (f"harness/{main}",):
            (folder / Path(rel).name).write_bytes((rt / rel).read_bytes())
        sources = ["tile_cases.c", "darb_fc_s8_tile.c", "darb_fc_s8.c", "darb_im2col.c", "darb_harness.c", main]
        counts = None
        if target == "host":
            host.run_compiler([host.host_compiler(), *host.STRICT_FLAGS, *host.SANITIZE_FLAGS, *extra_flags,
                               "-DTILE_EXACT_BUFFERS", "-I.", *sources, "-o", "tile"], cwd=folder)
            raw = _run_harness(folder / "tile", folder, inputs, 120)
        else:
            core = cortex_m.core(target)
            elf = cortex_m.link_image(folder, sources, core, "tile.elf", extra_flags)
            raw, _ = _run_target(elf, core, folder, inputs, cortex_m.RUN_TIMEOUT,
                                 trace=folder / "trace.log" if trace else None)
            if trace:
                syms = cortex_m.symbols(elf)
                entries = [syms["tile_layer"][0]] * len(cases) + [syms["tile_per_pixel"][0]] * len(per_pixel)
                callers = [(a, a + n) for name, (a, n) in syms.items()
                           if (name.startswith(("darb_harness", "darb_stack_call", "tile_call")) or
                               re.fullmatch(r"c\d+_(run|pp)", name)) and n > 0]
                counts = cortex_m.count_calls(folder / "trace.log", entries, callers)
    outs, pos = [], 0
    for c in entry_cases:
        n = c.inputs.shape[0] * (c.out_bytes + 2 * GUARD)
        outs.append(np.frombuffer(raw, np.int8, n, pos).reshape(c.inputs.shape[0], -1))
        pos += n
    assert pos == len(raw)
    return outs, counts


def test_cases_cover_every_class_kind():
    """The cases hold every power-of-two class the kernel specialises, other sizes, b = 1 and tails."""
    cases = tile_cases()
    sizes = set()
    for c in cases:
        sizes |= {int(b) for b in c.block_sizes}
    assert {2, 4, 8, 16, 32, 64, 128, 256, 512} <= sizes and {1, 3, 5} <= sizes
    assert any(c.pixels % TILE for c in cases) and any(c.pixels > TILE for c in cases)


def test_host_sanitized(gcc):
    """The portable path and -DDARB_COMPACT on the host: strict flags, ASan + UBSan, exact-size buffers."""
    cases = tile_cases()
    for flags in ((), ("-DDARB_COMPACT",)):
        outs, _ = run_cases(cases, "host", flags)
        check(cases, outs, f"host {' '.join(flags)}")


# by default one core of each path (portable, SMLAxB, MVE; compact: test_host_sanitized); every one in the full run
@pytest.mark.parametrize("core, flags", slow_except([("cortex-m0plus", ()), ("cortex-m3", ()), ("cortex-m4", ()),
                                                     ("cortex-m7", ()), ("cortex-m33", ()), ("cortex-m55", ()),
                                                     ("cortex-m4", ("-DDARB_COMPACT",)),
                                                     ("cortex-m55", ("-DDARB_COMPACT",))], {("cortex-m0plus", ()), ("cortex-m4", ()), ("cortex-m55", ())}))
def test_on_target(qemu, core, flags):
    """Every path on its core in QEMU: portable (M0+, M3), SMLAxB (M4, M7, M33), MVE (M55), compact."""
    cases = tile_cases()
    outs, _ = run_cases(cases, core, flags)
    check(cases, outs, f"{core} {' '.join(flags)}")


def counted_case(ratio, seed=1):
    """KWS's pointwise layer (64 x 64 on 25 x 5 pixels) pruned with blocks of ``ratio``, a trained layer's output
    stage."""
    rng = np.random.default_rng(seed)
    c = make_tile_case(rng, 64, 64, 125, (ratio,), in_stride=64, n_random=1, w_off=0, in_off=0, clamp=(-20, 127))
    c.multiplier = rng.integers(1 << 30, 1 << 31, 64).astype(np.int32)
    c.shift = rng.integers(-10, -5, 64).astype(np.int8)
    c.bias = rng.integers(-5000, 5000, 64).astype(np.int32)
    c.output_offset = -20
    return c


#: CMSIS-NN's instructions on KWS's pointwise layer, unpruned (docs/benchmarks.md)
CMSIS_NN_POINTWISE = {"cortex-m4": 1_069_003, "cortex-m55": 202_897}


#: the tiles' instructions at 4x on KWS's pointwise layer, at most, / CMSIS-NN's dense layer (measured: M4 0.567,
#: M55 1.155): a regression guard. On the M55, darb_fc_s8 once per pixel is faster (its vector loops take 16
#: blocks per step; 0.92 of CMSIS-NN), so generated code calls it per pixel there (DARB_SPARSE_PER_PIXEL).
TILE_VS_CMSIS = {"cortex-m4": 0.6, "cortex-m55": 1.2}


@pytest.mark.parametrize("core", ["cortex-m4", "cortex-m55"])
def test_instructions(qemu, core, record_property):
    """Counted in QEMU on KWS's pointwise layer at 4x and 8x, against darb_fc_s8 once per pixel and CMSIS-NN's
    dense layer: on the M4 the tiles take fewer instructions than both (each kept weight decoded once per 4
    pixels); on the M55 they stay within their measured bound."""
    cases = [counted_case(4), counted_case(8)]
    outs, counts = run_cases(cases, core, per_pixel=range(2), trace=True)
    check(cases + cases, outs, core)
    for c, tile, pp in zip(cases, counts[:2], counts[2:]):
        kept = int(c.mask.sum()) * c.pixels
        record_property(f"{core} 64x64x125 blocks {c.block_sizes[0]}", {"tile": tile, "per_pixel": pp})
        print(f"{core} 64x64 x 125 pixels, blocks of {c.block_sizes[0]}: tiles {tile:,} ({tile / kept:.2f} per kept "
              f"multiply-add), darb_fc_s8 per pixel {pp:,} ({pp / kept:.2f}), ratio {tile / pp:.3f}, "
              f"/ CMSIS-NN dense {tile / CMSIS_NN_POINTWISE[core]:.3f}")
        if core == "cortex-m4":
            assert tile < 0.7 * pp
    assert counts[0] < TILE_VS_CMSIS[core] * CMSIS_NN_POINTWISE[core]
