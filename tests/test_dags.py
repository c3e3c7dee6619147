"""DAG integrity, and the nightly DAG run for real with dag.test() on planted data."""
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow_home")
    env = {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__UNIT_TEST_MODE": "False"}
    os.environ.update(env)
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, env={**os.environ},
                   capture_output=True)
    return env


@pytest.fixture(scope="module")
def dagbag(airflow_env):
    from airflow.models import DagBag
    return DagBag(str(ROOT / "dags"))


def test_dagbag_loads_without_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {"nightly_screening", "backfill"} <= set(dagbag.dags)


def test_every_dag_has_tags_retries_and_docs(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, dag_id
        assert dag.doc_md, dag_id
        assert dag.default_args.get("retries", 0) >= 1, dag_id
        assert dag.max_active_runs == 1, dag_id


def test_nightly_detect_is_mapped_over_the_registry(dagbag):
    dag = dagbag.dags["nightly_screening"]
    assert {"wait_for_extract", "ingest_and_validate", "features", "detectors", "detect",
            "publish"} <= set(dag.task_ids)
    assert "MappedOperator" in type(dag.get_task("detect")).__name__


def test_nightly_dag_runs_and_publishes(dagbag, tmp_path, planted_landing, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("CLAIMSCREEN_DATA_DIR", str(data))
    monkeypatch.setenv("CLAIMSCREEN_LANDING_DIR", str(planted_landing))
    dag = dagbag.dags["nightly_screening"]
    for d in ("2026-10-03", "2026-10-04"):
        # 10-04 has no settlements of its own but the extracts before it are screened
        if not (planted_landing / d).exists():
            continue
        run = dag.test(logical_date=datetime.fromisoformat(d).replace(tzinfo=timezone.utc))
        assert str(run.state).endswith("success"), run.state
        assert (data / "published" / d / "_MANIFEST.json").exists()
    import duckdb
    got = duckdb.sql(f"SELECT detector_id, entity_id FROM '{data}/published/2026-10-03/findings.parquet'").fetchall()
    assert ("duplicate_billing", "S07") in got


def test_nightly_dag_fails_visibly_on_a_corrupt_extract(dagbag, tmp_path, planted_landing, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("CLAIMSCREEN_DATA_DIR", str(data))
    monkeypatch.setenv("CLAIMSCREEN_LANDING_DIR", str(planted_landing))
    part = planted_landing / "2026-10-03" / "settlements" / "part-0000.parquet"
    part.write_bytes(part.read_bytes()[:-100])
    run = dagbag.dags["nightly_screening"].test(
        logical_date=datetime(2026, 10, 3, tzinfo=timezone.utc))
    assert str(run.state).endswith("failed")
    assert not (data / "published" / "2026-10-03").exists()


def test_airflow_backfill_plans_one_run_per_extract_date(airflow_env):
    env = {**os.environ, **airflow_env}
    subprocess.run([sys.executable, "-m", "airflow", "dags", "reserialize"], check=True, env=env,
                   capture_output=True)
    out = subprocess.run([sys.executable, "-m", "airflow", "backfill", "create", "--dag-id",
                          "nightly_screening", "--from-date", "2026-10-01", "--to-date", "2026-10-04",
                          "--reprocess-behavior", "completed", "--max-active-runs", "1", "--dry-run"],
                         check=True, env=env, capture_output=True, text=True).stdout
    for d in ("2026-10-01", "2026-10-02", "2026-10-03"):
        assert f"{d} 02:00:00+00:00" in out, out
