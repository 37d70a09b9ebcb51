"""Where the C templates and the hand-written C runtime are.

In an installed package they sit inside it (``darbgen/templates``,
``darbgen/runtime_c``, mapped there by setup.py); in a source checkout they
are the top-level ``templates/`` and ``runtime_c/`` folders.
"""
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _find(name):
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"darbgen's {name}/ folder is missing from {_PACKAGE}; reinstall darbgen with pip")


def templates_dir():
    """The folder of jinja2 C templates."""
    return _find("templates")


def runtime_c_dir():
    """The folder of hand-written C kernels, harnesses and board files."""
    return _find("runtime_c")


def examples_dir():
    """The folder of bundled example models (examples/ in a checkout)."""
    return _find("examples")
