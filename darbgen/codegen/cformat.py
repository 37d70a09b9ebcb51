"""C text: literals, array initializers, comments, and the C types of each dtype.

:class:`CArray` is one ``static const`` array of generated code; the other
modules of :mod:`darbgen.codegen` and the layer kinds (:mod:`darbgen.layers`)
build their C from these. Nothing here knows about layers.
"""
from dataclasses import dataclass

import numpy as np

#: C types of activations and weights per dtype
CTYPES = {"int8": ("int8_t", "int8_t"), "int16": ("int16_t", "int8_t"), "float32": ("float", "float")}
#: kernel name suffix per dtype (darb_fc_s8, ...)
SUFFIX = {"int8": "s8", "int16": "s16", "float32": "f32"}
BIAS_CTYPE = {"int8": "int32_t", "int16": "int64_t", "float32": "float"}
#: what the bytes of a layer's arrays are for (GeneratedLayer.data_bytes)
ROLES = ("values", "index", "metadata", "params")
ITEMSIZE = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4, "uint32_t": 4,
            "int64_t": 8, "float": 4}
_ITEMSIZE = ITEMSIZE
_PER_LINE = {1: 16, 2: 12, 4: 8, 8: 4}
#: largest row / column count and geometry field the C kernels take (uint16_t)
MAX_DIM = 65535


@dataclass
class CArray:
    """One static const array of a generated layer."""

    symbol: str
    ctype: str
    values: np.ndarray
    role: str

    @property
    def nbytes(self):
        return int(self.values.size) * ITEMSIZE[self.ctype]

    @property
    def initializer(self):
        return c_initializer(self.values, self.ctype)


def c_literal(value, ctype):
    """One value as a C literal of ``ctype`` that reads back exactly."""
    if ctype == "float":
        text = "%.9g" % float(value)      # 9 significant digits round-trip every float32
        if not any(ch in text for ch in ".en"):
            text += ".0"
        return text + "f"
    return str(int(value))


def c_initializer(values, ctype, indent="    "):
    """The body of an array initializer, a fixed number of values per line."""
    per_line = _PER_LINE[ITEMSIZE[ctype]]
    flat = np.asarray(values).ravel()
    items = [c_literal(v, ctype) for v in flat.tolist()]
    lines = [indent + ", ".join(items[i:i + per_line]) + "," for i in range(0, len(items), per_line)]
    return "\n".join(lines)


def c_comment(text):
    """Text safe inside a C block comment: ASCII only, no comment terminator."""
    text = str(text).encode("ascii", "replace").decode("ascii")
    return "".join(ch if ch.isprintable() else "?" for ch in text).replace("*/", "* /").replace("/*", "/ *")


def c_float(value):
    """A double constant: shortest text that reads back as the same double."""
    return repr(float(value))


def scale_macros(name, quant):
    """A tensor's quantization as header macros: ``<name>_SCALE`` a float
    constant (``0.00392156886f``: user code stays in single precision, clean
    under -Wdouble-promotion / -Wconversion, no soft double routines on an
    M4F), ``<name>_SCALE_DOUBLE`` the scale darbgen computed, exactly, and
    ``<name>_ZERO_POINT``."""
    return [(f"{name}_SCALE", c_literal(np.float32(quant.scale), "float")),
            (f"{name}_SCALE_DOUBLE", c_float(quant.scale)),
            (f"{name}_ZERO_POINT", f"({quant.zero_point})")]
