"""The C of one weight matrix: a dense or convolution layer's context for the
``dense_layer`` templates.

:func:`layer_context` turns a quantized matrix (a
:class:`~darbgen.quantize.QuantizedDense` of a Dense or, with the geometry of
:func:`conv_geometry`, of a ConvOp) into what ``dense_layer.h.j2`` /
``dense_layer.c.j2`` render: its pattern arrays for the kernel (packed DARB,
unrolled, dense or CSR; :func:`pattern_arrays`), its parameter arrays, the
runtime call and its description. :func:`layer_kernel` picks the kernel a
matrix can use. The chain pipeline's dense, convolution and recurrent kinds
(:mod:`darbgen.layers`) and the op graph (:mod:`darbgen.codegen.graph_emit`)
write their matrices through here.
"""
import numpy as np

from ..errors import DarbgenError
from ..formats import encode
from .cformat import BIAS_CTYPE, CTYPES, MAX_DIM, SUFFIX, CArray, scale_macros

KERNELS = ("packed", "unrolled", "dense", "csr")
ACTIVATION_ENUM = {"none": "DARB_ACT_NONE", "relu": "DARB_ACT_RELU", "relu6": "DARB_ACT_RELU6",
                   "sigmoid": "DARB_ACT_SIGMOID", "tanh": "DARB_ACT_TANH"}


def check_size(layer):
    """Refuse a matrix beyond the kernels' row and column limit."""
    if layer.rows > MAX_DIM or layer.cols > MAX_DIM:
        raise DarbgenError(f"{layer.name}: {layer.rows} x {layer.cols} is beyond the C kernels' limit of "
                           f"{MAX_DIM} rows and columns; split the layer")


def values_dtype(q):
    """The NumPy type of the stored weights."""
    return np.float32 if q.dtype == "float32" else np.int8


def shared_scale(q):
    """True when an int8 layer's rows all have the same multiplier and shift (per-tensor quantization): the C
    stores the pair once (darb_quant_s8.scale_mask = DARB_SCALE_SHARED)."""
    if q.dtype != "int8":
        return False
    m, s = np.asarray(q.multiplier), np.asarray(q.shift)
    return m.size > 1 and bool(np.all(m == m[0])) and bool(np.all(s == s[0]))


def scale_mask(q):
    """The C initializer of darb_quant_s8.scale_mask for ``q``."""
    return "DARB_SCALE_SHARED" if shared_scale(q) else "DARB_SCALE_PER_ROW"


def param_arrays(q, sym):
    """Bias and (int types) the requantization multipliers, shifts and activation table; one multiplier and
    shift for an int8 layer whose rows share them (:func:`shared_scale`)."""
    bias_t = BIAS_CTYPE[q.dtype]
    arrays = [CArray(f"{sym}_bias", bias_t, np.asarray(q.bias), "params")]
    if q.dtype != "float32":
        n = 1 if shared_scale(q) else None
        arrays.append(CArray(f"{sym}_multiplier", "int32_t", np.asarray(q.multiplier)[:n], "params"))
        arrays.append(CArray(f"{sym}_shift", "int8_t", np.asarray(q.shift)[:n], "params"))
        if q.lut is not None:
            arrays.append(CArray(f"{sym}_lut", CTYPES[q.dtype][0], q.lut, "params"))
    return arrays


def pattern_arrays(q, sym, kernel):
    """The weight arrays of ``kernel`` (values, and index / metadata arrays) and what the templates need of them."""
    layer = q.layer
    w = q.weight.astype(values_dtype(q))
    wt = CTYPES[q.dtype][1]
    if kernel == "dense":
        return [CArray(f"{sym}_weights", wt, w, "values")], {}
    if kernel == "unrolled":
        r, c = np.nonzero(layer.mask)
        return [CArray(f"{sym}_values", wt, w[r, c], "values")], {}
    if kernel == "csr":
        enc = encode(w, "csr", mask=layer.mask)
        col = enc.arrays["col_idx"]
        col_t = "uint8_t" if col.dtype == np.uint8 else "uint16_t"
        ptr = enc.arrays["row_ptr"].astype(np.int64)
        ptr_t = "uint16_t" if ptr[-1] <= 0xFFFF else "uint32_t"
        arrays = [CArray(f"{sym}_values", wt, enc.arrays["values"], "values"),
                  CArray(f"{sym}_col", col_t, col, "index"),
                  CArray(f"{sym}_row_ptr", ptr_t, ptr, "metadata")]
        return arrays, {"col_bits": 8 if col_t == "uint8_t" else 16, "ptr_bits": 16 if ptr_t == "uint16_t" else 32}
    block_sizes = layer.block_sizes
    if block_sizes is None:
        block_sizes = np.ones(layer.rows, np.int64)      # an unpruned layer: blocks of 1, no offsets at all
    # A block wider than the row is one block of the whole row: the same kept
    # weight, stored with the row's width (and 16-bit class tables stay valid).
    enc = encode(w, "darb", mask=layer.mask, block_sizes=np.minimum(block_sizes, layer.cols))
    a = enc.arrays
    # The int8 kernel reads offsets 32 bits at a time from any byte: 3 readable
    # bytes after the last one keep those reads inside the array.
    offsets = a["offsets"]
    if offsets.size:
        offsets = np.concatenate([offsets, np.zeros(OFFSET_TAIL_BYTES, np.uint8)])
    arrays = [CArray(f"{sym}_values", wt, a["values"], "values"),
              CArray(f"{sym}_offsets", "uint8_t", offsets, "index"),
              CArray(f"{sym}_class_block", "uint16_t", a["class_block"], "metadata"),
              CArray(f"{sym}_class_rows", "uint16_t", a["class_rows"], "metadata"),
              CArray(f"{sym}_class_start", "uint32_t", a["class_start"], "metadata"),
              CArray(f"{sym}_row_order", "uint16_t", a["row_order"], "metadata")]
    return arrays, {"n_classes": int(a["class_block"].size), "classes": enc.params["classes"]}


