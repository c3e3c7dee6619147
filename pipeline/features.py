"""Shared features: the claims, stays and enriched charge-line tables, derived once per run.

Each ``sql/features/NN_<name>.sql`` is a SELECT over the canonical views (and the
features before it, in file order). :func:`build` materialises them as Parquet in the
run's work folder; :func:`attach` exposes them as views named ``<name>`` on a screening
connection: the materialised files when they were built from the lake as it is now,
otherwise the SQL itself (computed on the fly: correct, only slower).

A ``NN_<name>.view.sql`` file is never materialised: it is a view over the features
before it (``lines`` = the narrow ``line_facts`` joined to the small catalog). Writing a
wide table costs far more than re-joining a few hundred catalog rows at read time, so
only what is expensive to recompute is written.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
import uuid
from pathlib import Path

import duckdb

from pipeline import lake, terminal
from pipeline.lake import ALL, FEATURES_DIR, Shard, sql_literal
from pipeline.settings import Settings


def feature_files() -> list[tuple[str, Path]]:
    """(name, sql file) pairs in build order, materialised and view features alike."""
    out = []
    for p in sorted(FEATURES_DIR.glob("*.sql")):
        stem = p.name.removesuffix(".sql").removesuffix(".view")
        name = stem.split("_", 1)[1] if stem[:2].isdigit() else stem
        out.append((name, p))
    return out


def is_view(path: Path) -> bool:
    return path.name.endswith(".view.sql")


def materialised() -> set[str]:
    return {n for n, p in feature_files() if not is_view(p)}


def _sql_text(path: Path) -> str:
    """The feature's SQL without its comments (what it really reads)."""
    return re.sub(r"--[^\n]*", "", path.read_text(encoding="utf-8"))


def dependencies() -> dict[str, set[str]]:
    """feature -> the earlier features its SQL reads."""
    deps, seen = {}, []
    for name, path in feature_files():
        text = _sql_text(path)
        deps[name] = {n for n in seen if re.search(rf"\b{n}\b", text)}
        seen.append(name)
    return deps


def closure(names) -> set[str]:
    """The features needed to build ``names`` (all of them when None)."""
    deps = dependencies()
    if names is None:
        return set(deps)
    unknown = set(names) - set(deps)
    if unknown:
        raise KeyError(f"unknown features {sorted(unknown)}; known: {sorted(deps)}")
    todo, out = list(names), set()
    while todo:
        n = todo.pop()
        if n not in out:
            out.add(n)
            todo.extend(deps[n])
    return out


def needed_by(detectors) -> set[str]:
    """The features a set of detectors reads (their headers' ``reads``), with what those need."""
    names = set(dependencies())
    return closure({r for d in detectors for r in d.reads if r in names})


def run_dir(settings: Settings, run_date: str, shard: Shard = ALL) -> Path:
    return settings.work_dir / str(run_date) / shard.tag


def _sql_hash() -> str:
    """The feature SQL itself: features built by other code are not fresh."""
    h = hashlib.sha256()
    for name, path in feature_files():
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _lake_state(settings: Settings, run_date: str) -> dict:
    """What the features depend on: every ingested extract up to the run date."""
    state = {}
    for d in lake.ingested_dates(settings):
        if d <= run_date:
            entry = json.loads((lake.extract_dir(settings, d) / "_INGESTED.json").read_text())
            state[d] = entry.get("manifest_sha256")
    return state


def is_fresh(settings: Settings, run_date: str, shard: Shard = ALL, names=None) -> bool:
    """True when the materialised features (``names``' closure, default all) match the
    lake and the feature SQL as they are now."""
    state_file = run_dir(settings, str(run_date), shard) / "features" / "_STATE.json"
    if not state_file.exists():
        return False
    saved = json.loads(state_file.read_text())
    return (saved.get("lake") == _lake_state(settings, str(run_date))
            and saved.get("sql") == _sql_hash()
            and closure(names) & materialised() <= set(saved.get("rows", {})))


def _write(con: duckdb.DuckDBPyConnection, query: str, folder: Path) -> None:
    """Write a feature as a folder of Parquet files, one per DuckDB thread.

    Work files live for one run, so speed beats size: Snappy writes about 1.5x faster
    than zstd here for 30% more bytes, and one file per thread lets both cores encode
    (a single ordered file is written by one). Row order carries no meaning in a feature.
    """
    con.execute(f"COPY ({query}) TO {sql_literal(folder)} "
                f"(FORMAT parquet, COMPRESSION snappy, PER_THREAD_OUTPUT true)")


def _scan(folder: Path) -> str:
    return f"read_parquet({sql_literal(folder.as_posix() + '/*.parquet')})"


def build(settings: Settings, run_date: str, shard: Shard = ALL, force: bool = False,
          names=None) -> dict:
    """Materialise the feature tables for (run_date, shard); returns row counts.

    ``names`` limits the build to those features and what they need (default: all); the
    others are then computed on the fly from their SQL if a detector reads them.
    Skipped (returning the saved counts) when the features are already fresh."""
    run_date = str(run_date)
    target = run_dir(settings, run_date, shard) / "features"
    if not force and is_fresh(settings, run_date, shard, names):
        terminal.log.info("%s features: fresh, reused", run_date)
        return json.loads((target / "_STATE.json").read_text())["rows"]
    t_start = time.perf_counter()
    wanted = closure(names)
    tmp = target.with_name(f".features-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    con = lake.open_screening(settings, run_date, shard, features=False)
    counts, seconds = {}, {}
    try:
        for name, path in feature_files():
            if is_view(path) or name not in wanted:
                con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {path.read_text(encoding='utf-8')}")
                continue
            out = tmp / name
            t0 = time.perf_counter()
            _write(con, path.read_text(encoding="utf-8"), out)
            seconds[name] = round(time.perf_counter() - t0, 2)
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {_scan(out)}")
            counts[name] = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
            terminal.log.info("%s features %s: %s rows (%.1fs)", run_date, name, f"{counts[name]:,}",
                              seconds[name])
        (tmp / "_STATE.json").write_text(json.dumps(
            {"lake": _lake_state(settings, run_date), "sql": _sql_hash(), "rows": counts,
             "seconds": seconds}, indent=1))
    finally:
        con.close()
    old = target.with_name(f".old-{uuid.uuid4().hex[:8]}")
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    terminal.log.info("%s features: %d tables built (%.1fs)", run_date, len(counts), time.perf_counter() - t_start)
    return counts


def attach(con: duckdb.DuckDBPyConnection, settings: Settings, run_date: str,
           shard: Shard = ALL) -> bool:
    """Create the feature views on con; True when materialised files were used."""
    folder = run_dir(settings, str(run_date), shard) / "features"
    fresh = is_fresh(settings, run_date, shard, names=set())
    built = set(json.loads((folder / "_STATE.json").read_text())["rows"]) if fresh else set()
    for name, path in feature_files():
        f = folder / name
        if name in built and f.is_dir() and not is_view(path):
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {_scan(f)}")
        else:
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {path.read_text(encoding='utf-8')}")
    return fresh
