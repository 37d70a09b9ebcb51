"""Writing C for a chain of ops: :func:`generate`.

:func:`generate` turns layers into a :class:`~darbgen.codegen.module.CModule`:
the text of every file (one header/source pair per layer, a header listing
them, and the runtime files they need, copied from ``runtime_c/``), held in
memory until :meth:`CModule.write` puts them in a folder atomically. The same
input always gives the same bytes: no timestamps, no dict-order or path
dependence beyond the command line recorded in the header comment.

Each op is written by its kind (:data:`darbgen.layers.KINDS`,
:meth:`~darbgen.layers.base.LayerKind.emit`) through a :class:`ChainEmitter`;
this module strings the ops together: quantization, symbols, the model's run
function and header, the memory plan and the runtime files.

The rest of the C writer, by job: :mod:`~darbgen.codegen.cformat` (literals,
initializers, :class:`CArray`), :mod:`~darbgen.codegen.layer` (the dense /
convolution matrix contexts), :mod:`~darbgen.codegen.memory` (the arena
plan), :mod:`~darbgen.codegen.module` (:class:`CModule`,
:class:`GeneratedLayer`, :class:`ModelUnit`), :mod:`~darbgen.codegen.sources`
(the jinja2 environment, the runtime files) and :mod:`~darbgen.codegen.harness`
(the test harness table). Their names stay importable from here.
"""
import numpy as np

from .. import __version__
from ..errors import DarbgenError
from ..graph import Model
from ..layers import kind_of, op_classes, quantized_classes
from ..quantize import is_chain, quantize_network
from .cformat import CTYPES, scale_macros
from .harness import harness_table
from .layer import KERNELS, layer_context, layer_kernel
from .memory import plan_memory
from .module import CModule, GeneratedLayer, ModelUnit
from .names import c_identifier, unique_identifiers
from .symbols import check_symbols
from .sources import environment, runtime_files

# Names that lived here before the split, still importable from here (the op
# graph's writer, darbgen.ops, darbgen.bench and users import them).
from .cformat import (_ITEMSIZE, BIAS_CTYPE, ITEMSIZE, MAX_DIM, ROLES, SUFFIX, CArray, c_comment,  # noqa: F401,E402
                      c_float, c_initializer, c_literal)
from .layer import ACTIVATION_ENUM, OFFSET_TAIL_BYTES, UNROLLED_PART_MACS  # noqa: F401,E402

_layer_context, _layer_kernel = layer_context, layer_kernel


class ChainEmitter:
    """What a layer kind writes its C through (:meth:`~darbgen.layers.base.LayerKind.emit`):
    the module's ``prefix``, the requested ``kernel``, the generated ``files``
    and the ``notes`` for the report."""

    def __init__(self, prefix, kernel, banner, env):
        self.prefix, self.kernel, self.banner, self.env = prefix, kernel, banner, env
        self.files = {}
        self.notes = []
        self.owner = {}         # file name -> the layer that wrote it
        self.current = None     # the layer being emitted

    def note(self, text):
        """A line for the report (e.g. a layer falling back to another kernel)."""
        self.notes.append(text)

    def render(self, template, sym, ctx):
        """Write ``<sym>.h`` and ``<sym>.c`` from ``templates/<template>.h.j2`` / ``.c.j2`` with ``ctx``."""
        ctx["banner"] = self.banner
        for name in (f"{sym}.h", f"{sym}.c"):
            if name in self.files:
                a, b = self.owner[name], self.current
                who = f"layers {a!r} and {b!r} both write" if a != b else f"layer {a!r} writes"
                raise DarbgenError(f"{who} the C file {name} (C name {sym!r}, from a layer's name and the parts "
                                   f"the code generator adds to it, e.g. an LSTM's _ih / _hh): rename one of them")
            self.owner[name] = self.current
        self.files[f"{sym}.h"] = self.env.get_template(f"{template}.h.j2").render(ctx)
        self.files[f"{sym}.c"] = self.env.get_template(f"{template}.c.j2").render(ctx)

    def layer(self, q, sym, kernel, arrays, description):
        """The :class:`GeneratedLayer` of ``<sym>.h`` / ``<sym>.c``."""
        return GeneratedLayer(q, sym, kernel, f"{sym}.h", f"{sym}.c", arrays, description)


def _as_quantized(layers, dtype, calib, percentile):
    if isinstance(layers, Model):
        layers = layers.ops()
    layers = list(layers)
    if not layers:
        raise DarbgenError("nothing to generate: no layers given")
    if all(isinstance(x, quantized_classes()) for x in layers):
        if len({q.dtype for q in layers}) != 1:
            raise DarbgenError("all layers of one module must have the same dtype")
        return layers
    if all(isinstance(x, op_classes()) for x in layers):
        return quantize_network(layers, dtype, calib, percentile)
    raise DarbgenError("generate takes a darbgen.graph.Model, or Dense / Softmax layers (or their quantized "
                       "forms from quantize_network)")


