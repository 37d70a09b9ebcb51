"""Where a module's files come from: the jinja2 environment over ``templates/``
and the hand-written ``runtime_c/`` files copied next to the generated code."""
from pathlib import Path

from ..resources import runtime_c_dir, templates_dir
from .cformat import SUFFIX, c_comment

_ENV = None


def environment():
    """The jinja2 environment over darbgen's templates (strict: an unknown name is an error)."""
    global _ENV
    if _ENV is None:
        import jinja2

        _ENV = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(templates_dir())), undefined=jinja2.StrictUndefined,
            trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
        _ENV.filters["c_comment"] = c_comment
    return _ENV


def runtime_files(kernels):
    """The runtime_c files a module needs: {name: text}, for ``kernels``, a set
    of (kernel, dtype) pairs ("packed", "csr", "dense", "conv", "softmax",
    "pool", "depthwise", "rnn"; "unrolled" needs only the common files)."""
    root = runtime_c_dir()
    names = ["include/darb.h", "src/darb_output.c", "src/darb_math_f32.c"]
    for kernel, dtype in sorted(set(kernels)):
        sfx = SUFFIX[dtype]
        if kernel == "conv":
            names += ["src/darb_internal.h", f"src/darb_conv_{sfx}.c"]
        elif kernel == "packed":
            names += ["src/darb_internal.h", f"src/darb_fc_{sfx}.c"]
        elif kernel == "csr":
            names.append(f"src/darb_csr_fc_{sfx}.c")
        elif kernel == "dense":
            names += ["src/darb_internal.h", f"src/darb_dense_fc_{sfx}.c"]
        elif kernel == "softmax":
            names.append("src/darb_softmax.c")
        elif kernel == "pool":
            names.append("src/darb_pool.c")
        elif kernel == "depthwise":
            names.append("src/darb_depthwise_chw.c")
        elif kernel == "rnn":
            names.append(f"src/darb_rnn_{sfx}.c")
    return {Path(n).name: (root / n).read_text(encoding="ascii") for n in sorted(set(names))}
