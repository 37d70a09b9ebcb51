"""Every C symbol a generated model defines, each defined once.

Layer and op names become C names (``<prefix>_<layer>``), and the code
generator adds its own parts to them: a recurrent layer's matrices
``<prefix>_<layer>_ih`` / ``_hh``, a layer's arrays ``<prefix>_<layer>_weight``,
its macros ``<PREFIX>_<LAYER>_OUTPUT_SIZE``, the model's own
``<prefix>_step`` and ``<PREFIX>_STEP_OUTPUT_SIZE``. Checking only the layer
names against each other misses a layer named ``l_ih`` beside an LSTM ``l``,
or a layer named ``step`` in a streaming model. :func:`check_symbols` reads
what the generated files actually define (macros, functions, variables and
types, file names too) and refuses any name defined twice, naming the layers
it comes from.

The reading is a small C scanner, enough for what darbgen's templates emit:
comments and literals are dropped, preprocessor conditionals are followed
(two definitions in the ``#if`` and ``#else`` branches of the same
conditional are alternatives, not a clash; ``#ifdef __cplusplus`` blocks are
read as C), and the top level is split into declarations; a prototype or an
``extern`` declaration is not a definition.
"""
import re
from dataclasses import dataclass

from ..errors import DarbgenError

_COMMENT_OR_LITERAL = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)
_ATTRIBUTE = re.compile(r"__attribute__\s*\(\(.*?\)\)", re.S)
_IDENT = re.compile(r"[A-Za-z_]\w*")
_KEYWORDS = frozenset("""auto const extern inline register restrict static volatile signed unsigned void char short int
long float double struct union enum typedef""".split())


@dataclass(frozen=True)
class Definition:
    """One definition of ``name`` in ``file``: a ``macro`` or a C ``symbol``,
    under the preprocessor branches ``branches`` ((conditional id, branch) pairs)."""
    name: str
    file: str
    what: str
    branches: tuple


def _strip(text):
    """``text`` without comments and string / character literals, newlines kept."""
    def blank(m):
        s = m.group(0)
        if s.startswith("/"):
            return "\n" * s.count("\n")
        return s[0] + s[0]                       # an empty literal keeps the syntax
    return _COMMENT_OR_LITERAL.sub(blank, text)


def definitions(file, text):
    """Every :class:`Definition` in one C source or header ``text``."""
    text = _strip(text).replace("\\\n", " ")
    out = []
    stack = []                   # [conditional id, branch, C reads it, is #if(n)def __cplusplus] per open #if
    counter = 0
    buf = []                     # the current top-level declaration's text
    depth = 0                    # brace depth
    start = ()                   # the branches the current declaration started in

    def branches():
        return tuple((e[0], e[1]) for e in stack)

    def finish(item, body):
        item = _ATTRIBUTE.sub(" ", item).strip()
        if not item or item.split()[0] == "extern":
            return
        head = item.split("=", 1)[0]
        if "(" in head and not item.startswith("typedef"):
            if not body:
                return                           # a prototype
            names = _IDENT.findall(head[:head.index("(")])
        else:
            names = _IDENT.findall(re.sub(r"\[[^\]]*\]", " ", head))
        names = [n for n in names if n not in _KEYWORDS]
        if names:
            out.append(Definition(names[-1], file, "symbol", start))

    for line in text.split("\n"):
        s = line.strip()
        if s.startswith("#"):
            d = s[1:].strip()
            m = _IDENT.match(d)
            word = m.group(0) if m else ""
            rest = d[len(word):].strip()
            if word in ("if", "ifdef", "ifndef"):
                counter += 1
                cplusplus = rest == "__cplusplus" and word != "if"
                stack.append([counter, 0, not (cplusplus and word == "ifdef"), cplusplus])
            elif word in ("elif", "else") and stack:
                stack[-1][1] += 1
                if stack[-1][3]:
                    stack[-1][2] = not stack[-1][2]          # C reads the other branch of #ifdef __cplusplus
            elif word == "endif" and stack:
                stack.pop()
            elif word == "define" and all(e[2] for e in stack):
                m = _IDENT.match(rest)
                if m:
                    out.append(Definition(m.group(0), file, "macro", branches()))
            continue
        if not all(e[2] for e in stack):
            continue
        for ch in line + "\n":
            if ch == "{":
                if depth == 0:
                    head = "".join(buf)
                    if head.rstrip().endswith(")") and "=" not in head:     # a function's body follows
                        finish(head, True)
                        buf = []
                depth += 1
            elif ch == "}":
                depth = max(depth - 1, 0)
            elif depth:
                continue
            elif ch == ";":
                finish("".join(buf), False)
                buf = []
            else:
                if not buf and not ch.isspace():
                    start = branches()              # a declaration starts here
                if buf or not ch.isspace():
                    buf.append(ch)
    return out


def check_symbols(files, prefix, owners=None):
    """Refuse generated ``files`` ({name: text}) that define one of the
    model's names (those starting with ``prefix`` / ``PREFIX``) twice.

    ``owners`` ({C name: layer name}) names the layers in the error; the
    longest owner name a clashing symbol starts with is named.
    """
    owners = owners or {}
    seen = {}
    low = prefix.lower()
    for file in sorted(files):
        if not file.endswith((".c", ".h")):
            continue
        for d in definitions(file, files[file]):
            if not (d.name.lower() == low or d.name.lower().startswith(low + "_")):
                continue
            for other in seen.get(d.name, []):
                if other.file == d.file and _exclusive(other.branches, d.branches):
                    continue
                raise DarbgenError(_clash_message(d, other, owners))
            seen.setdefault(d.name, []).append(d)


def _exclusive(a, b):
    """Two preprocessor contexts that can never both be compiled."""
    branch_a = dict(a)
    return any(c in branch_a and branch_a[c] != k for c, k in b)


def _owner(name, owners):
    best = None
    for sym, layer in owners.items():
        low, s = name.lower(), sym.lower()
        if (low == s or low.startswith(s + "_")) and (best is None or len(s) > len(best[0])):
            best = (s, layer)
    return best[1] if best else None


def _clash_message(d, other, owners):
    a, b = _owner(other.name, owners), _owner(d.name, owners)
    where = f"{other.file}" if other.file == d.file else f"{other.file} and {d.file}"
    names = [n for n in dict.fromkeys([a, b]) if n]
    if len(names) == 2:
        who = f"layers {names[0]!r} and {names[1]!r} both give"
        fix = "rename one of them"
    elif names:
        who = f"layer {names[0]!r} gives"
        fix = f"rename layer {names[0]!r}"
    else:
        who = "the model gives"
        fix = "rename the layers or choose another prefix"
    return (f"{who} the C name {d.name!r}, defined twice ({where}): the C would not compile or would mix up the "
            f"two; {fix}")