def generate(layers, *, dtype="int8", kernel="packed", prefix="model", calib=None, percentile=None, command=None,
             chain=None):
    """Generate C for a model or a list of ops.

    Args:
        layers: a :class:`~darbgen.graph.Model`, or its ops
            (:class:`~darbgen.graph.Dense` layers, ConvOp, PoolOp, Softmax,
            RecurrentOp; quantized here from ``calib``), or their quantized
            forms (:class:`~darbgen.quantize.QuantizedDense`, ...).
        dtype: "int8", "int16" (16x8) or "float32".
        kernel: "packed" (DARB, generic kernel over packed offsets),
            "unrolled" (straight-line code, columns as constants), "dense" or
            "csr" (the baselines).
        prefix: the model name; every C symbol starts with it.
        calib: calibration inputs for int types (see
            :func:`darbgen.quantize.quantize_network`).
        percentile: calibration range by percentile instead of min/max.
        command: the call recorded in the files' header comment.
        chain: also write ``<prefix>_run`` running the layers one after the
            other. Default: for a Model, or for layers whose sizes chain and
            that were calibrated as a chain (one calibration array); never
            for layers calibrated one by one (a dict), whose quantizations do
            not connect.

    Returns:
        a :class:`CModule` (write it with ``.write(folder)``, check it with
        :func:`darbgen.verify`).
    """
    if kernel not in KERNELS:
        raise DarbgenError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    prefix = c_identifier(prefix, "model name")
    if chain is None:
        chain = isinstance(layers, Model) or not isinstance(calib, dict)
    qs = _as_quantized(layers, dtype, calib, percentile)
    dtype = qs[0].dtype
    symbols = unique_identifiers([q.name for q in qs], prefix)
    env = environment()
    command = command or f"darbgen.generate(dtype={dtype!r}, kernel={kernel!r}, prefix={prefix!r})"
    banner = {"version": __version__, "command": command}
    e = ChainEmitter(prefix, kernel, banner, env)
    generated = []
    for q in qs:
        e.current = q.name
        generated.append(kind_of(q).emit(q, symbols[q.name], e))
    files, notes = e.files, e.notes
    model = None
    stream, step_output_size = 0, 0
    if chain and is_chain([g.layer for g in generated]) and _quantizations_connect(qs):
        model = ModelUnit(prefix, generated, plan_memory(qs), calib_inputs=_model_calib(qs, calib))
        stream, step_output_size = _streaming(qs)
        files[f"{prefix}.c"] = env.get_template("model.c.j2").render(
            banner=banner, prefix=prefix, PREFIX=prefix.upper(), model=model, layers=generated,
            in_t=CTYPES[dtype][0], stream=stream)
    first, last = qs[0], qs[-1]
    files[f"{prefix}.h"] = env.get_template("model.h.j2").render(
        banner=banner, prefix=prefix, PREFIX=prefix.upper(), layers=generated, dtype=dtype, kernel=kernel,
        model=model, in_t=CTYPES[dtype][0], macros=_model_macros(first, last), stream=stream,
        in_layout=tensor_layout(first.layer, "in"), out_layout=tensor_layout(last.layer, "out"),
        step_output_size=step_output_size)
    check_symbols(files, prefix, {sym: name for name, sym in symbols.items()})
    used = set()
    for g in [u for g in generated for u in g.parts + [g]]:
        used |= kind_of(g.quantized).runtime(g)
    rt = runtime_files(used)
    clash = set(rt) & set(files)
    if clash:
        raise DarbgenError(f"generated file {sorted(clash)[0]} would collide with a runtime file; choose another "
                           f"prefix")
    files.update(rt)
    return CModule(prefix, dtype, kernel, generated, files, sorted(n for n in rt if n.endswith(".c")), command,
                   model, {"notes": notes})


def _quantizations_connect(qs):
    """Each op's output quantization is the next op's input quantization."""
    if qs[0].dtype == "float32":
        return True
    return all(a.output == b.input for a, b in zip(qs, qs[1:]))


def _streaming(qs):
    """(how many leading recurrent (streaming) ops ``<model>_step`` steps, its output size).

    A model streams when it starts with recurrent layers, each feeding the
    next its sequence, and the rest takes one step's output: the last of
    them returns only its last state, or nothing follows it. Otherwise (0, 0).
    """
    k = 0
    while k < len(qs) and kind_of(qs[k]).streaming:
        k += 1
    if k == 0 or (qs[k - 1].layer.sequences and k < len(qs)):
        return 0, 0
    if k == len(qs):
        return k, qs[k - 1].layer.rows
    return k, qs[-1].layer.out_size


def _model_macros(first, last):
    if first.dtype == "float32":
        return []
    return scale_macros("INPUT", first.input) + scale_macros("OUTPUT", last.output)


def tensor_layout(op, side):
    """The C array shape of an op's input (``side`` "in") or output ("out") and
    its element order, as text for a header comment: a vector, a (C, H, W)
    or (C, L) tensor stored channel first, or a sequence of time steps."""
    steps = getattr(op, "steps", None)
    if steps and (side == "in" or op.sequences):
        size = op.in_size if side == "in" else op.out_size
        return (f"[{steps}][{size // steps}]", "a sequence, time step by time step (steps x features), "
                f"{side}[t * {size // steps} + i] = feature i of step t")
    shape = tuple(getattr(op, f"{side}_shape", None) or ())
    if len(shape) == 3:
        c, h, w = shape
        return (f"[{c}][{h}][{w}]", f"channel first (C, H, W): element (c, y, x) at [(c * {h} + y) * {w} + x]")
    if len(shape) == 2:
        c, n = shape
        return f"[{c}][{n}]", f"channel first (C, L): element (c, i) at [c * {n} + i]"
    return f"[{op.in_size if side == 'in' else op.out_size}]", "a vector"


def _model_calib(qs, calib, count=16):
    """A few real calibration inputs in the model's input type, for verification."""
    if calib is None or isinstance(calib, dict):
        return None
    x = np.asarray(calib, np.float64)
    if x.ndim != 2:
        return None
    x = x[:count]
    return x.astype(np.float32) if qs[0].dtype == "float32" else qs[0].input.quantize(x)


__all__ = ["generate", "CModule", "GeneratedLayer", "CArray", "KERNELS", "c_identifier", "harness_table"]
