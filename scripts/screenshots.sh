#!/usr/bin/env bash
# Refresh docs/screenshots/ (overview, an institution report, a ring picture) from the
# browser test that takes them; commit the PNGs that changed.
set -euo pipefail
cd "$(dirname "$0")/.."
CLAIMSCREEN_SCREENSHOTS=1 exec .venv/bin/python -m pytest -q -p no:cacheprovider \
    tests/test_reports.py -k screenshots "$@"
