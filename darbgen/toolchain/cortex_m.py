"""Cortex-M targets: arm-none-eabi-gcc flags per core, test images for QEMU's
MPS2 / MPS3 boards, runs over semihosting, and instruction counts.

Every core darbgen supports runs on a board of Debian's ``qemu-system-arm``
(Cortex-M0+ code on the Cortex-M3 board: ARMv6-M is a subset of ARMv7-M).
The start-up code, vector table and linker scripts are darbgen's own
(``runtime_c/cortex_m``). Inputs and outputs travel as files over Arm
semihosting; a fault prints its name and ends the run with status 3, and
every run has a time-out, so a crash or a hang is an error, never a stuck
process.

Instruction counts come from QEMU itself: ``-d in_asm`` logs the
instructions of every translation block (TB) it translates, and ``-d
exec,nochain`` logs every TB it executes, so adding up the executed blocks'
sizes between a function's entry and its return is exact and the same on
every run of the same image. (A block never spans a branch, so a call's
entry starts a block and its return ends one. Counting whole blocks instead
of one instruction per block gives the same figures about nine times
faster.)
"""
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import DarbgenError
from ..resources import runtime_c_dir
from . import host


@dataclass(frozen=True)
class Core:
    """One Cortex-M core: compiler flags and the QEMU board that runs it."""

    name: str
    flags: tuple
    board: str
    features: str

    @property
    def has_fpu(self):
        return "-mfloat-abi=hard" in self.flags


