#!/usr/bin/env bash
# Creates (or refreshes) the virtualenv tests/reference/.venv with requirements.txt.
# Idempotent: does nothing when the venv already matches requirements.txt.
# Usage: bash tests/reference/setup.sh   (PYTHON=python3.11 to choose the interpreter)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
req="$here/requirements.txt"
stamp="$venv/.requirements.sha256"
python="${PYTHON:-python3}"

want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
if "$venv/bin/python" -c 'import numba' 2>/dev/null; then
    echo "setup.sh: numba is installed in $venv; remove it (its fastmath changes p_sim at ties)" >&2
    exit 1
fi
"$venv/bin/python" -c 'import esda, libpysal, numpy, scipy, shapely, h3, pymannkendall' 
echo "$want" > "$stamp"
