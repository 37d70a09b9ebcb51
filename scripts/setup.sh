#!/usr/bin/env bash
# Set up darbgen on a fresh Debian machine (Python 3.11):
#   1. the system toolchain from Debian packages: host gcc, arm-none-eabi-gcc with
#      newlib, qemu-system-arm (installed only when missing; needs root or sudo);
#   2. a virtual environment (.venv, or $DARBGEN_VENV) with darbgen and only what
#      it needs to run (numpy, numba, jinja2, tqdm): no ML framework. The importers'
#      frameworks are extras (DARBGEN_EXTRAS=tflite,onnx,... adds them); the test
#      extra (PyTorch, Keras, JAX, ...) is installed by scripts/test.sh when it first runs.
# darbgen is installed as a regular (non-editable) package, so the tests exercise
# exactly what `pip install .` ships. DARBGEN_EDITABLE=1 installs it editable for
# development. Safe to run again: it only adds what is missing.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${DARBGEN_VENV:-$repo/.venv}
python=${PYTHON:-python3}
extras=${DARBGEN_EXTRAS:-}

say() { printf '[setup] %s\n' "$*" >&2; }

debian_packages=(gcc libc6-dev gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
                 espeak-ng sox)   # espeak-ng and sox: the synthesized keyword-spotting test data (../shared/data/kws)
if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    debian_packages+=(python3-venv)
fi
missing=()
if command -v dpkg >/dev/null 2>&1; then
    for pkg in "${debian_packages[@]}"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
fi
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then sudo=(); elif command -v sudo >/dev/null 2>&1; then sudo=(sudo); else
        say "ERROR: missing Debian packages ${missing[*]} and no root or sudo to install them"; exit 1
    fi
    say "installing Debian packages: ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for tool in gcc arm-none-eabi-gcc qemu-system-arm espeak-ng sox; do
    command -v "$tool" >/dev/null 2>&1 || say "WARNING: $tool not found after set-up; tests that need it will be skipped loudly"
done

if [ ! -x "$venv/bin/python" ]; then
    say "creating the virtual environment $venv"
    "$python" -m venv "$venv"
fi
spec=$repo
[ -n "$extras" ] && spec="$repo[$extras]"
say "installing darbgen${extras:+[$extras]} into $venv"
# Switching between editable and regular installs: pip leaves numba's caches
# (__pycache__) of the old copy behind, and that empty shell would shadow the
# new install as a namespace package.
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$venv/bin/pip" uninstall --quiet --disable-pip-version-check -y darbgen >/dev/null 2>&1 || true
rm -rf "$site/darbgen"
if [ "${DARBGEN_EDITABLE:-0}" = 1 ]; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check -e "$spec"
else
    "$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade "$spec"
fi
say "done: $("$venv/bin/darbgen" --version) in $venv"
