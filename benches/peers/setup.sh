#!/usr/bin/env bash
# Idempotent: create benches/peers/.venv (if missing) and install the pinned
# Python peer stack from requirements.txt. Quiet; non-zero exit on failure.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
req="$here/requirements.txt"
py="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
fi
# Skip pip entirely when everything pinned is already present.
if ! "$venv/bin/python" - "$req" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, want = line.split("==")
    if version(name) != want:
        sys.exit(1)
PY
then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
fi
"$venv/bin/python" -c "import polars, h3" >/dev/null
