"""The feed: nights are independent and resumable.

Every door into the pipeline (``claimscreen ingest``, ``validate``, ``run``, ``backfill``,
the nightly DAG) calls :func:`catch_up` first. It

1. ingests every landed night not yet in the lake (oldest first); a refused night is
   logged in the ledger and skipped, it never stops or undoes the others;
2. validates, in date order, every night waiting in ``lake/incoming/`` (landed by this
   call or by an earlier one that was interrupted, run with ``--no-validate``, or stopped
   by an earlier refusal), so a good night never stays stuck behind a bad one;
3. holds back a night that depends on an earlier night not promoted yet: a night without
   its own reference snapshots, when no promoted night on or before it has them but an
   earlier refused / blocked / waiting night carries them, *waits* for that night (named
   in the message) instead of being blocked by the gate for unknown patients.

:func:`status` reads the lake, the ledger, the validation reports, the work folders and
the published runs back into one line per extract date with what to do next.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import contract, ingest as ingest_mod, lake
from pipeline.settings import Settings

#: outcome statuses of one night in one catch-up
LANDED_OK = ("ingested", "unchanged", "replaced")
PROMOTED = ("promoted", "already_promoted")
PROBLEM = ("refused", "blocked", "waiting")

EXIT_OK, EXIT_REFUSED, EXIT_BLOCKED = 0, 2, 3


@dataclass
class Night:
    """What one catch-up did to one extract date."""
    extract_date: str
    status: str          # ingested/unchanged/replaced, refused, promoted, blocked, waiting, incoming
    messages: list = field(default_factory=list)
    waiting_for: list = field(default_factory=list)
    result: object = None    # IngestResult or ValidationResult
    report_dir: Path | None = None


@dataclass
class CatchUp:
    """Every night one catch-up touched, in the order it touched them."""
    nights: list = field(default_factory=list)

    def add(self, night: Night) -> Night:
        self.nights.append(night)
        return night

    def final(self, extract_date: str) -> Night | None:
        """The last outcome of one date (its gate verdict when it reached the gate)."""
        mine = [n for n in self.nights if n.extract_date == extract_date]
        return mine[-1] if mine else None

    def finals(self) -> list[Night]:
        seen: dict[str, Night] = {}
        for n in self.nights:
            seen[n.extract_date] = n
        return [seen[d] for d in sorted(seen)]

    @property
    def exit_code(self) -> int:
        """2 when any night was refused, else 3 when any was blocked or waits, else 0."""
        states = {n.status for n in self.finals()}
        if "refused" in states:
            return EXIT_REFUSED
        if states & {"blocked", "waiting"}:
            return EXIT_BLOCKED
        return EXIT_OK


class NightNotPromoted(Exception):
    """The night a run needs was refused, blocked or waits for an earlier night."""

    def __init__(self, night: Night):
        self.night = night
        self.extract_date = night.extract_date
        self.status = night.status
        super().__init__(f"extract {night.extract_date} {night.status}: " + "; ".join(night.messages))


# --------------------------------------------------------------------------- catching up

def incoming_dates(settings: Settings) -> list[str]:
    """Nights landed in lake/incoming/ and not promoted yet, oldest first."""
    root = settings.lake_dir / "incoming"
    if not root.exists():
        return []
    return sorted(p.name.split("=", 1)[1] for p in root.glob("extract_date=*")
                  if (p / "_INGESTED.json").exists())


def catch_up(settings: Settings, landing: Path | None = None, dates: list[str] | None = None,
             upto: str | None = None, replace: bool = False, validate: bool = True,
             gate_config=None, overrides: dict | None = None, say=None,
             force: list[str] | None = None) -> CatchUp:
    """Ingest landed nights (``dates``, or every new one up to ``upto``), then validate every
    night waiting in incoming/ up to ``upto`` in date order. Never raises for a bad night:
    each one's outcome is in the returned :class:`CatchUp` (and the ledger).

    A blocked night whose verdict cannot have changed (same copy, configuration and
    promoted nights) keeps its stored verdict; ``force`` lists dates to re-gate anyway."""
    from pipeline import validate as validate_mod

    say = say or (lambda night: None)
    report = CatchUp()
    with lake.lake_lock(settings):          # what an ingest killed mid-way left behind
        ingest_mod.clear_stale_staging(settings)
    if landing is not None and Path(landing).exists():
        todo = dates if dates is not None else sorted(
            set(ingest_mod.pending_dates(settings, Path(landing), upto))
            | set(_redelivered_blocked(settings, Path(landing), upto)))
        for d in todo:
            try:
                r = ingest_mod.ingest_one(settings, Path(landing), d, replace=replace)
                say(report.add(Night(d, r.status, [f"{k} {v:,}" for k, v in r.rows.items()]
                                     + [f"warning: {w}" for w in r.warnings], result=r)))
            except ingest_mod.ExtractRefused as e:
                say(report.add(Night(d, "refused", list(e.problems))))
    if not validate:
        for d in incoming_dates(settings):
            if upto is None or d <= upto:
                if report.final(d) is None:
                    report.add(Night(d, "incoming", ["landed; the gate has not run yet"]))
        return report
    from expectations._suite import load_config
    cfg = load_config(gate_config, overrides)
    force = set(force or ())
    for d in incoming_dates(settings):
        if upto is not None and d > upto:
            continue
        wait = waiting_on(settings, d, landing)
        if wait is not None:
            needs, earlier = wait
            msg = (f"needs {needs}; it waits for {', '.join(f'{c} ({s})' for c, s in earlier)} "
                   f"and is validated once that night is promoted")
            ingest_mod.log_event(settings, {"event": "waiting", "extract_date": d,
                                            "waiting_for": [c for c, _ in earlier], "needs": needs})
            say(report.add(Night(d, "waiting", [msg], waiting_for=[c for c, _ in earlier])))
            continue
        stored = None if d in force else validate_mod.stored_block(settings, d, cfg)
        if stored is not None:
            say(report.add(Night(d, "blocked", list(stored.get("blocking", [])) + [
                "(verdict of the last gate run: nothing it depends on has changed since; "
                f"`claimscreen validate --date {d}` runs the gate again)"],
                report_dir=validate_mod.report_dir(settings, d))))
            continue
        try:
            v = validate_mod.validate(settings, d, config=gate_config, overrides=overrides)
            say(report.add(Night(d, "promoted", [validate_mod.summary(v)], result=v,
                                 report_dir=v.report_dir)))
        except validate_mod.ExtractBlocked as e:
            say(report.add(Night(d, "blocked", list(e.failures), report_dir=e.report_dir)))
    return report


def _redelivered_blocked(settings: Settings, landing: Path, upto: str | None) -> list[str]:
    """Blocked nights in incoming/ whose landing folder now holds another delivery."""
    out = []
    for d in incoming_dates(settings):
        if upto is not None and d > upto:
            continue
        staged = ingest_mod.incoming_dir(settings, d)
        if _gate_verdict(settings, d, staged) != "blocked":
            continue
        try:
            had = json.loads((staged / "_INGESTED.json").read_text())["manifest_sha256"]
        except (OSError, ValueError, KeyError):
            continue
        now = ingest_mod.landing_manifest_sha256(landing / d)
        if now is not None and now != had:
            out.append(d)
    return out


def require_promoted(settings: Settings, report: CatchUp | None, extract_date: str,
                     landing: Path | None = None) -> None:
    """Raise :class:`NightNotPromoted` when ``extract_date`` reached the feed but is not in
    the screened data (a run for it would silently leave the night out)."""
    if (lake.extract_dir(settings, extract_date) / "_INGESTED.json").exists():
        return
    night = report.final(extract_date) if report is not None else None
    if night is not None and night.status in PROBLEM + ("incoming",):
        raise NightNotPromoted(night)
    state = night_state(settings, extract_date, landing)
    if state in PROBLEM + ("incoming",):
        why = {"refused": [e for e in last_events(settings).get(extract_date, {}).get("problems", [])],
               "incoming": ["landed but not validated"]}.get(state, [f"see `claimscreen status`"])
        raise NightNotPromoted(Night(extract_date, state, why))


def waiting_on(settings: Settings, extract_date: str, landing: Path | None = None):
    """(what the night needs, [(earlier date, its state)]) when it must wait, else None.

    A night depends on an earlier one for two things:

    - reference snapshots: a reference table has no snapshot in the night nor in any
      promoted night on or before it, and an earlier night that is not promoted carries
      (or, its manifest being unreadable, may carry) that snapshot;
    - reversals: the night reverses settlements found in no promoted night nor in itself,
      and an earlier night that is not promoted holds (or may hold) them; validated now,
      the reversals would be quarantined as reversals of unknown settlements and the
      originals, arriving later, screened as if never refunded.

    With no such earlier night the gate runs and decides (blocking on missing snapshots,
    quarantining orphan reversals)."""
    landing = Path(landing or settings.landing_dir)
    earlier = _unpromoted_before(settings, landing, extract_date)
    if not earlier:
        return None
    staged = ingest_mod.incoming_dir(settings, extract_date)
    missing = [t for t in contract.REFERENCE_TABLES
               if not (staged / "reference" / f"{t}.parquet").exists()
               and not lake.lake_files(settings, t, upto=extract_date)]
    if missing:
        found = []
        for d in earlier:
            carries = _carries(settings, landing, d)
            if carries is None or set(carries) & set(missing):
                found.append((d, night_state(settings, d, landing)))
        if found:
            return (f"the reference snapshot(s) {', '.join(missing)}, which no promoted night on or "
                    f"before it carries", found)
    orphans = _orphan_reversals(settings, staged)
    if orphans:
        found = []
        for d in earlier:
            ids = _settlement_ids(settings, landing, d, orphans)
            if ids is None or ids:
                found.append((d, night_state(settings, d, landing)))
        if found:
            eg = ", ".join(f"{r} reverses {o}" for r, o in list(orphans.items())[:3])
            return (f"the original settlement(s) of {len(orphans)} reversal(s) ({eg}), found in no "
                    f"promoted night", found)
    return None


def _unpromoted_before(settings: Settings, landing: Path, extract_date: str) -> list[str]:
    """Earlier nights known to the feed that are not promoted and will not be validated
    before this one (refused, blocked, waiting, or landed but not ingested)."""
    promoted = set(lake.ingested_dates(settings))
    dates = set(incoming_dates(settings)) | set(_ledger_dates(settings, "refused")) \
        | set(ingest_mod.landed_dates(landing))
    last = last_events(settings)
    out = []
    for d in sorted(dates):
        if d >= extract_date or d in promoted:
            continue
        staged = ingest_mod.incoming_dir(settings, d)
        if (staged / "_INGESTED.json").exists() and _gate_verdict(settings, d, staged) != "blocked" \
                and last.get(d, {}).get("event") != "waiting":
            continue        # in incoming, not gated yet: validated before this night, in date order
        out.append(d)
    return out


def _orphan_reversals(settings: Settings, staged: Path) -> dict[str, str]:
    """{reversal id: original id} for reversals in the night whose original is in no
    promoted night and not in the night itself."""
    from pipeline.lake import sql_literal
    files = sorted((staged / "settlements").glob("*.parquet"))
    if not files:
        return {}
    new = "read_parquet([" + ", ".join(sql_literal(f) for f in files) + "], hive_partitioning = false)"
    con = lake.connect(settings)
    try:
        rows = con.execute(f"SELECT settlement_id, reversal_of FROM {new} WHERE reversal_of IS NOT NULL "
                           f"AND reversal_of NOT IN (SELECT settlement_id FROM {new} "
                           f"WHERE settlement_id IS NOT NULL)").fetchall()
        if not rows:
            return {}
        prior = lake.lake_files(settings, "settlements")
        if prior:
            con.execute("CREATE TEMP TABLE wanted (settlement_id VARCHAR, reversal_of VARCHAR)")
            con.executemany("INSERT INTO wanted VALUES (?, ?)", rows)
            lst = "[" + ", ".join(sql_literal(f) for f in prior) + "]"
            rows = con.execute(f"SELECT settlement_id, reversal_of FROM wanted WHERE reversal_of NOT IN "
                               f"(SELECT settlement_id FROM read_parquet({lst}, hive_partitioning = false) "
                               f"WHERE settlement_id IS NOT NULL) ORDER BY 1").fetchall()
    finally:
        con.close()
    return dict(rows)


def _settlement_ids(settings: Settings, landing: Path, extract_date: str, wanted: dict) -> set | None:
    """Which of the wanted originals an earlier night holds (incoming copy, else its landed
    files); None when its files cannot be read."""
    from pipeline.lake import sql_literal
    staged = ingest_mod.incoming_dir(settings, extract_date) / "settlements"
    files = sorted(staged.glob("*.parquet")) or sorted((landing / extract_date / "settlements").glob("*.parquet"))
    if not files:
        return None
    originals = "[" + ", ".join(sql_literal(v) for v in sorted(set(wanted.values()))) + "]"
    con = lake.connect(settings)
    try:
        lst = "[" + ", ".join(sql_literal(f) for f in files) + "]"
        got = con.execute(f"SELECT DISTINCT settlement_id FROM read_parquet({lst}, hive_partitioning = false, "
                          f"union_by_name = true) WHERE list_contains({originals}, settlement_id)").fetchall()
    except Exception:       # a damaged file (the reason the night was refused): cannot tell
        return None
    finally:
        con.close()
    return {r[0] for r in got}


def _carries(settings: Settings, landing: Path, extract_date: str) -> list[str] | None:
    """Reference tables an earlier night carries (incoming copy or landed manifest);
    None when that cannot be told (no readable manifest)."""
    staged = ingest_mod.incoming_dir(settings, extract_date) / "reference"
    if staged.exists():
        return [p.stem for p in staged.glob("*.parquet")]
    mpath = landing / extract_date / contract.MANIFEST_NAME
    try:
        m = contract.Manifest.parse(mpath.read_text(encoding="utf-8"), str(mpath))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return [t for t in (contract.table_of(f.path) for f in m.files) if t in contract.REFERENCE_TABLES]


# --------------------------------------------------------------------------- the ledger

def ledger(settings: Settings) -> list[dict]:
    path = settings.lake_dir / "ledger.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:       # a line cut short by a crash: skip it
            continue
    return out


def _ledger_dates(settings: Settings, event: str) -> list[str]:
    return sorted({e["extract_date"] for e in ledger(settings)
                   if e.get("event") == event and "extract_date" in e})


def last_events(settings: Settings) -> dict[str, dict]:
    """The newest ledger event per extract date."""
    out = {}
    for e in ledger(settings):
        if "extract_date" in e:
            out[e["extract_date"]] = e
    return out


# --------------------------------------------------------------------------- status

def night_state(settings: Settings, extract_date: str, landing: Path | None = None) -> str:
    """promoted / blocked / waiting / incoming / refused / landed / unknown."""
    if (lake.extract_dir(settings, extract_date) / "_INGESTED.json").exists():
        return "promoted"
    staged = ingest_mod.incoming_dir(settings, extract_date)
    last = last_events(settings).get(extract_date, {})
    if (staged / "_INGESTED.json").exists():
        if _gate_verdict(settings, extract_date, staged) == "blocked":
            return "blocked"
        return "waiting" if waiting_on(settings, extract_date, landing) is not None else "incoming"
    if last.get("event") == "refused":
        return "refused"
    return "landed" if (Path(landing or settings.landing_dir) / extract_date).is_dir() else "absent"


def _gate_verdict(settings: Settings, extract_date: str, staged: Path) -> str | None:
    """The gate's stored verdict for the copy now in incoming/ (None if it has not run)."""
    try:
        doc = json.loads((settings.lake_dir / "validation" / extract_date / "results.json")
                         .read_text(encoding="utf-8"))
        entry = json.loads((staged / "_INGESTED.json").read_text())
    except (OSError, ValueError):
        return None
    return doc.get("status") if doc.get("manifest_sha256") == entry.get("manifest_sha256") else None


