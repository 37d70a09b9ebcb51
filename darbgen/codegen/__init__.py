"""C code generation for the chain pipeline (and the pieces the op graph shares).

Modules, by job:

* :mod:`~darbgen.codegen.emit`: :func:`generate`, a chain of ops to a module
  (each op written by its kind, :mod:`darbgen.layers`);
* :mod:`~darbgen.codegen.module`: :class:`CModule` (the files, ``write``),
  :class:`GeneratedLayer` and :class:`ModelUnit` (what the harness runs);
* :mod:`~darbgen.codegen.layer`: a dense / convolution matrix's C context
  (kernels packed, unrolled, dense, CSR);
* :mod:`~darbgen.codegen.cformat`: C literals, initializers, :class:`CArray`;
* :mod:`~darbgen.codegen.memory`: the static arena plan of a chain;
* :mod:`~darbgen.codegen.sources`: the jinja2 templates and runtime_c files;
* :mod:`~darbgen.codegen.harness`: the test harness table;
* :mod:`~darbgen.codegen.names`: C identifiers;
* :mod:`~darbgen.codegen.graph_emit`: the op graph's writer (.tflite / .h5).

The names below are loaded on first use, so the layer kinds can import the
modules above without importing :func:`generate` (which needs them).
"""
from .names import c_identifier, unique_identifiers

_LAZY = {
    "KERNELS": ".layer",
    "CModule": ".module",
    "GeneratedLayer": ".module",
    "generate": ".emit",
    "harness_table": ".harness",
}

__all__ = ["KERNELS", "CModule", "GeneratedLayer", "generate", "harness_table", "c_identifier",
           "unique_identifiers"]


def __getattr__(name):
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'darbgen.codegen' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
