"""Evaluate: compare a published run with known cases (a ground-truth folder).

The truth folder is the synthetic generator's ``truth/`` or confirmed cases a
supervisor supplies in the same format::

    cases.parquet          case_id, scheme (= detector id), entity_type, entity_id,
                           institution_id, patient_id, doctor_id, settlement_ids, first_date
    ring_members.parquet   ring_id, member_type, member_id          (optional)
    lookalikes.parquet     honest cases that resemble a scheme      (optional)

Matching (one rule for every detector):

* a finding **matches a case** when it names the case's entity (the column of the
  case's entity type: settlement id or an evidence settlement, patient_id, doctor_id,
  institution_id; for a ring case, a patient member of the ring), when it is about the
  case's patient (a ring finding: about one of its members), when the two share an
  evidence settlement, or when an institution or doctor finding names the case's
  institution or doctor;
* a case is **found** by a detector when a finding of that detector matches it
  (recall = found / cases of that scheme);
* a finding is a **true positive** when it matches a case of its own scheme (strict
  precision) or a case of any scheme (``precision_any``: models overlap, and a card
  lender found by the resale model is still a real case);
* patients: the planted patients of a scheme are the cases' patients and the patient
  members of its rings; a detector's flagged patients are its findings' patient_id
  plus the patient members of the rings it published;
* rings: each planted ring is matched to the published ring sharing most patient members
  (Jaccard); found at 0.5 or more;
* institutions: culprits are the institutions of planted cases; the published ranking
  is scored by average precision (institutions with score 0 are not retrieved),
  precision@k and the share of culprits in the top decile;
* honest settlements: when the lake the run screened is at hand, every effective
  settlement as of the run date that is no planted case's entity or evidence is honest.
  Per detector, the honest settlements it named (entity or evidence) over all honest
  settlements is its **honest share flagged**: what enabling it costs in inspectors'
  time; the settlement precision is the share of the settlements it named that are
  planted. The same figures for all detectors together close the table.

Everything is computed in DuckDB over the Parquet files; :func:`evaluate` returns a
dict (for tests and benchmarks) and :func:`format_report` renders it for a terminal.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb

from pipeline.lake import sql_literal
from pipeline.settings import Settings

PATIENT_MODELS = ("drug_resale", "card_misuse")


def published_run(settings: Settings, run_date: str | None = None) -> Path:
    """The published run folder of run_date, or the newest one."""
    root = Path(settings.publish_dir)
    if run_date:
        p = root / str(run_date)
        if not (p / "_MANIFEST.json").exists():
            raise FileNotFoundError(f"no published run for {run_date} in {root}")
        return p
    runs = sorted(p.name for p in root.iterdir()
                  if not p.name.startswith(".") and (p / "_MANIFEST.json").exists()) if root.exists() else []
    if not runs:
        raise FileNotFoundError(f"no published run in {root}")
    return root / runs[-1]


def truth_folder(path: Path) -> Path:
    """Accept the truth folder itself or a folder holding ``truth/``."""
    path = Path(path)
    if (path / "cases.parquet").exists():
        return path
    if (path / "truth" / "cases.parquet").exists():
        return path / "truth"
    raise FileNotFoundError(f"{path}: no cases.parquet (nor truth/cases.parquet)")


def _load(con: duckdb.DuckDBPyConnection, run: Path, truth: Path) -> None:
    con.execute(f"CREATE TEMP VIEW findings AS SELECT * FROM read_parquet({sql_literal(run / 'findings.parquet')})")
    con.execute(f"CREATE TEMP VIEW institutions AS SELECT * FROM read_parquet({sql_literal(run / 'institutions.parquet')})")
    rings = run / "rings.parquet"
    con.execute("CREATE TEMP VIEW rings AS " + (
        f"SELECT * FROM read_parquet({sql_literal(rings)})" if rings.exists() else
        "SELECT NULL::VARCHAR AS ring_id, NULL::VARCHAR AS member_type, NULL::VARCHAR AS member_id WHERE false"))
    con.execute(f"""CREATE TEMP TABLE cases AS
        SELECT CAST(case_id AS VARCHAR) AS case_id, scheme, entity_type, CAST(entity_id AS VARCHAR) AS entity_id,
               institution_id, patient_id, doctor_id,
               CAST(coalesce(settlement_ids, []) AS VARCHAR[]) AS settlement_ids
        FROM read_parquet({sql_literal(truth / 'cases.parquet')})""")
    rm = truth / "ring_members.parquet"
    con.execute("CREATE TEMP TABLE truth_rings AS " + (
        f"SELECT CAST(ring_id AS VARCHAR) AS ring_id, member_type, CAST(member_id AS VARCHAR) AS member_id "
        f"FROM read_parquet({sql_literal(rm)})" if rm.exists() else
        "SELECT NULL::VARCHAR AS ring_id, NULL::VARCHAR AS member_type, NULL::VARCHAR AS member_id WHERE false"))
    la = truth / "lookalikes.parquet"
    if la.exists():
        cols = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({sql_literal(la)})").fetchall()}
        def pick(c, typ="VARCHAR"):
            return f"CAST({c} AS {typ}) AS {c}" if c in cols else f"CAST(NULL AS {typ}) AS {c}"
        sids = ("coalesce(CAST(settlement_ids AS VARCHAR[]), []) AS settlement_ids" if "settlement_ids" in cols
                else "CAST([] AS VARCHAR[]) AS settlement_ids")
        con.execute(f"""CREATE TEMP TABLE lookalikes AS
            SELECT {pick('scheme')}, {pick('entity_type')}, {pick('entity_id')},
                   {pick('institution_id')}, {pick('patient_id')},
                   {sids}
            FROM read_parquet({sql_literal(la)})""")
    else:
        con.execute("CREATE TEMP TABLE lookalikes AS SELECT NULL::VARCHAR AS scheme, NULL::VARCHAR AS entity_type, "
                    "NULL::VARCHAR AS entity_id, NULL::VARCHAR AS institution_id, NULL::VARCHAR AS patient_id, "
                    "CAST([] AS VARCHAR[]) AS settlement_ids WHERE false")


# A finding matches a case: see the module docstring. Used for cases and look-alikes.
_MATCH = """
    (c.entity_type = 'settlement' AND (f.entity_id = c.entity_id OR list_contains(f.settlement_ids, c.entity_id)))
 OR (c.entity_type = 'patient' AND list_contains(f.patients, c.entity_id))
 OR (c.entity_type = 'doctor' AND f.doctor_id = c.entity_id)
 OR (c.entity_type = 'institution' AND f.institution_id = c.entity_id)
 OR (c.entity_type = 'ring' AND len(list_intersect(f.patients, c.ring_patients)) > 0)
 OR (f.entity_type = 'institution' AND f.institution_id = c.institution_id)
 OR (f.entity_type = 'doctor' AND f.doctor_id = c.doctor_id)
 OR (c.patient_id IS NOT NULL AND list_contains(f.patients, c.patient_id))
 OR (len(c.settlement_ids) > 0 AND len(list_intersect(f.settlement_ids, c.settlement_ids)) > 0)
