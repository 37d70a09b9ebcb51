"""Op kinds of the graph pipeline: one module per kind (or family), one table.

:data:`OPS` maps a node kind (``darbgen.ir.Node.kind``) to its
:class:`~darbgen.ops.base.OpKind`, which holds everything the pipeline knows
about that kind: shapes, float and int8 references, quantization and C.
"""
OPS = {}


def register(cls):
    """Class decorator: put one instance of an OpKind subclass in :data:`OPS`."""
    if cls.kind in OPS:
        raise ValueError(f"op kind {cls.kind!r} registered twice")
    OPS[cls.kind] = cls()
    return cls


def op_kind(node):
    """The OpKind of a node, or an error naming the node and what is supported."""
    from ..errors import DarbgenError

    _load()
    try:
        return OPS[node.kind]
    except KeyError:
        raise DarbgenError(f"{node.name}: op kind {node.kind!r} is not supported; darbgen runs "
                           f"{', '.join(sorted(OPS))}") from None


_LOADED = False


def _load():
    global _LOADED
    if not _LOADED:
        _LOADED = True
        from . import conv, kinds, reshape  # noqa: F401  (registering)
