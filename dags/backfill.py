"""Backfill: re-screen a date range on demand, optionally only some detectors."""
from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

DOC = """
### Backfill / 历史回溯筛查

Manual trigger. Params: `start`, `end` (inclusive, YYYY-MM-DD) and optionally
`detectors` (ids; empty = all). For every date in order it ingests a landed extract
not yet in the lake, then screens and publishes that date. Each date sees only the
extracts up to itself, so a re-screened date gives the answer that night would have,
with today's rules; running the same backfill twice publishes the same findings.
Dates go in order on purpose: each night's `first_seen` reads the night before.
"""


@dag(
    dag_id="backfill",
    schedule=None,
    start_date=datetime(2026, 10, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=DOC,
    tags=["claimscreen", "screening", "backfill"],
    default_args={"retries": 1, "retry_delay": timedelta(minutes=5)},
    params={
        "start": Param("2026-10-01", type="string", format="date"),
        "end": Param("2026-10-31", type="string", format="date"),
        "detectors": Param([], type="array", items={"type": "string"}),
    },
)
def backfill():
    @task
    def check_params(params=None) -> dict:
        from pipeline.airflow_tasks import detector_ids
        from pipeline.screen import date_range
        dates = date_range(params["start"], params["end"])
        ids = detector_ids(params["detectors"] or None)
        return {"dates": len(dates), "detectors": ids}

    @task
    def rescreen(params=None) -> list[str]:
        from pipeline.airflow_tasks import backfill as run_backfill
        return run_backfill(params["start"], params["end"], params["detectors"] or None)

    check_params() >> rescreen()


backfill()
