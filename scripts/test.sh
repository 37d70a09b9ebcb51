#!/usr/bin/env bash
# Run darbgen's tests against the package installed by scripts/setup.sh.
# Extra arguments go to pytest (for example: bash scripts/test.sh -k formats).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${DARBGEN_VENV:-$repo/.venv}
cd "$repo"
# `pytest` (not `python -m pytest`) keeps the source folder off sys.path, so the
# tests import the installed darbgen, templates and runtime_c included.
exec "$venv/bin/pytest" -q -p no:cacheprovider "$@" tests
