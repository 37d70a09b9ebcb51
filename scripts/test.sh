#!/usr/bin/env bash
# Run darbgen's tests against the package installed by scripts/setup.sh.
#
#   bash scripts/test.sh              the fast default: every test not marked slow, on 2 processes
#                                     (about 4 minutes on 2 cores): each code path once, on one core of
#                                     each kind, in the dtypes and sizes no other default test covers
#   bash scripts/test.sh --all        every test, the slow ones too (what CI runs; also
#                                     DARBGEN_TEST_ALL=1): every core, dtype, model file and full-size
#                                     variant, framework round trips, benchmarks, experiments
#   bash scripts/test.sh -k formats   extra arguments go to pytest
#
# A test is marked slow (pytest.mark.slow, pyproject.toml) only when a faster default test covers
# the same code; `pytest -m slow` runs just those.
#
# The first run installs the test extra (pytest, hypothesis and the frameworks the
# importer tests compare with: PyTorch, Keras, JAX, ONNX, TFLite Micro, ...) into the
# virtual environment; scripts/setup.sh installs only what darbgen itself needs.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${DARBGEN_VENV:-$repo/.venv}
cd "$repo"

if [ ! -x "$venv/bin/python" ]; then
    echo "[test] no virtual environment at $venv: run bash scripts/setup.sh first" >&2
    exit 1
fi

all=${DARBGEN_TEST_ALL:-0}
args=()
for a in "$@"; do
    if [ "$a" = "--all" ]; then all=1; else args+=("$a"); fi
done

# The test extra's requirements, read from the installed darbgen's metadata (editable or not),
# installed once (a stamp in the venv remembers the list).
reqs=$("$venv/bin/python" - <<'EOF'
import importlib.metadata as md
import re
for r in md.metadata("darbgen").get_all("Requires-Dist") or []:
    if re.search(r"""extra\s*==\s*["']test["']""", r):
        print(r.split(";")[0].strip())
EOF
)
stamp="$venv/.darbgen-test-extra"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$reqs" ]; then
    echo "[test] installing the test extra into $venv (first run only)" >&2
    mapfile -t list <<< "$reqs"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${list[@]}"
    printf '%s' "$reqs" > "$stamp"
fi

select=()
if [ "$all" != 1 ]; then
    select=(-m "not slow")
fi
workers=()
if "$venv/bin/python" -c "import xdist" >/dev/null 2>&1; then
    workers=(-n "${DARBGEN_TEST_WORKERS:-2}")
fi
# `pytest` (not `python -m pytest`) keeps the source folder off sys.path, so the
# tests import the installed darbgen, templates and runtime_c included.
exec "$venv/bin/pytest" -q -p no:cacheprovider "${workers[@]}" "${select[@]}" "${args[@]}" tests
