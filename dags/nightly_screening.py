"""Nightly screening: wait for the extract, ingest, validate, detect (fanned out), publish."""
from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

DOC = """
### Nightly screening / 夜间筛查

Screens the extract of the logical date (`ds`): the run for 2026-10-05 starts at 02:00
on 2026-10-06, after that night's extract has landed.

1. **wait_for_extract** — until `<landing>/<ds>/_MANIFEST.json` exists (written last by
   the producer) or the extract is already in the lake.
2. **ingest_and_validate** — manifest check, landing into the lake, Great Expectations
   gate. A refused or blocked extract fails the run at once (no retries) and leaves the
   lake and every published run untouched.
3. **features** — shared claims / stays / lines tables for the run date.
4. **detect** — one mapped task per detector in the registry (no DAG edit for a new one).
5. **publish** — rank institutions and publish `published/<ds>/` atomically.

Re-running a date (clear, or `airflow backfill create --reprocess-behavior completed`)
rewrites the same outputs. `max_active_runs=1` keeps backfills in date order, so each
night's `first_seen` sees the night before.
"""


@dag(
    dag_id="nightly_screening",
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone="UTC"),
    start_date=datetime(2026, 10, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=DOC,
    tags=["claimscreen", "screening", "nightly"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
)
def nightly_screening():
    @task.sensor(poke_interval=300, timeout=6 * 3600, mode="reschedule")
    def wait_for_extract(ds=None) -> bool:
        from pipeline.airflow_tasks import extract_ready
        return extract_ready(ds)

    @task(retries=0)
    def ingest_and_validate(ds=None) -> dict:
        from pipeline.airflow_tasks import ExtractRejected, ingest_and_validate
        try:
            return ingest_and_validate(ds)
        except ExtractRejected as e:
            raise AirflowFailException(str(e)) from None

    @task
    def features(ds=None) -> dict:
        from pipeline.airflow_tasks import build_features
        return build_features(ds)

    @task
    def detectors() -> list[str]:
        from pipeline.airflow_tasks import detector_ids
        return detector_ids()

    @task(max_active_tis_per_dagrun=2)
    def detect(detector_id: str, ds=None) -> dict:
        from pipeline.airflow_tasks import run_detector
        return run_detector(ds, detector_id)

    @task
    def publish(ds=None) -> str:
        from pipeline.airflow_tasks import rank_and_publish
        return rank_and_publish(ds)

    ready = wait_for_extract()
    checked = ingest_and_validate()
    feats = features()
    found = detect.expand(detector_id=detectors())
    ready >> checked >> feats >> found >> publish()


nightly_screening()
