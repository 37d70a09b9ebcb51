"""Turning user-given names into safe, unique C identifiers."""
import re

from ..errors import DarbgenError

#: C99 and C11 keywords, and names the C standard library or darbgen's runtime
#: already use, which a generated symbol must never take.
C_RESERVED = frozenset("""
auto break case char const continue default do double else enum extern float for goto if inline int long
register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while
_Bool _Complex _Imaginary _Alignas _Alignof _Atomic _Generic _Noreturn _Static_assert _Thread_local
bool true false NULL main errno assert offsetof int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t
size_t
""".split())

#: Standard C headers: a model named like one would write e.g. stdint.h next to
#: the code and shadow the real header.
C_HEADERS = frozenset("""
assert complex ctype errno fenv float inttypes iso646 limits locale math setjmp signal stdalign stdarg stdatomic
stdbool stddef stdint stdio stdlib stdnoreturn string tgmath threads time uchar wchar wctype
""".split())

#: Prefixes that belong to the runtime (darb_*) or to the C implementation.
RESERVED_PREFIXES = ("darb_", "__")


def c_identifier(name, what="name"):
    """A valid, non-reserved, lower-case C identifier made from ``name``.

    Characters other than letters, digits and ``_`` become ``_``; runs of
    ``_`` collapse; a leading digit gets ``n`` in front; leading underscores
    are dropped (names starting with ``_`` and a capital, or ``__``, are
    reserved in C); a keyword gets ``_`` appended.
    """
    text = str(name)
    ident = re.sub(r"[^0-9A-Za-z_]+", "_", text).strip("_").lower()
    ident = re.sub(r"_+", "_", ident)
    if not ident:
        raise DarbgenError(f"{what} {text!r}: has no letters or digits to make a C name from; rename it")
    if ident[0].isdigit():
        ident = "n" + ident
    if ident in C_RESERVED or ident in C_HEADERS or ident == "darb":
        ident += "_"
    if ident.startswith(RESERVED_PREFIXES):
        ident = "m_" + ident
    return ident


def unique_identifiers(names, prefix, what="layer"):
    """``{name: prefix_ident}`` for every name, or an error naming two that collide.

    Collisions are checked case-insensitively, because the same identifiers
    appear upper-cased in macro names.
    """
    seen = {}
    out = {}
    for name in names:
        ident = f"{prefix}_{c_identifier(name, what)}"
        key = ident.upper()
        if key in seen:
            raise DarbgenError(f"{what}s {seen[key]!r} and {name!r} both become the C name {ident!r}; rename one "
                               f"of them")
        seen[key] = name
        out[name] = ident
    return out


class LayerNames:
    """Layer names for an importer: each from a name the framework gives (or
    ``layer``), made unique also once the code generator has turned it (and
    any ``extra`` suffixes, e.g. an LSTM's ``.w_ih``) into a C identifier,
    case-insensitively."""

    def __init__(self):
        self.used = set()

    def unique(self, base, extra=()):
        base = str(base) if base else "layer"
        try:
            if len(c_identifier(base)) > MAX_NAME:      # framework node names can run to hundreds of characters
                base = short_name(base)
        except DarbgenError:
            base = "layer"
        if base[0].isdigit():                   # PyTorch's Sequential children are "0", "1", ...
            base = f"layer{base}"
        name, k = base, 2
        while any(c_identifier(n).upper() in self.used for n in (name,) + tuple(f"{name}{e}" for e in extra)):
            name, k = f"{base}_{k}", k + 1
        for n in (name,) + tuple(f"{name}{e}" for e in extra):
            self.used.add(c_identifier(n).upper())
        return name


#: Longest C identifier part a layer name becomes (file names and macro names stay short).
MAX_NAME = 32


def short_name(name, limit=MAX_NAME):
    """A C-identifier-safe name of at most ``limit`` characters, deterministic.

    Framework node names can run to hundreds of characters
    (``model/block_3/depthwise/BiasAdd;model/...``). A longer name keeps its
    start and gets 8 hex digits of its SHA-1, so two long names that share a
    start stay apart and the same name always gives the same result.
    """
    import hashlib

    ident = c_identifier(name)
    if len(ident) <= limit:
        return ident
    digest = hashlib.sha1(str(name).encode("utf-8")).hexdigest()[:8]
    return f"{ident[:limit - 9].rstrip('_')}_{digest}"