"""


# A finding touches an honest look-alike: it names its entity or one of its settlements.
_LOOKALIKE_MATCH = """
    (c.entity_type = 'settlement' AND (f.entity_id = c.entity_id OR list_contains(f.settlement_ids, c.entity_id)))
 OR (c.entity_type = 'patient' AND list_contains(f.patients, c.entity_id))
 OR (c.entity_type = 'institution' AND f.institution_id = c.entity_id)
 OR (c.entity_type IS NULL AND c.patient_id IS NOT NULL AND list_contains(f.patients, c.patient_id))
 OR (c.entity_type IS NULL AND c.patient_id IS NULL AND len(c.settlement_ids) = 0
     AND f.institution_id = c.institution_id)
 OR (len(c.settlement_ids) > 0 AND len(list_intersect(f.settlement_ids, c.settlement_ids)) > 0)
"""


def _matches(con) -> None:
    # the patients a finding is about: its patient, or the patient members of its ring
    con.execute("""CREATE TEMP TABLE findings_x AS
        SELECT f.*, list_distinct(list_concat(CASE WHEN f.patient_id IS NULL THEN [] ELSE [f.patient_id] END,
                                              coalesce(r.members, []))) AS patients
        FROM findings AS f
        LEFT JOIN (SELECT ring_id, list(member_id) AS members FROM rings WHERE member_type = 'patient'
                   GROUP BY ring_id) AS r
          ON f.entity_type = 'ring' AND r.ring_id = f.entity_id""")
    con.execute("""CREATE TEMP TABLE cases_x AS
        SELECT c.*, coalesce(r.members, []) AS ring_patients
        FROM cases AS c
        LEFT JOIN (SELECT ring_id, list(member_id) AS members FROM truth_rings WHERE member_type = 'patient'
                   GROUP BY ring_id) AS r
          ON c.entity_type = 'ring' AND r.ring_id = c.entity_id""")
    con.execute(f"""CREATE TEMP TABLE matches AS
        SELECT f.finding_id, f.detector_id, c.case_id, c.scheme
        FROM findings_x AS f JOIN cases_x AS c ON {_MATCH}""")
    con.execute(f"""CREATE TEMP TABLE lookalike_hits AS
        SELECT DISTINCT f.finding_id, f.detector_id
        FROM findings_x AS f JOIN lookalikes AS c ON {_LOOKALIKE_MATCH}""")


def _honest(con, have_lake: bool) -> dict:
    """Honest settlements flagged, per detector and overall (needs the lake's settlements)."""
    if not have_lake:
        return {"settlements": None, "honest": None, "detectors": {}}
    con.execute("""CREATE TEMP TABLE planted_settlements AS
        SELECT DISTINCT settlement_id FROM (
            SELECT unnest(settlement_ids) AS settlement_id FROM cases
            UNION ALL SELECT entity_id FROM cases WHERE entity_type = 'settlement')""")
    con.execute("""CREATE TEMP TABLE effective AS
        SELECT s.settlement_id, p.settlement_id IS NOT NULL AS planted
        FROM lake_settlements AS s
        LEFT JOIN planted_settlements AS p USING (settlement_id)""")
    con.execute("""CREATE TEMP TABLE named AS
        SELECT DISTINCT f.detector_id, x.settlement_id, e.planted
        FROM (SELECT detector_id,
                     unnest(list_concat(coalesce(settlement_ids, []),
                                        CASE WHEN entity_type = 'settlement' THEN [entity_id] ELSE [] END))
                         AS settlement_id
              FROM findings) AS x
        JOIN effective AS e USING (settlement_id)
        JOIN (SELECT DISTINCT detector_id FROM findings) AS f USING (detector_id)""")
    n_all, n_honest = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE NOT planted) FROM effective").fetchone()
    per = {}
    for det, named, honest in con.execute(
            "SELECT detector_id, count(*), count(*) FILTER (WHERE NOT planted) FROM named "
            "GROUP BY detector_id ORDER BY detector_id").fetchall():
        per[det] = {"settlements_named": named, "honest_flagged": honest,
                    "honest_share": honest / n_honest if n_honest else None,
                    "settlement_precision": (named - honest) / named if named else None}
    named, honest = con.execute(
        "SELECT count(DISTINCT settlement_id), count(DISTINCT settlement_id) FILTER (WHERE NOT planted) "
        "FROM named").fetchone()
    return {"settlements": n_all, "honest": n_honest, "detectors": per,
            "all": {"settlements_named": named, "honest_flagged": honest,
                    "honest_share": honest / n_honest if n_honest else None,
                    "settlement_precision": (named - honest) / named if named else None}}


