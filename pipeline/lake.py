"""The Parquet lake and the DuckDB connections that read it.

Layout (one folder per accepted extract, so an extract appears atomically by one rename)::

    <lake>/extracts/extract_date=YYYY-MM-DD/
        settlements/part-*.parquet
        settlement_items/part-*.parquet
        reference/<table>.parquet          only when the extract carried that snapshot
        quarantine/<table>.parquet         rows held back by validation (kept, re-checkable)
        _INGESTED.json                     the ledger entry: manifest hash, counts, when
    <lake>/.staging/                       ingests in progress (never read)
    <lake>/.lock                           one ingest at a time
    <lake>/.locks/                         one gate per night, one screening per run date

No DuckDB database file is shared: every reader opens its own in-memory DuckDB over the
Parquet files (bounded by memory_limit, spilling to the spill dir), so concurrent
screenings never contend for a single writer.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from pipeline import ROOT, contract
from pipeline.settings import Settings

SQL_DIR = ROOT / "sql"
FEATURES_DIR = SQL_DIR / "features"


@dataclass(frozen=True)
class Shard:
    """One slice of the patients: hash(patient_id) % count == index."""
    index: int = 0
    count: int = 1

    def __post_init__(self):
        if not (self.count >= 1 and 0 <= self.index < self.count):
            raise ValueError(f"bad shard {self.index}/{self.count}")

    @property
    def tag(self) -> str:
        return "all" if self.count == 1 else f"{self.index}-of-{self.count}"


ALL = Shard()


def extracts_dir(settings: Settings) -> Path:
    return settings.lake_dir / "extracts"


def extract_dir(settings: Settings, extract_date: str) -> Path:
    return extracts_dir(settings) / f"extract_date={extract_date}"


def ingested_dates(settings: Settings) -> list[str]:
    """Extract dates present in the lake, oldest first."""
    root = extracts_dir(settings)
    if not root.exists():
        return []
    return sorted(p.name.split("=", 1)[1] for p in root.glob("extract_date=*")
                  if (p / "_INGESTED.json").exists())


@contextlib.contextmanager
def lake_lock(settings: Settings):
    """Exclusive lock for changes to the lake (ingest); readers need none."""
    settings.lake_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.lake_dir / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def named_lock(settings: Settings, name: str, on_wait=None):
    """Exclusive lock ``<lake>/.locks/<name>`` (one gate per night, one screening per run
    date). ``on_wait()`` is called once when another process holds it, before waiting.
    The kernel drops the lock when its holder dies, so a killed run leaves none behind."""
    root = settings.lake_dir / ".locks"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / name, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def connect(settings: Settings, database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the configured memory limit, threads and spill folder."""
    settings.spill_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(database, config={
        "memory_limit": settings.duckdb_memory_limit,
        "threads": settings.duckdb_threads,
        "temp_directory": str(settings.spill_dir),
        "preserve_insertion_order": False,
    })
    con.execute("SET enable_progress_bar = false")      # batch jobs: no bars in the logs
    return con


def sql_literal(text: str) -> str:
    """Quote a string as a SQL literal (paths handed to table functions, never user SQL)."""
    return "'" + str(text).replace("'", "''") + "'"


def _empty_relation_sql(schema: pa.Schema, with_extract_date: bool = True) -> str:
    con = duckdb.connect()
    con.register("t", pa.table({f.name: pa.array([], f.type) for f in schema}))
    cols = con.execute("DESCRIBE t").fetchall()
    con.close()
    parts = [f"CAST(NULL AS {typ}) AS \"{name}\"" for name, typ, *_ in cols]
    if with_extract_date:
        parts.append("CAST(NULL AS DATE) AS extract_date")
    return "SELECT " + ", ".join(parts) + " WHERE false"


def _parquet_relation_sql(files: list[Path], schema: pa.Schema) -> str:
    if not files:
        return _empty_relation_sql(schema)
    cols = ", ".join(f'"{f.name}"' for f in schema)
    lst = "[" + ", ".join(sql_literal(p.as_posix()) for p in files) + "]"
    return (f"SELECT {cols}, CAST(extract_date AS DATE) AS extract_date FROM read_parquet({lst}, "
            f"hive_partitioning = true, hive_types = {{'extract_date': DATE}})")


def lake_files(settings: Settings, table: str, upto: str | None = None) -> list[Path]:
    """Landed Parquet files of one contract table, optionally only up to a date."""
    files = []
    for d in ingested_dates(settings):
        if upto is not None and d > upto:
            continue
        base = extract_dir(settings, d)
        if table in contract.FACT_TABLES:
            files.extend(sorted((base / table).glob("*.parquet")))
        else:
            p = base / "reference" / f"{table}.parquet"
            if p.exists():
                files.append(p)
    return files


def open_screening(settings: Settings, run_date: str | date, shard: Shard = ALL,
                   features: bool = True) -> duckdb.DuckDBPyConnection:
    """A connection holding the canonical views (sql/views.sql) as of run_date.

    With ``features`` the shared feature tables materialised for this run (see
    :func:`pipeline.features.build`) are attached as views too, when present.
    """
    run_date = str(run_date)
    con = connect(settings)
    for table, schema in contract.ALL_TABLES.items():
        rel = _parquet_relation_sql(lake_files(settings, table, upto=run_date), schema)
        con.execute(f"CREATE OR REPLACE TEMP VIEW raw_{table} AS {rel}")
    con.execute("CREATE OR REPLACE TEMP TABLE run_context AS "
                "SELECT CAST($run_date AS DATE) AS run_date, "
                "CAST($i AS BIGINT) AS shard_index, CAST($n AS BIGINT) AS shard_count",
                {"run_date": run_date, "i": shard.index, "n": shard.count})
    con.execute((SQL_DIR / "views.sql").read_text(encoding="utf-8"))
    if features:
        from pipeline import features as feat
        feat.attach(con, settings, run_date, shard)
    return con
