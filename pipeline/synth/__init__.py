"""Synthetic nightly extracts with planted fraud and ground truth.

    generate(out, days=30, scale=1.0, seed=7, start="2026-10-01", fraud=True) -> summary

writes ``out/landing/<date>/...`` exactly as shared/contract/EXTRACT.md describes (one
day at a time, memory bounded by one day) and ``out/truth/`` (cases, ring members,
look-alikes, README). See truth/README.md written beside the data for the truth format.
"""
from __future__ import annotations

import re
import shutil
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import contract
from pipeline.synth import arrowutil as au
from pipeline.synth import lookalikes
from pipeline.synth.background import background_day, reversal_tables
from pipeline.synth.schemes import SchemeOutput, registry
from pipeline.synth.world import World

PRODUCER = "claimscreen synthetic generator (pipeline.synth)"
PART_ROWS = 2_000_000

CASES_SCHEMA = pa.schema([
    pa.field("case_id", pa.string(), nullable=False),
    pa.field("scheme", pa.string(), nullable=False),
    pa.field("entity_type", pa.string(), nullable=False),
    pa.field("entity_id", pa.string(), nullable=False),
    pa.field("institution_id", pa.string()),
    pa.field("patient_id", pa.string()),
    pa.field("doctor_id", pa.string()),
    pa.field("settlement_ids", pa.list_(pa.string())),
    pa.field("first_date", pa.date32()),
    pa.field("detectable_from", pa.date32()),
])
RING_SCHEMA = pa.schema([
    pa.field("ring_id", pa.string(), nullable=False),
    pa.field("member_type", pa.string(), nullable=False),
    pa.field("member_id", pa.string(), nullable=False),
])
LOOKALIKE_SCHEMA = pa.schema([
    pa.field("kind", pa.string(), nullable=False),
    pa.field("description", pa.string()),
    pa.field("patient_id", pa.string()),
    pa.field("institution_id", pa.string()),
    pa.field("settlement_ids", pa.list_(pa.string())),
])

__all__ = ["generate", "main", "CASES_SCHEMA", "RING_SCHEMA", "LOOKALIKE_SCHEMA"]


def _planted_tables(planted: list) -> tuple[pa.Table, pa.Table]:
    s = pa.Table.from_pylist([p.row for p in planted], schema=contract.SETTLEMENTS)
    items = [it for p in planted for it in p.items]
    i = pa.Table.from_pylist(items, schema=contract.SETTLEMENT_ITEMS)
    s = s.append_column("_num", pa.array([p.num for p in planted], pa.int64()))
    i = i.append_column("_num", pa.array([p.num for p in planted for _ in p.items], pa.int64()))
    return s, i


#: dictionary-encode only low-cardinality columns (ids and trace codes are faster plain)
DICT_COLUMNS = ["institution_id", "doctor_id", "dept_code", "visit_type", "admit_date", "discharge_date",
                "settle_date", "primary_dx", "insurance_type", "settle_region", "item_code", "item_category",
                "ordering_doctor_id", "service_date", "unit_price", "quantity", "days_supply"]


def _write_parts(folder: Path, table: pa.Table) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    n = table.num_rows
    k = 0
    for k, off in enumerate(range(0, max(n, 1), PART_ROWS)):
        pq.write_table(table.slice(off, PART_ROWS), folder / f"part-{k:04d}.parquet",
                       compression="zstd", use_dictionary=[c for c in DICT_COLUMNS if c in table.column_names])
    return k + 1