def _scheme_recall(con) -> dict:
    """Per planted scheme: cases found by its own detector and by any detector."""
    out = {}
    for scheme, n, own, anyd in con.execute("""
            SELECT c.scheme, count(*),
                   count(*) FILTER (WHERE EXISTS (SELECT 1 FROM matches AS m
                                                   WHERE m.case_id = c.case_id AND m.detector_id = c.scheme)),
                   count(*) FILTER (WHERE EXISTS (SELECT 1 FROM matches AS m WHERE m.case_id = c.case_id))
            FROM cases AS c GROUP BY c.scheme ORDER BY c.scheme""").fetchall():
        out[scheme] = {"cases": n, "found_by_own_detector": own, "found_by_any": anyd,
                       "recall": own / n if n else None, "recall_any": anyd / n if n else None}
    return out


def _detector_table(con) -> list[dict]:
    rows = con.execute("""
        WITH ids AS (
            SELECT detector_id FROM findings UNION SELECT scheme FROM cases
        ),
        case_counts AS (
            SELECT scheme AS detector_id, count(*) AS n_cases FROM cases GROUP BY scheme
        ),
        found AS (
            SELECT detector_id, count(DISTINCT case_id) AS found
            FROM matches WHERE detector_id = scheme GROUP BY detector_id
        ),
        per_finding AS (
            SELECT f.detector_id, f.finding_id,
                   bool_or(m.scheme = f.detector_id) AS tp_strict,
                   bool_or(m.case_id IS NOT NULL) AS tp_any
            FROM findings AS f LEFT JOIN matches AS m USING (finding_id, detector_id)
            GROUP BY f.detector_id, f.finding_id
        ),
        prec AS (
            SELECT detector_id, count(*) AS n_findings,
                   count(*) FILTER (WHERE tp_strict) AS tp_strict,
                   count(*) FILTER (WHERE tp_any) AS tp_any
            FROM per_finding GROUP BY detector_id
        ),
        looks AS (
            SELECT detector_id, count(*) AS lookalike_hits FROM lookalike_hits GROUP BY detector_id
        )
        SELECT i.detector_id, coalesce(c.n_cases, 0), coalesce(fd.found, 0),
               coalesce(p.n_findings, 0), coalesce(p.tp_strict, 0), coalesce(p.tp_any, 0),
               coalesce(l.lookalike_hits, 0)
        FROM ids AS i
        LEFT JOIN case_counts AS c USING (detector_id)
        LEFT JOIN found AS fd USING (detector_id)
        LEFT JOIN prec AS p USING (detector_id)
        LEFT JOIN looks AS l USING (detector_id)
        ORDER BY i.detector_id
    """).fetchall()
    out = []
    for det, n_cases, found, n_f, tp_s, tp_a, looks in rows:
        out.append({"detector_id": det, "cases": n_cases, "found": found,
                    "recall": found / n_cases if n_cases else None,
                    "findings": n_f, "tp_strict": tp_s, "tp_any": tp_a,
                    "precision": tp_s / n_f if n_f else None,
                    "precision_any": tp_a / n_f if n_f else None,
                    "lookalike_hits": looks})
    return out


