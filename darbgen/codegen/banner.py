"""The command line recorded in every generated file's header comment.

The same model and options must give the same bytes wherever they are
written, so the banner names the model file by its base name, not its path,
and leaves out what only says where or how the files are written (``--out``,
``--force``, ``--json``).
"""
import os
import shlex

#: options that only say where or how the output is written: (name, takes a value)
_OUTPUT_ONLY = {"--out": True, "-o": True, "--force": False, "--json": False}


def _output_only(token):
    """(is an output-only option, whether its value is the next token) for one argv token."""
    name, eq, _ = token.partition("=")
    if name == "-o" or (token.startswith("-o") and not token.startswith("--")):
        return True, token == "-o"
    if name.startswith("--") and len(name) >= 4:
        # argparse accepts unique prefixes of long options (--ou for --out)
        for option, takes_value in _OUTPUT_ONLY.items():
            if option.startswith("--") and option.startswith(name):
                return True, takes_value and not eq
    return False, False


def banner_command(argv, program="darbgen"):
    """The command for the files' header comment from the arguments ``argv``
    (without the program name): paths reduced to their base names, output-only
    options (``--out`` / ``-o`` and its value, ``--force``, ``--json``) left out.

    >>> banner_command(["build", "/home/me/models/kws.tflite", "--ratio", "2", "--out", "/tmp/c", "--force"])
    'darbgen build kws.tflite --ratio 2'
    """
    kept, skip = [], False
    for token in map(str, argv):
        if skip:
            skip = False
            continue
        drop, skip = _output_only(token)
        if drop:
            continue
        if "/" in token or os.sep in token:
            name, eq, value = token.partition("=")
            if eq and name.startswith("--"):
                token = f"{name}={os.path.basename(value.rstrip('/' + os.sep))}"
            else:
                token = os.path.basename(token.rstrip("/" + os.sep)) or token
        kept.append(token)
    return " ".join([program] + [shlex.quote(t) for t in kept])