#: Zero bytes after a packed layer's offsets (darb_fc_s8 loads 4 bytes from any offset byte).
OFFSET_TAIL_BYTES = 3

#: Unrolled code is split into functions of about this many multiply-adds:
#: compilers optimise one huge function in superlinear time (512 x 512 at 1/16
#: took arm-none-eabi-gcc -O2 83 s as one function, a few seconds in parts).
UNROLLED_PART_MACS = 512


def unrolled_parts(layer):
    """Rows grouped into parts of consecutive rows; offsets into the values are
    relative to the part's first value."""
    parts = []
    current = None
    start = 0
    for r in range(layer.rows):
        cols = np.flatnonzero(layer.mask[r]).tolist()
        if current is None or (current["macs"] and current["macs"] + len(cols) > UNROLLED_PART_MACS):
            current = {"index": len(parts), "start": start, "macs": 0, "rows": []}
            parts.append(current)
        current["rows"].append({"index": r, "cols": cols, "offset": current["macs"]})
        current["macs"] += len(cols)
        start += len(cols)
    return parts


def geometry_fields(layer, pad_value):
    """The darb_conv_geometry initializer of a convolution or pooling op, in field order."""
    c, h, w = layer.in_shape
    _, oh, ow = layer.out_shape
    kh, kw = layer.kernel_size
    top, _, left, _ = layer.padding
    fields = [c, h, w, oh, ow, kh, kw, layer.stride[0], layer.stride[1], layer.dilation[0], layer.dilation[1],
              top, left]
    if max(fields) > MAX_DIM:
        raise DarbgenError(f"{layer.name}: a convolution or pooling dimension exceeds {MAX_DIM}")
    return fields + [pad_value]


def conv_geometry(q):
    """The darb_conv_geometry of a convolution op, and what unrolled code needs."""
    layer = q.layer
    c, h, w = layer.in_shape
    _, oh, ow = layer.out_shape
    kh, kw = layer.kernel_size
    top, _, left, _ = layer.padding
    pad_value = q.input.zero_point if q.dtype == "int8" else 0
    fields = geometry_fields(layer, pad_value)
    taps = [(j // (kh * kw), (j % (kh * kw)) // kw * layer.dilation[0], (j % kw) * layer.dilation[1])
            for j in range(layer.cols)]
    return {"fields": fields, "c": c, "h": h, "w": w, "oh": oh, "ow": ow, "sh": layer.stride[0],
            "sw": layer.stride[1], "top": top, "left": left, "pad": pad_value, "taps": taps}


def quant_macros(q):
    """The INPUT / OUTPUT scale and zero point macros of an int op's header (none for float32)."""
    if q.dtype == "float32":
        return []
    return scale_macros("INPUT", q.input) + scale_macros("OUTPUT", q.output)


def layer_context(q, sym, kernel, prefix, geometry=None, description=None):
    """The ``dense_layer`` templates' context of the quantized matrix ``q`` with
    ``kernel``, and its arrays: a fully connected layer, or a convolution when
    ``geometry`` is given (:func:`conv_geometry`, called on ``q``);
    ``description`` defaults to "dense <rows> x <cols>"."""
    layer = q.layer
    check_size(layer)
    pattern, info = pattern_arrays(q, sym, kernel)
    arrays = [a for a in pattern + param_arrays(q, sym)]
    emitted = {a.symbol: a for a in arrays if a.values.size > 0}
    in_t, w_t = CTYPES[q.dtype]
    sfx = SUFFIX[q.dtype]
    conv = geometry(q) if geometry is not None else None
    op = "conv" if conv else "fc"
    ctx = {
        "layer": layer, "q": q, "sym": sym, "SYM": sym.upper(), "kernel": kernel, "prefix": prefix,
        "arrays": [a for a in arrays if a.symbol in emitted],
        "ref": lambda name: (f"{sym}_{name}" if f"{sym}_{name}" in emitted else "0"),
        "in_t": in_t, "w_t": w_t, "acc_t": BIAS_CTYPE[q.dtype], "sfx": sfx,
        "macros": quant_macros(q), "info": info,
        "activation_enum": ACTIVATION_ENUM[layer.activation],
        "parts": unrolled_parts(layer) if kernel == "unrolled" else [],
        "header": f"{sym}.h",
        "parts_macs": UNROLLED_PART_MACS,
        "runtime_call": {"packed": f"darb_{op}_{sfx}", "csr": f"darb_csr_{op}_{sfx}",
                         "dense": f"darb_dense_{op}_{sfx}", "unrolled": None}[kernel],
        "conv": conv, "description": description or f"dense {layer.rows} x {layer.cols}",
        "scale_mask": scale_mask(q),
    }
    return ctx, arrays




def layer_kernel(layer, kernel):
    """The kernel a dense / convolution layer gets: ``packed`` needs a DARB or
    BMWM pattern; an unpruned layer takes ``dense`` (the same bytes, a faster
    loop) and other masks fall back to ``csr``."""
    if kernel == "packed" and layer.block_sizes is None:
        return "dense" if layer.mask.all() else "csr"
    return kernel