@dataclass
class DateStatus:
    extract_date: str
    state: str                      # landed, refused, incoming, blocked, waiting, promoted
    why: list = field(default_factory=list)
    quarantined: int = 0
    screened: bool = False
    published: str = "no"           # no / yes / stale
    next_step: str = ""

    def as_dict(self) -> dict:
        return {"extract_date": self.extract_date, "state": self.state, "why": self.why,
                "quarantined_rows": self.quarantined, "screened": self.screened,
                "published": self.published, "next": self.next_step}


def status(settings: Settings, landing: Path | None = None) -> list[DateStatus]:
    """One line per extract date known anywhere (landing, lake, ledger, published runs)."""
    from pipeline import features
    landing = Path(landing or settings.landing_dir)
    events = last_events(settings)
    dates = set(ingest_mod.landed_dates(landing)) | set(lake.ingested_dates(settings)) \
        | set(incoming_dates(settings)) | set(events)
    pub_root = settings.publish_dir
    if pub_root.exists():
        dates |= {p.name for p in pub_root.iterdir() if not p.name.startswith(".") and _is_date(p.name)}
    dates = {d for d in dates if _is_date(d)}
    promoted = lake.ingested_dates(settings)
    last_promoted = promoted[-1] if promoted else None
    out = []
    for d in sorted(dates):
        st = DateStatus(d, night_state(settings, d, landing))
        last = events.get(d, {})
        if st.state == "refused":
            st.why = list(last.get("problems", []))
            now = ingest_mod.landing_manifest_sha256(landing / d)
            if (landing / d).exists() and now != last.get("landing_manifest_sha256"):
                st.next_step = "re-delivered since it was refused: run `claimscreen ingest`"
            elif any("--replace" in p for p in st.why):
                st.next_step = (f"if this is a corrected re-delivery: `claimscreen ingest --date {d} --replace`")
            else:
                st.next_step = (f"ask the producer to re-deliver {d} intact; the next `claimscreen ingest` "
                                f"picks it up (nothing of it was landed)")
        elif st.state == "landed":
            st.why = ["in the landing folder, not ingested yet"]
            st.next_step = "run `claimscreen ingest`"
        elif st.state == "incoming":
            st.why = ["ingested, the validation gate has not run yet"]
            st.next_step = "run `claimscreen validate` (the next ingest / run does it too)"
        elif st.state == "blocked":
            try:
                st.why = list(json.loads((settings.lake_dir / "validation" / d / "results.json")
                                         .read_text(encoding="utf-8")).get("blocking", []))
            except (OSError, ValueError):
                st.why = []
            st.next_step = (f"see {settings.lake_dir / 'validation' / d / 'data_docs' / 'index.html'}; a corrected "
                            f"re-delivery is picked up by the next `claimscreen ingest`")
        elif st.state == "waiting":
            wait = waiting_on(settings, d, landing)
            if wait is None:
                st.why = ["waited for an earlier night, which has arrived since"]
                st.next_step = "run `claimscreen validate`"
            else:
                needs, earlier = wait
                names = ", ".join(f"{c} ({s})" for c, s in earlier)
                st.why = [f"waits for {names}: it needs {needs}"]
                st.next_step = f"get {earlier[0][0]} promoted first; this night follows by itself"
        if st.state == "promoted":
            from pipeline import validate as validate_mod
            for path in validate_mod.quarantined(settings, d).values():
                import pyarrow.parquet as pq
                st.quarantined += pq.ParquetFile(path).metadata.num_rows
            if last.get("event") == "refused":
                st.why = ["a later delivery was refused: " + "; ".join(last.get("problems", []))]
        st.screened = (features.run_dir(settings, d) / "ranked").exists()
        manifest = pub_root / d / "_MANIFEST.json"
        if manifest.exists():
            try:
                params = json.loads(manifest.read_text(encoding="utf-8")).get("parameters", {})
            except ValueError:
                params = {}
            st.published = "yes" if params.get("extracts") == features._lake_state(settings, d) else "stale"
        if st.state == "promoted":
            if st.published == "stale":
                st.next_step = (f"the lake changed after it was published (a night on or before it arrived "
                                f"later): `claimscreen backfill --start {d} --end {last_promoted}`")
            elif st.published == "no":
                st.next_step = f"run `claimscreen run --date {d}`"
            else:
                st.next_step = "nothing to do"
        out.append(st)
    return out


def _is_date(text: str) -> bool:
    from datetime import date
    try:
        date.fromisoformat(text)
        return len(text) == 10
    except ValueError:
        return False


def format_status(rows: list[DateStatus]) -> str:
    if not rows:
        return "no extract dates known (landing, lake and published runs are empty)"
    lines = [f"{'date':10s}  {'state':9s}  {'quarantined':>11s}  {'screened':8s}  {'published':9s}  next"]
    for r in rows:
        lines.append(f"{r.extract_date:10s}  {r.state:9s}  {r.quarantined:11,d}  "
                     f"{'yes' if r.screened else 'no':8s}  {r.published:9s}  {r.next_step}")
        for w in r.why[:5]:
            lines.append(f"{'':12s}- {w if len(w) < 240 else w[:239] + '…'}")
    return "\n".join(lines)
