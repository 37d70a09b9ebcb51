"""darbgen: DARB pruning and C code generation for microcontrollers.

Public API (imported lazily, so ``import darbgen`` stays fast and pulls in no
ML framework and not even numba until a function needs it):

    prune(weights, ratio, method="darb", **options) -> PruneResult
    prune_model({name: matrix}, ratio, method="darb", scope="layer") -> ModelPruneResult
    encode(weights, fmt, mask=..., block_sizes=..., tile=...) -> Encoded
    decode(encoded) -> masked matrix
    matrix_stats(weights, result) -> dict of the figures a report shows
    Dense(name, weight, bias, mask, block_sizes, activation) -> a layer to generate
    quantize_network([Dense], dtype, calib) -> [QuantizedDense]
    generate([Dense], dtype="int8", kernel="packed", prefix=..., calib=...) -> CModule
    verify(module) -> VerifyResult (compiles with gcc, runs, compares bit for bit)

See docs/pruning.md for what each method keeps, docs/codegen.md for the C.
"""
__version__ = "0.1.0"

_LAZY = {
    "prune": ("darbgen.pruning.api", "prune"),
    "prune_model": ("darbgen.pruning.api", "prune_model"),
    "from_zeros": ("darbgen.pruning.api", "from_zeros"),
    "PruneResult": ("darbgen.pruning.result", "PruneResult"),
    "ModelPruneResult": ("darbgen.pruning.result", "ModelPruneResult"),
    "METHODS": ("darbgen.pruning.api", "METHODS"),
    "encode": ("darbgen.formats", "encode"),
    "decode": ("darbgen.formats", "decode"),
    "Encoded": ("darbgen.formats", "Encoded"),
    "FORMATS": ("darbgen.formats", "FORMATS"),
    "matrix_stats": ("darbgen.stats", "matrix_stats"),
    "DarbgenError": ("darbgen.errors", "DarbgenError"),
    "Dense": ("darbgen.graph", "Dense"),
    "quantize_network": ("darbgen.quantize", "quantize_network"),
    "generate": ("darbgen.codegen.emit", "generate"),
    "verify": ("darbgen.verify", "verify"),
    "measure": ("darbgen.verify", "measure"),
    "VerificationError": ("darbgen.verify", "VerificationError"),
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name):
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'darbgen' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__():
    return __all__
