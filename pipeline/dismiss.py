"""Dismissals: a supervisor closes a finding after review (误报/已处理).

Each dismissal is one small Parquet file under ``<lake>/dismissals/`` (append-only: never
edited or deleted). From its date on the finding is left out of published runs; a run
for an earlier date is unaffected, so re-running history gives the answer of that night.
"""
from __future__ import annotations

import re
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.settings import Settings

SCHEMA = pa.schema([("finding_id", pa.string()), ("dismissed_on", pa.date32()),
                    ("dismissed_by", pa.string()), ("reason", pa.string()),
                    ("recorded_at", pa.timestamp("s", tz="UTC"))])


def dismissals_dir(settings: Settings) -> Path:
    return settings.lake_dir / "dismissals"


def dismiss(settings: Settings, finding_id: str, reason: str, by: str,
            on: str | None = None) -> Path:
    if not re.fullmatch(r"[0-9a-f]{8,64}", finding_id):
        raise ValueError(f"not a finding id: {finding_id!r}")
    if not reason.strip():
        raise ValueError("a dismissal needs a reason")
    on_date = date.fromisoformat(on) if on else date.today()
    folder = dismissals_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    t = pa.table({"finding_id": [finding_id], "dismissed_on": [on_date], "dismissed_by": [by],
                  "reason": [reason], "recorded_at": [datetime.now(timezone.utc).replace(microsecond=0)]},
                 schema=SCHEMA)
    out = folder / f"{on_date.isoformat()}-{uuid.uuid4().hex[:12]}.parquet"
    tmp = out.with_name("." + out.name)
    pq.write_table(t, tmp)
    tmp.replace(out)
    return out


def files(settings: Settings) -> list[Path]:
    folder = dismissals_dir(settings)
    return sorted(folder.glob("[0-9]*.parquet")) if folder.exists() else []
