#!/usr/bin/env bash
# Run the whole test suite (sets the project up first when .venv is missing or stale).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/claimscreen ] || [ pyproject.toml -nt .venv/.installed ]; then
  bash scripts/setup.sh
  touch .venv/.installed
fi
exec .venv/bin/python -m pytest "$@"
