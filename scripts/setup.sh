#!/usr/bin/env bash
# Set up claimscreen on a machine with only Python 3.11+ and pip: a virtualenv in .venv
# with the pinned stack, the project installed editable, and (where apt is available)
# Debian's Chinese font for the pictures and Debian's Chromium for the report and portal
# browser tests. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
bash scripts/setup_fonts.sh || echo "setup: no Chinese font (pictures get English labels only)" >&2
if [ -f scripts/setup_browser.sh ]; then
  bash scripts/setup_browser.sh || echo "setup: no Chromium (browser tests will say so)" >&2
fi
echo "setup: ready ($(.venv/bin/python --version), $(.venv/bin/claimscreen --help >/dev/null && echo claimscreen ok))"
