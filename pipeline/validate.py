"""Validate: the gate between a landed extract (lake/incoming) and the screened data.

An extract in ``incoming/`` is checked; when nothing blocking is found it is promoted
to ``extracts/`` (one rename), with any row-level failures held back in its
``quarantine/`` folder. A blocked extract stays in ``incoming/`` and never reaches a
detector.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import lake
from pipeline.ingest import incoming_dir, log_event
from pipeline.settings import Settings


class ExtractBlocked(Exception):
    """Validation found blocking failures; the extract was not promoted."""

    def __init__(self, extract_date: str, failures: list[str]):
        self.extract_date = extract_date
        self.failures = failures
        super().__init__(f"extract {extract_date} blocked by validation: " + "; ".join(failures))


@dataclass
class ValidationResult:
    extract_date: str
    status: str                     # "passed", "already_promoted"
    blocking: list = field(default_factory=list)
    quarantined: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)


def _checks(con, extract_date: str, staged: Path) -> tuple[list[str], list[str]]:
    """Minimal structural checks; the Great Expectations suites extend this."""
    blocking, warnings = [], []
    files = sorted((staged / "settlements").glob("*.parquet"))
    new = "read_parquet([" + ", ".join(lake.sql_literal(f) for f in files) + "])"
    dup = con.execute(f"SELECT settlement_id FROM {new} GROUP BY 1 HAVING count(*) > 1 LIMIT 5").fetchall()
    if dup:
        blocking.append(f"settlements.settlement_id: duplicated within the extract, e.g. {[r[0] for r in dup]}")
    return blocking, warnings


def validate(settings: Settings, extract_date: str) -> ValidationResult:
    """Run the gate on one landed extract and promote it when it passes."""
    promoted = lake.extract_dir(settings, extract_date)
    staged = incoming_dir(settings, extract_date)
    if not staged.exists():
        if (promoted / "_INGESTED.json").exists():
            return ValidationResult(extract_date, "already_promoted")
        raise FileNotFoundError(f"extract {extract_date} is not in the lake: ingest it first")
    con = lake.connect(settings)
    try:
        blocking, warnings = _checks(con, extract_date, staged)
    finally:
        con.close()
    if blocking:
        log_event(settings, {"event": "blocked", "extract_date": extract_date, "failures": blocking})
        raise ExtractBlocked(extract_date, blocking)
    promote(settings, extract_date)
    log_event(settings, {"event": "promoted", "extract_date": extract_date})
    return ValidationResult(extract_date, "passed", warnings=warnings)


def promote(settings: Settings, extract_date: str) -> Path:
    """Move a validated extract from incoming/ into the screened zone in one rename."""
    with lake.lake_lock(settings):
        src = incoming_dir(settings, extract_date)
        dst = lake.extract_dir(settings, extract_date)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists():
            old = settings.lake_dir / ".replaced" / f"{extract_date}-promoted-{src.stat().st_ino}"
            old.parent.mkdir(parents=True, exist_ok=True)
            dst.rename(old)
        src.rename(dst)
        return dst