def generate(out: Path, days: int = 30, scale: float = 1.0, seed: int = 7, start: str = "2026-10-01",
             fraud: bool = True, progress=None, profile: str = "standard") -> dict:
    """Write `days` nightly extracts from `start` into out/landing and the truth into out/truth."""
    out = Path(out)
    if days < 1:
        raise ValueError("days must be >= 1")
    if scale <= 0:
        raise ValueError("scale must be > 0")
    landing, truth = out / "landing", out / "truth"
    start_day = au.str_to_day(start)
    if landing.exists():        # a previous run's extracts would mix with this one
        for old in landing.iterdir():
            if old.is_dir() and re.fullmatch(r"\d{4}-\d{2}-\d{2}", old.name):
                shutil.rmtree(old)
    W = World(scale, seed, start_day, days, profile)

    planted: dict[int, list] = {}
    cases: list[dict] = []
    rings: list[dict] = []
    per_scheme: dict[str, int] = {}
    scheme_lookalikes: list[dict] = []

    def collect(so: SchemeOutput, name: str):
        for p in so.settlements:
            if not (W.start <= p.settle_day <= W.end):
                raise ValueError(f"scheme {name}: settlement {p.id} settles outside the run")
            planted.setdefault(p.settle_day, []).append(p)

    if fraud:
        for name, fn in registry().items():
            so = fn(W, days, np.random.default_rng([seed, 500, zlib.crc32(name.encode())]), scale)
            collect(so, name)
            # a module may plant cases of another scheme (card lending plants visits during a
            # stay); their numbers restart in each module, so the module names them apart
            for c in so.cases:
                if c["scheme"] != name:
                    c["case_id"] = f"{c['scheme']}-{name}-{c['case_id'].rsplit('-', 1)[-1]}"
            cases.extend(so.cases)
            rings.extend(so.ring_members)
            per_scheme[name] = len(so.cases)
            scheme_lookalikes.extend(so.lookalikes)
    la_out, la_rows = lookalikes.plant(W, np.random.default_rng([seed, 600]), scale)
    collect(la_out, "lookalikes")
    la_rows.extend(scheme_lookalikes)

    watched: dict[str, list] = {}
    pending: dict[int, list] = {}
    counts = {t: 0 for t in contract.ALL_TABLES}
    dates = []
    for di in range(days):
        day = start_day + di
        dstr = au.day_to_str(day)
        dates.append(dstr)
        rng = np.random.default_rng([seed, 100, di])
        res = background_day(W, day, rng)
        for k, v in res.watched.items():
            if k != "reversible":
                watched.setdefault(k, []).extend(v)
        st_parts, it_parts = [res.settlements], [res.items]
        # reversals scheduled for today
        reserved = W.reserved_nums.get(day, set())
        base = max(res.settlements.num_rows + len(reserved), (max(reserved) + 1) if reserved else 0)
        for orig_s, orig_i in pending.pop(day, []):
            nums = np.arange(base, base + orig_s.num_rows, dtype=np.int64)
            base += orig_s.num_rows
            rs, ri = reversal_tables(orig_s, orig_i, day, nums)
            st_parts.append(rs)
            it_parts.append(ri)
            if len(watched.setdefault("reversal", [])) < 5:
                for o, r, p, inst in zip(orig_s["settlement_id"].to_pylist(), rs["settlement_id"].to_pylist(),
                                         orig_s["patient_id"].to_pylist(), orig_s["institution_id"].to_pylist()):
                    watched["reversal"].append((p, o, r, inst))
        # schedule reversals of some of today's settlements, 1-5 days later
        rev_rows = res.watched["reversible"]
        if len(rev_rows):
            target = day + rng.integers(1, 6, len(rev_rows))
            for t in np.unique(target):
                if t > W.end:
                    continue
                sel = pa.array(rev_rows[target == t])
                o_s = res.settlements.take(sel)
                o_i = res.items.filter(pc.is_in(res.items["settlement_id"], value_set=o_s["settlement_id"]))
                pending.setdefault(int(t), []).append((o_s, o_i))
        if day in planted:
            ps, pi = _planted_tables(planted[day])
            st_parts.append(ps)
            it_parts.append(pi)
        st = pa.concat_tables(st_parts)
        it = pa.concat_tables(it_parts)
        st = st.take(pa.array(np.argsort(st["_num"].to_numpy(), kind="stable"))).drop_columns(["_num"])
        order = np.lexsort((it["line_no"].to_numpy(), it["_num"].to_numpy()))
        it = it.take(pa.array(order)).drop_columns(["_num"])
        del res, st_parts, it_parts

        ddir = landing / dstr
        if ddir.exists():
            shutil.rmtree(ddir)
        _write_parts(ddir / "settlements", st.cast(contract.SETTLEMENTS))
        _write_parts(ddir / "settlement_items", it.cast(contract.SETTLEMENT_ITEMS))
        counts["settlements"] += st.num_rows
        counts["settlement_items"] += it.num_rows
        del st, it
        refs = {}
        if di == 0:
            refs = {"insured_persons": W.insured_persons_table(day), "institutions": W.institutions_table(),
                    "practitioners": W.practitioners_table(), "catalog": W.catalog_table()}
        elif W.mid is not None and day == W.mid:
            refs = {"insured_persons": W.insured_persons_table(day)}
        if refs:
            (ddir / "reference").mkdir(parents=True, exist_ok=True)
            for name, t in refs.items():
                pq.write_table(t.cast(contract.REFERENCE_TABLES[name]), ddir / "reference" / f"{name}.parquet")
                counts[name] += t.num_rows
        contract.write_manifest(ddir, dstr, PRODUCER)
        if progress:
            progress(dstr)

    la_rows.extend(lookalikes.from_watch(W, watched))
    _write_truth(truth, cases, rings, la_rows, dict(days=days, scale=scale, seed=seed, start=start, fraud=fraud,
                                                          profile=W.profile.name))
    return {
        "landing": str(landing), "truth": str(truth), "dates": dates, "rows": counts,
        "planted": per_scheme, "cases": len(cases),
        "lookalikes": {k: sum(1 for r in la_rows if r["kind"] == k) for k in sorted({r["kind"] for r in la_rows})},
    }


def _write_truth(truth: Path, cases, rings, la_rows, params: dict):
    if truth.exists():
        shutil.rmtree(truth)
    truth.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(cases, schema=CASES_SCHEMA), truth / "cases.parquet")
    pq.write_table(pa.Table.from_pylist(rings, schema=RING_SCHEMA), truth / "ring_members.parquet")
    pq.write_table(pa.Table.from_pylist(la_rows, schema=LOOKALIKE_SCHEMA), truth / "lookalikes.parquet")
    readme = (Path(__file__).parent / "TRUTH_README.md").read_text(encoding="utf-8")
    readme += "\n## This run\n\n" + "\n".join(f"- {k}: {v}" for k, v in params.items()) + "\n"
    (truth / "README.md").write_text(readme, encoding="utf-8")


def main(argv=None) -> int:
    import argparse
    import json
    import time
    ap = argparse.ArgumentParser(prog="python -m pipeline.synth", description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path, help="output folder (landing/ and truth/ inside)")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--start", default="2026-10-01")
    ap.add_argument("--no-fraud", action="store_true", help="honest background and look-alikes only")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    t0 = time.time()
    prog = None if a.quiet else (lambda d: print(f"{d}  {time.time() - t0:7.1f}s", flush=True))
    summary = generate(a.out, days=a.days, scale=a.scale, seed=a.seed, start=a.start, fraud=not a.no_fraud,
                       progress=prog)
    summary["seconds"] = round(time.time() - t0, 1)
    summary["dates"] = f"{summary['dates'][0]} .. {summary['dates'][-1]} ({len(summary['dates'])})"
    print(json.dumps(summary, indent=2))
    return 0