CORES = {c.name: c for c in (
    Core("cortex-m0plus", ("-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft"), "mps2-an385",
         "ARMv6-M, no DSP, no FPU (runs on QEMU's Cortex-M3 board)"),
    Core("cortex-m3", ("-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"), "mps2-an385", "ARMv7-M, no FPU"),
    Core("cortex-m4", ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"), "mps2-an386",
         "ARMv7E-M, DSP, single-precision FPU"),
    Core("cortex-m7", ("-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16"), "mps2-an500",
         "ARMv7E-M, DSP, double-precision FPU"),
    Core("cortex-m33", ("-mcpu=cortex-m33", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16"), "mps2-an505",
         "ARMv8-M Mainline, DSP, single-precision FPU (runs Secure)"),
    Core("cortex-m55", ("-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"), "mps3-an547",
         "ARMv8.1-M, MVE (Helium) with floating point (runs Secure)"),
)}
TARGETS = ("host",) + tuple(CORES)
#: Seconds a QEMU run may take when nothing better is known (darbgen's own tests, the benchmarks).
RUN_TIMEOUT = 300
#: How much longer than the same work natively on the host a QEMU run may take, running plainly and logging
#: every instruction (to count them): about 5x and 500x measured on a 2-core machine (KWS: 455 runs in 0.11 s
#: natively, 0.58 s in QEMU, 1.5 s traced for 13), with 20x to spare for a loaded machine.
QEMU_SLOWDOWN = 100
QEMU_TRACE_SLOWDOWN = 10_000
#: Seconds every QEMU run may take on top (start-up, semihosting file transfer).
QEMU_BASE_SECONDS = 60


def run_timeout(host_seconds, trace=False):
    """Seconds a QEMU run may take for work that ran ``host_seconds`` natively on the host."""
    return QEMU_BASE_SECONDS + host_seconds * (QEMU_TRACE_SLOWDOWN if trace else QEMU_SLOWDOWN)
IMAGE_FILES = ("darb_startup.c", "darb_startup.h", "darb_semihost.c", "darb_semihost.h", "darb_cortex_m.ld")


def core(name):
    """The :class:`Core` called ``name``, or an error listing the choices."""
    if name not in CORES:
        raise DarbgenError(f"unknown target {name!r}; choose one of: {', '.join(TARGETS)}")
    return CORES[name]


def compiler():
    return host.find_tool("arm-none-eabi-gcc", "compile for Cortex-M")


def qemu():
    return host.find_tool("qemu-system-arm", "run Cortex-M code (Debian: apt-get install qemu-system-arm)")


def install_image_files(folder, core_):
    """Copy start-up code, semihosting calls and linker scripts for ``core_`` into ``folder``."""
    root = runtime_c_dir() / "cortex_m"
    for name in IMAGE_FILES:
        shutil.copyfile(root / name, Path(folder) / name)
    shutil.copyfile(root / "boards" / f"{core_.board}.ld", Path(folder) / "darb_board.ld")


def link_image(folder, sources, core_, output="image.elf", extra_flags=(), timeout=600):
    """Compile and link ``sources`` (in ``folder``) with the start-up code into
    a QEMU image for ``core_``, with darbgen's strict flags (each function in
    its own section, unused ones dropped). Returns its path."""
    install_image_files(folder, core_)
    cmd = [compiler(), *host.STRICT_FLAGS, *core_.flags, "-ffunction-sections", "-fdata-sections", *extra_flags,
           "-I.", "-nostartfiles",
           "--specs=nano.specs", "-T", "darb_cortex_m.ld", "-L.", "darb_startup.c", "darb_semihost.c",
           *sources, "-o", output, "-Wl,--gc-sections", "-lc", "-lgcc"]
    host.run_compiler(cmd, cwd=folder, timeout=timeout)
    return Path(folder) / output


def run_image(elf, core_, folder, timeout=RUN_TIMEOUT, trace=None):
    """Run ``elf`` in QEMU on ``core_``'s board with ``folder`` as the
    semihosting working folder. ``trace``: a file name to log every executed
    instruction to (one per line). Returns the console output; a fault, a
    non-zero exit or a time-out raises :class:`DarbgenError`."""
    cmd = [qemu(), "-M", core_.board, "-nographic", "-monitor", "none", "-serial", "none",
           "-semihosting-config", "enable=on,target=native", "-kernel", str(Path(elf).resolve())]
    if trace:
        cmd += ["-d", "in_asm,exec,nochain", "-D", str(trace)]
    try:
        proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DarbgenError(f"{core_.name}: the run in QEMU ({core_.board}) did not finish within {timeout:g} s, "
                           f"the time allowed for its work; QEMU may be slower on a busy machine: allow more "
                           f"time (darbgen build --timeout SECONDS)") from None
    console = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        fault = re.search(r"darb: ([A-Za-z ]+?) on the target", console)
        what = f"a {fault.group(1)}" if fault else f"exit status {proc.returncode}"
        raise DarbgenError(f"{core_.name}: the run in QEMU ({core_.board}) failed with {what}: "
                           f"{console[-2000:]}")
    return console


def sized_symbols(elf):
    """[(name, nm type letter, address, size)] of the sized symbols defined in
    ``elf`` (arm-none-eabi-nm -S; Thumb bit cleared)."""
    nm = host.find_tool("arm-none-eabi-nm", "read symbols of Cortex-M images")
    proc = subprocess.run([nm, "-S", "--defined-only", str(elf)], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise DarbgenError(f"arm-none-eabi-nm failed on {elf}: {proc.stderr.strip()}")
    out = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4:
            out.append((parts[3], parts[2], int(parts[0], 16) & ~1, int(parts[1], 16)))
    return out


def symbols(elf):
    """{name: (address, size)} of the functions and objects in ``elf`` (Thumb bit cleared)."""
    return {name: (address, size) for name, _, address, size in sized_symbols(elf)}


#: Symbols of the test harness, start-up code and semihosting, not of the model.
HARNESS_SYMBOLS = ("darb_harness", "darb_target_", "darb_stack_", "darb_sh_", "darb_reset_handler", "darb_fault",
                   "darb_nmi_handler", "darb_hardfault_handler", "darb_memmanage_handler", "darb_busfault_handler",
                   "darb_usagefault_handler", "darb_securefault_handler", "darb_other_handler", "darb_vectors",
                   "main")


def image_sizes(elf):
    """Bytes of the model in a linked test image: {"code", "rodata", "data",
    "bss"}, summed over its symbols (unused functions are dropped at link
    time) without those of the harness and start-up code, but with the C
    library and libgcc routines the model calls (soft-float, division,
    memcpy)."""
    kinds = {"t": "code", "r": "rodata", "d": "data", "b": "bss"}
    out = dict.fromkeys(kinds.values(), 0)
    for name, kind, _, size in sized_symbols(elf):
        if kind.lower() in kinds and not name.startswith(HARNESS_SYMBOLS):
            out[kinds[kind.lower()]] += size
    return out


_TRACE = re.compile(rb"^Trace \d+: \S+ \[[0-9a-f]+/([0-9a-f]+)/")
_INSN = re.compile(rb"^0x([0-9a-f]+):\s+([0-9a-f]{4})\b")


def _block_size(size, pc):
    if pc not in size:
        raise DarbgenError(f"the QEMU log executes a block at 0x{pc:x} it never translated (no in_asm listing): "
                           f"cannot count instructions")
    return size[pc]


def count_calls(trace, entries, caller_ranges):
    """Instructions executed by each call in a QEMU ``in_asm,exec,nochain`` log.

    ``entries``: the entry addresses of the functions called, in the order
    the caller calls them (each once). A call's count runs from its entry
    to the first block back in the caller (an address in one of
    ``caller_ranges``, (start, end) pairs). Each executed block counts the
    instructions starting in its latest translation. QEMU 7.2's disassembler
    does not know the MVE and low-overhead-loop encodings (VLDRB, VMLADAVA,
    VPST, LE, ...) and lists each as two lines, one per halfword; so an
    instruction is counted at its first halfword, a 32-bit one when that
    halfword begins with 0b11101, 0b11110 or 0b11111, and the line 2 bytes on
    is its second half. Returns one count per entry.
    """
    counts = []
    k, inside, n = 0, False, 0
    size, start, in_block, next_start = {}, None, False, 0
    with open(trace, "rb") as f:
        for line in f:
            if line.startswith(b"IN:"):
                in_block, start = True, None
                continue
            if in_block:
                m = _INSN.match(line)
                if m is not None:
                    address = int(m.group(1), 16)
                    if start is None:
                        start, next_start = address, address
                        size[start] = 0
                    if address >= next_start:
                        size[start] += 1
                        next_start = address + (4 if int(m.group(2), 16) >> 11 in (0x1D, 0x1E, 0x1F) else 2)
                    continue
                if not line.strip():
                    in_block = False
                continue
            m = _TRACE.match(line)
            if m is None:
                continue
            pc = int(m.group(1), 16)
            if inside:
                if any(lo <= pc < hi for lo, hi in caller_ranges):
                    counts.append(n)
                    inside, k = False, k + 1
                else:
                    n += _block_size(size, pc)
            if not inside and k < len(entries) and pc == entries[k]:
                inside, n = True, _block_size(size, pc)
    if len(counts) != len(entries):
        raise DarbgenError(f"the instruction trace holds {len(counts)} of {len(entries)} expected calls")
    return counts


def elf_sections(elf):
    """{section: bytes} of a linked image."""
    return host.section_sizes(elf, "arm-none-eabi-size")


__all__ = ["CORES", "TARGETS", "Core", "core", "link_image", "run_image", "symbols", "count_calls"]