def _patients(con, detectors) -> dict:
    con.execute("""CREATE TEMP TABLE planted_patients AS
        SELECT DISTINCT scheme, patient_id FROM (
            SELECT scheme, patient_id FROM cases WHERE patient_id IS NOT NULL
            UNION ALL SELECT scheme, entity_id FROM cases WHERE entity_type = 'patient'
            UNION ALL
            SELECT c.scheme, r.member_id FROM cases AS c JOIN truth_rings AS r
              ON r.ring_id IN (c.entity_id, c.case_id) AND r.member_type = 'patient')""")
    con.execute("""CREATE TEMP TABLE flagged_patients AS
        SELECT DISTINCT detector_id, patient_id FROM (
            SELECT detector_id, patient_id FROM findings WHERE patient_id IS NOT NULL
            UNION ALL
            SELECT f.detector_id, r.member_id FROM findings AS f
            JOIN rings AS r ON r.ring_id = f.entity_id AND r.member_type = 'patient'
            WHERE f.entity_type = 'ring')""")
    out = {}
    for det in detectors:
        planted, flagged, hit, hit_any = con.execute("""
            SELECT (SELECT count(*) FROM planted_patients WHERE scheme = $d),
                   (SELECT count(*) FROM flagged_patients WHERE detector_id = $d),
                   (SELECT count(*) FROM flagged_patients AS f SEMI JOIN planted_patients AS p
                      ON p.patient_id = f.patient_id AND p.scheme = $d WHERE f.detector_id = $d),
                   (SELECT count(*) FROM flagged_patients AS f
                      WHERE f.detector_id = $d AND f.patient_id IN (SELECT patient_id FROM planted_patients))
        """, {"d": det}).fetchall()[0]
        out[det] = {"planted": planted, "flagged": flagged, "hits": hit,
                    "recall": hit / planted if planted else None,
                    "precision": hit / flagged if flagged else None,
                    "precision_any": hit_any / flagged if flagged else None}
    return out


def _rings(con) -> dict:
    """Each planted ring against its best published ring: Jaccard of the patient members."""
    rows = con.execute("""
        WITH t AS (SELECT ring_id, list(DISTINCT member_id) AS m FROM truth_rings
                   WHERE member_type = 'patient' GROUP BY ring_id),
        p AS (SELECT ring_id, list(DISTINCT member_id) AS m FROM rings
              WHERE member_type = 'patient' GROUP BY ring_id),
        pairs AS (
            SELECT t.ring_id,
                   max(len(list_intersect(t.m, p.m)) / len(list_distinct(list_concat(t.m, p.m)))) AS jaccard
            FROM t LEFT JOIN p ON len(list_intersect(t.m, p.m)) > 0
            GROUP BY t.ring_id
        )
        SELECT ring_id, coalesce(jaccard, 0) FROM pairs ORDER BY ring_id""").fetchall()
    n_pub = con.execute("SELECT count(DISTINCT ring_id) FROM rings").fetchall()[0][0]
    return {"planted": len(rows), "published": n_pub,
            "found": sum(1 for _, j in rows if j >= 0.5),
            "mean_best_jaccard": sum(j for _, j in rows) / len(rows) if rows else None,
            "best_jaccard": dict(rows)}


