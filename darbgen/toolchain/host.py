"""The host C compiler (gcc), strict flags, and reading section sizes."""
import os
import shutil
import subprocess

from ..errors import DarbgenError

#: Flags every generated file must pass (docs/codegen.md).
STRICT_FLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-Wvla", "-Wdouble-promotion",
                "-Wshadow", "-ffp-contract=off")
SANITIZE_FLAGS = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g")
#: Cortex-M4 (hard float) flags for code-size figures; more cores come with the target support.
CORTEX_M4_FLAGS = ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")


class CompileError(DarbgenError):
    """The C compiler rejected generated code (a darbgen bug: please report it)."""


def find_tool(name, purpose):
    """Absolute path of a tool on PATH, or an error saying how to install it."""
    path = shutil.which(name)
    if path is None:
        raise DarbgenError(f"{name} not found: it is needed to {purpose}. Install it with `bash scripts/setup.sh` "
                           f"(Debian: apt-get install gcc gcc-arm-none-eabi libnewlib-arm-none-eabi)")
    return path


def host_compiler(cc=None):
    """The host C compiler: ``cc``, else $CC, else gcc."""
    return find_tool(cc or os.environ.get("CC") or "gcc", "compile and verify generated C on the host")


def run_compiler(cmd, cwd, timeout=600):
    """Run a compiler command; a failure raises CompileError with its messages."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CompileError(f"the C compiler took longer than {timeout} s: {' '.join(cmd[:3])} ...") from None
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        shown = "\n".join(lines[:40]) + ("\n..." if len(lines) > 40 else "")
        raise CompileError(f"compiling generated C failed (exit {proc.returncode}):\n{shown}")
    return proc


def section_sizes(obj, size_tool="size"):
    """{section: bytes} of an object file, from binutils' ``size -A``."""
    tool = find_tool(size_tool, "measure code size")
    proc = subprocess.run([tool, "-A", "-d", str(obj)], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise DarbgenError(f"{size_tool} failed on {obj}: {proc.stderr.strip()}")
    sizes = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = sizes.get(parts[0], 0) + int(parts[1])
    return sizes


def sections_bytes(sizes, name):
    """Bytes of the sections called ``name`` or ``name.*`` (e.g. ".data")."""
    return sum(v for k, v in sizes.items() if k == name or k.startswith(name + "."))


def code_bytes(sizes):
    """Bytes of machine code: every .text section."""
    return sections_bytes(sizes, ".text")


def data_bytes(sizes):
    """Bytes of constant data: every .rodata section."""
    return sections_bytes(sizes, ".rodata")
