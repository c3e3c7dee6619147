"""Named points where a stage can be held, so the crash-safety tests can kill it there.

With ``CLAIMSCREEN_PAUSE_AT=<name>`` set, a process reaching that point writes its name
and pid to ``$CLAIMSCREEN_PAUSE_FILE`` and sleeps until it is killed; the test then sends
SIGKILL, as an OOM kill or a power cut would stop it at that very line. Unset (always, in
production) a point costs one environment lookup.

Points: ``ingest.staged`` (extract staged, not yet renamed into incoming/),
``ingest.landed`` (in incoming/, ledger not yet written), ``validate.quarantine_written``
(held rows written to quarantine/, data files not yet rewritten), ``validate.before_promote``
(night checked and rewritten, not yet renamed into extracts/), ``screen.features_built``,
``screen.detected``, ``publish.building`` (tables copied into the version being built,
no manifest yet), ``publish.built`` (version complete, link not yet switched).
"""
from __future__ import annotations

import os
import time
from pathlib import Path


def point(name: str) -> None:
    if os.environ.get("CLAIMSCREEN_PAUSE_AT") != name:
        return
    marker = os.environ.get("CLAIMSCREEN_PAUSE_FILE")
    if marker:
        tmp = Path(marker).with_suffix(".tmp")
        tmp.write_text(f"{name} {os.getpid()}\n")
        tmp.replace(marker)
    while True:          # held here until killed
        time.sleep(60)