def _institutions(con) -> dict:
    ranking = con.execute("""
        WITH culprits AS (
            SELECT DISTINCT institution_id FROM cases WHERE institution_id IS NOT NULL
            UNION SELECT entity_id FROM cases WHERE entity_type = 'institution'
        )
        SELECT i.institution_id, i.rank, i.score, i.top_detectors,
               i.institution_id IN (SELECT institution_id FROM culprits) AS culprit
        FROM institutions AS i
        ORDER BY i.score DESC, i.rank, i.institution_id
    """).fetchall()
    culprits = {r[0] for r in con.execute(
        "SELECT DISTINCT institution_id FROM cases WHERE institution_id IS NOT NULL "
        "UNION SELECT entity_id FROM cases WHERE entity_type = 'institution'").fetchall()}
    n = len(ranking)
    n_c = len(culprits)
    decile = max(1, math.ceil(n / 10))
    hits, ap_sum = 0, 0.0
    positions = {}
    for pos, (inst, rank, score, top, is_c) in enumerate(ranking, 1):
        if is_c:
            positions[inst] = {"position": pos, "rank": rank, "score": score, "top_detectors": list(top or [])}
            if score > 0:
                hits += 1
                ap_sum += hits / pos

    def p_at(k):
        k = min(k, n)
        return sum(1 for r in ranking[:k] if r[4] and r[2] > 0) / k if k else None

    missing = sorted(culprits - set(positions))
    in_decile = sum(1 for p in positions.values() if p["position"] <= decile and p["score"] > 0)
    by_scheme = {}
    for scheme, inst in con.execute(
            "SELECT DISTINCT scheme, coalesce(institution_id, CASE WHEN entity_type = 'institution' THEN entity_id END) "
            "FROM cases WHERE institution_id IS NOT NULL OR entity_type = 'institution' ORDER BY 1, 2").fetchall():
        b = by_scheme.setdefault(scheme, {"culprits": 0, "in_top_decile": 0, "worst_position": 0})
        pos = positions.get(inst)
        b["culprits"] += 1
        b["in_top_decile"] += int(bool(pos) and pos["position"] <= decile and pos["score"] > 0)
        b["worst_position"] = max(b["worst_position"], pos["position"] if pos else n + 1)
    return {"screened": n, "culprits": n_c, "culprits_not_screened": missing,
            "average_precision": ap_sum / n_c if n_c else None,
            "precision_at_10": p_at(10), "precision_at_culprits": p_at(n_c) if n_c else None,
            "top_decile_size": decile, "culprits_in_top_decile": in_decile,
            "top_decile_recall": in_decile / n_c if n_c else None,
            "culprits_by_scheme": by_scheme,
            "culprit_positions": dict(sorted(positions.items(), key=lambda kv: kv[1]["position"]))}


def evaluate(settings: Settings, truth_dir: Path, run_date: str | None = None) -> dict:
    """Precision and recall of a published run against a ground-truth folder."""
    from pipeline import lake
    run = published_run(settings, run_date)
    truth = truth_folder(truth_dir)
    # the lake the run screened, when it is here: its effective settlements are the
    # population the honest share is counted over
    have_lake = bool(lake.lake_files(settings, "settlements", upto=run.name))
    con = duckdb.connect()
    if have_lake:
        lake_con = lake.open_screening(settings, run.name, features=False)
        try:
            effective = lake_con.sql("SELECT DISTINCT settlement_id FROM settlements").to_arrow_table()
        finally:
            lake_con.close()
        con.register("lake_settlements", effective)
    try:
        _load(con, run, truth)
        _matches(con)
        detectors = _detector_table(con)
        honest = _honest(con, have_lake)
        for d in detectors:
            d.update(honest["detectors"].get(d["detector_id"], {
                "settlements_named": 0, "honest_flagged": 0, "honest_share": 0.0 if have_lake else None,
                "settlement_precision": None}))
        models = sorted({d["detector_id"] for d in detectors} & set(PATIENT_MODELS)) or list(PATIENT_MODELS)
        return {"run": str(run), "run_date": run.name, "truth": str(truth),
                "detectors": detectors, "schemes": _scheme_recall(con),
                "settlements": {k: v for k, v in honest.items() if k != "detectors"},
                "patients": _patients(con, models), "rings": _rings(con),
                "institutions": _institutions(con)}
    finally:
        con.close()


def format_report(result: dict, width: int | None = None) -> str:
    """The evaluation as plain-text tables (English / Chinese headings), aligned by display width."""
    from pipeline.terminal import table

    def f(v):
        return "-" if v is None else f"{v:.3f}"

    def pct(v):
        return "-" if v is None else f"{100 * v:.3f}%"

    R = "right"
    out = [f"Evaluation of {result['run']} against {result['truth']}", ""]
    out.append(table(
        ["detector / 模型", "cases / 案例", "found / 查出", ("recall / 查全率", R), "finds / 疑点",
         ("prec / 查准率", R), ("p_any", R), "lookalike / 相似诚实", ("honest / 误报", R), ("share / 占比", R),
         ("s_prec", R)],
        [(d["detector_id"], d["cases"], d["found"], f(d["recall"]), d["findings"], f(d["precision"]),
          f(d["precision_any"]), d["lookalike_hits"],
          "-" if d.get("honest_flagged") is None else f"{d['honest_flagged']:,}",
          pct(d.get("honest_share")), f(d.get("settlement_precision"))) for d in result["detectors"]],
        title="Per detector / 各模型查全率与查准率 (honest = 误报: honest settlements it names, "
              "share of all honest)", width=width))
    st = result.get("settlements") or {}
    if st.get("settlements") is not None:
        a = st["all"]
        out += ["", f"Settlements / 结算: {st['settlements']} effective, {st['honest']} honest; "
                    f"all detectors together name {a['settlements_named']}, of which {a['honest_flagged']} honest "
                    f"({pct(a['honest_share'])} of honest settlements), "
                    f"settlement precision {f(a['settlement_precision'])}"]
    out += ["", table(
        ["scheme / 欺诈类型", "cases / 案例", "own / 本模型查出", ("recall / 查全率", R), "any / 任一模型",
         ("r_any", R)],
        [(scheme, r["cases"], r["found_by_own_detector"], f(r["recall"]), r["found_by_any"], f(r["recall_any"]))
         for scheme, r in (result.get("schemes") or {}).items()],
        title="Per scheme / 按欺诈类型查全率", width=width)]
    out += ["", table(
        ["detector / 模型", "planted / 植入", "flagged / 标记", "hits / 命中", ("recall / 查全率", R),
         ("prec / 查准率", R), ("p_any", R)],
        [(det, p["planted"], p["flagged"], p["hits"], f(p["recall"]), f(p["precision"]), f(p["precision_any"]))
         for det, p in result["patients"].items()],
        title="Patients / 参保人层面", width=width)]
    r = result["rings"]
    out += ["", "Rings / 团伙",
            f"planted {r['planted']}, published {r['published']}, found (Jaccard >= 0.5) {r['found']}, "
            f"mean best Jaccard {f(r['mean_best_jaccard'])}"]
    i = result["institutions"]
    out += ["", "Institutions / 机构排序",
            f"screened {i['screened']}, culprits {i['culprits']}, average precision {f(i['average_precision'])}, "
            f"precision@10 {f(i['precision_at_10'])}, precision@{i['culprits']} {f(i['precision_at_culprits'])}, "
            f"culprits in top decile (top {i['top_decile_size']}): {i['culprits_in_top_decile']}/{i['culprits']}"]
    out.append(table(
        ["scheme / 欺诈类型", "in top decile / 前10%", "culprits / 违规机构", "worst position / 最差名次"],
        [(scheme, b["in_top_decile"], b["culprits"], b["worst_position"])
         for scheme, b in i["culprits_by_scheme"].items()],
        title="Culprits per scheme / 按欺诈类型的违规机构", width=width))
    out.append(table(
        ["culprit / 违规机构", "position / 名次", ("score / 评分", R), "top rules / 主要规则"],
        [(inst, p["position"], f"{p['score']:.3f}", ", ".join(p["top_detectors"][:3]))
         for inst, p in i["culprit_positions"].items()],
        title="Culprit positions / 违规机构名次", width=width))
    if i["culprits_not_screened"]:
        out.append(f"  not screened: {', '.join(i['culprits_not_screened'])}")
    return "\n".join(out)


def to_json(result: dict) -> str:
    return json.dumps(result, indent=1, default=str, ensure_ascii=False)
