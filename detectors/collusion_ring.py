"""
---
id: collusion_ring
name_en: Collusion ring (patients co-visiting in groups)
name_zh: 结伴就医团伙
family: graph
judgement: suspicious
entity_type: ring
severity: 4
params:
  min_covisit_days:
    default: 3
    description: distinct days two patients must share a doctor (or institution) to be linked
  min_lift:
    default: 3.0
    description: shared days must be at least this many times what chance gives
  min_surprise:
    default: 3.0
    description: -log10 of the chance probability of that many shared days (hypergeometric bound)
  household_max:
    default: 5
    description: a phone or address shared by at most this many cards is a household; its members' co-visits are explained
  min_ring_patients:
    default: 5
    description: patients a ring needs
  min_density:
    default: 0.3
    description: share of the ring's meetings its average member came to (also seeds a meeting - at least this share of the core present)
  min_ring_score:
    default: 1.0
    description: rings scoring lower are not published
  split_min_nodes:
    default: 30
    description: components larger than this (or sparser than min_density) are split by community detection
  leiden_min_edges:
    default: 20000
    description: components with more edges go to igraph's Leiden instead of networkx Louvain
  member_false_members:
    default: 0.2
    description: expected honest patients admitted to a ring by chance (sets the membership test's threshold from the number of candidates)
  member_min_share:
    default: 0.5
    description: share of a member's visits to the ring's doctors/institutions that fall on the ring's meeting days
  intermediary_min_cards:
    default: 3
    description: ring patients a non-household phone or address must bind to join the ring as an intermediary
  max_pictures:
    default: 20
    description: rings (best first) drawn as a picture beside the run
  seed:
    default: 7
    description: seed of the community detection (fixed, so reruns give the same rings)
reads: [covisit_pairs, claims, lines, insured_persons]
scheme: |
  Organised fraud shows up as structure: the same group of patients (recruited, or with
  their cards gathered by one intermediary) sees the same doctor or institution on the
  same days again and again (结伴就医). Pairs of patients sharing a doctor-day or an
  institution-day far more often than their own visit frequencies explain are linked
  (covisit_pairs); the linked groups (connected components, split by Louvain / Leiden
  community detection) are trimmed to their dense core with the doctors they meet (greedy
  peeling of the patient-patient and patient-doctor graph, FRAUDAR-style). The core's
  meeting days (days its doctors saw a good part of the core) then decide membership:
  every patient of those doctors / institutions whose visits fall on the meeting days far
  more than chance joins the ring. One finding per ring and institution where it met on
  min_covisit_days days (settlement_ids = the members' visits on meeting days); members
  in rings.parquet (patients, doctors, institutions, and as intermediaries the
  non-household phones/addresses binding several members' cards); a picture of each top
  ring beside the run (rings/<ring_id>.png).
score: |
  attendance (share of the ring's meetings the average member came to) x ln(1 + patients)
  x ln(1 + meetings per member) x (1 + share of fund money on high-resale items) x
  (1 + 0.25 log10(1 + fund money of the co-visit settlements / 1000)).
false_positives: |
  Households are excluded (a phone or address shared by at most household_max cards:
  their joint visits are explained), and so are patients who keep the same fixed rhythm
  in phase (refills every 14 days, a visit every 5 days) or the same weekdays (dialysis
  Monday/Wednesday/Friday, rehabilitation twice a week): scheduled care. Cohorts brought
  in together on irregular days (a care home's residents taken to its clinic, a class
  sent for check-ups) co-visit by design and appear as rings: check the address, the
  diagnoses and the items. Known gaps: a ring meeting on a fixed weekly rhythm looks
  like scheduled care and is not linked; a ring hidden inside a doctor-day with more than 60 regular patients is not
  paired (bound of covisit_pairs); a phone gathering many cards makes no ring without
  co-visits. Run on the whole lake, not on patient shards: a ring split over shards is
  weakened.
---
Collusion rings from the co-visit graph: edges in DuckDB, graphs in networkx (igraph's
Leiden for large components).
"""
from __future__ import annotations

import hashlib
import heapq
import json
import math
import shutil
from collections import defaultdict
from pathlib import Path

import networkx as nx
import pyarrow as pa

from pipeline import fonts

MEMBER_TYPES = ("patient", "doctor", "institution", "intermediary")

FINDINGS_SCHEMA = pa.schema([
    ("finding_key", pa.string()), ("entity_type", pa.string()), ("entity_id", pa.string()),
    ("institution_id", pa.string()), ("patient_id", pa.string()), ("doctor_id", pa.string()),
    ("settlement_ids", pa.list_(pa.string())), ("score", pa.float64()),
    ("amount_at_risk", pa.float64()), ("reason", pa.string()), ("evidence", pa.string()),
])
RINGS_SCHEMA = pa.schema([
    ("ring_id", pa.string()), ("member_type", pa.string()), ("member_id", pa.string()),
    ("ring_score", pa.float64()), ("n_members", pa.int32()),
])

# Surprising co-visit links, one per patient pair (its strongest context), households out.
EDGES_SQL = """
WITH links AS (
    SELECT patient_a, patient_b,
           arg_max(context_kind, surprise) AS context_kind,
           arg_max(context_id, surprise) AS context_id,
           max(covisit_days) AS covisit_days,
           max(surprise) AS surprise,
           max(lift) AS lift
    FROM covisit_pairs
    WHERE covisit_days >= $min_covisit_days AND lift >= $min_lift AND surprise >= $min_surprise
    GROUP BY patient_a, patient_b
),
linked AS (
    SELECT patient_a AS patient_id FROM links UNION SELECT patient_b FROM links
),
contacts AS (
    SELECT patient_id, 'phone:' || phone_hash AS contact FROM insured_persons WHERE phone_hash IS NOT NULL
    UNION ALL
    SELECT patient_id, 'address:' || address_hash FROM insured_persons WHERE address_hash IS NOT NULL
),
linked_contacts AS (
    SELECT * FROM contacts SEMI JOIN linked USING (patient_id)
),
contact_size AS (
    SELECT contact, count(DISTINCT patient_id) AS n_cards
    FROM contacts SEMI JOIN linked_contacts USING (contact)
    GROUP BY contact
),
household_pairs AS (
    -- a contact shared by a few cards is a family: their joint visits are explained
    SELECT DISTINCT a.patient_id AS patient_a, b.patient_id AS patient_b
    FROM linked_contacts AS a
    JOIN linked_contacts AS b ON a.contact = b.contact AND a.patient_id < b.patient_id
    JOIN contact_size AS s ON s.contact = a.contact
    WHERE s.n_cards <= $household_max
)
SELECT l.*
FROM links AS l
ANTI JOIN household_pairs AS h USING (patient_a, patient_b)
ORDER BY patient_a, patient_b
"""

# Every visit of the candidate groups' patients at a slot (doctor-day, or institution-day
# when no doctor is named) where at least two patients of the same group were present.
SLOTS_SQL = """
WITH member_visits AS (
    SELECT g.group_no, c.settlement_id, c.patient_id, c.institution_id, c.doctor_id,
           coalesce(c.doctor_id, c.institution_id) AS column_id,
           CASE WHEN c.doctor_id IS NULL THEN 'institution' ELSE 'doctor' END AS column_type,
           c.admit_date AS day, c.fund_paid
    FROM claims AS c
    JOIN _ring_candidates AS g USING (patient_id)
),
column_slots AS (
    SELECT group_no, column_id, day FROM member_visits
    GROUP BY group_no, column_id, day HAVING count(DISTINCT patient_id) >= 2
),
institution_slots AS (
    SELECT group_no, institution_id, day FROM member_visits
    GROUP BY group_no, institution_id, day HAVING count(DISTINCT patient_id) >= 2
)
SELECT m.*, cs.column_id IS NOT NULL AS at_column_slot
FROM member_visits AS m
LEFT JOIN column_slots AS cs USING (group_no, column_id, day)
LEFT JOIN institution_slots AS s USING (group_no, institution_id, day)
WHERE cs.column_id IS NOT NULL OR s.institution_id IS NOT NULL
"""

# Every visit to each ring's columns (its core doctors, or institutions when no doctor is
# named, at level 'doctor'; the institutions where its core met, at level 'institution'),
# and which slots (column-day) were meeting slots: a good part of the core present.
RING_VISITS_SQL = """
CREATE OR REPLACE TEMP MACRO _surprise(na, nb, nd, k) AS
    CASE WHEN k > (na + 1) * (nb + 1) / (nd + 2) THEN greatest(0, -(
              (lgamma(na + 1) - lgamma(k + 1) - lgamma(na - k + 1))
            + (lgamma(nd - na + 1) - lgamma(nb - k + 1) - lgamma(nd - na - nb + k + 1))
            - (lgamma(nd + 1) - lgamma(nb + 1) - lgamma(nd - nb + 1))
            + ln(least(na, nb) - k + 1)) / ln(10))
         ELSE 0 END;
CREATE OR REPLACE TEMP TABLE _ring_visits AS
WITH visits AS (
    SELECT 'doctor' AS level, coalesce(doctor_id, institution_id) AS column_id, *
    FROM claims
    UNION ALL
    SELECT 'institution', institution_id, *
    FROM claims
)
-- at level 'doctor' a slot is a day with any of the ring's doctors (a ring with two
-- doctors splits each meeting between them)
SELECT c.ring_no, v.level, CASE WHEN v.level = 'doctor' THEN '*' ELSE v.column_id END AS column_id,
       v.patient_id, v.admit_date AS day, v.settlement_id, v.institution_id, v.doctor_id, v.fund_paid
FROM visits AS v
JOIN _ring_columns AS c USING (level, column_id);
CREATE OR REPLACE TEMP TABLE _ring_slots AS
WITH core_size AS (
    SELECT ring_no, count(*) AS n_core FROM _ring_core GROUP BY ring_no
)
SELECT v.ring_no, v.level, v.column_id, v.day,
       count(DISTINCT k.patient_id) >= greatest(3, ceil($min_density * any_value(cs.n_core))) AS meeting
FROM _ring_visits AS v
JOIN core_size AS cs USING (ring_no)
LEFT JOIN _ring_core AS k ON k.ring_no = v.ring_no AND k.patient_id = v.patient_id
GROUP BY v.ring_no, v.level, v.column_id, v.day
"""

# Per ring, level and patient: the slots of the ring's columns the patient visited, how
# many were meeting slots, and how surprising that is (hypergeometric, as covisit_pairs).
MEMBER_TEST_SQL = """
WITH per_patient AS (
    SELECT v.ring_no, v.level, v.patient_id,
           count(DISTINCT (v.column_id, v.day)) AS n_slots,
           count(DISTINCT (v.column_id, v.day)) FILTER (WHERE s.meeting) AS k
    FROM _ring_visits AS v
    JOIN _ring_slots AS s USING (ring_no, level, column_id, day)
    GROUP BY v.ring_no, v.level, v.patient_id
),
tested AS (
    -- every patient who came to the ring's columns often enough to pass is a candidate:
    -- the admission threshold grows with their number (multiple testing)
    SELECT *, count(*) FILTER (WHERE n_slots >= $min_covisit_days)
                  OVER (PARTITION BY ring_no, level) AS candidates
    FROM per_patient
),
totals AS (
    SELECT ring_no, level, count(*) AS open_slots, count(*) FILTER (WHERE meeting) AS meetings
    FROM _ring_slots
    GROUP BY ring_no, level
)
SELECT p.ring_no, p.level, p.patient_id, p.n_slots, p.k, p.candidates, t.meetings, t.open_slots,
       _surprise(CAST(p.n_slots AS DOUBLE), CAST(t.meetings AS DOUBLE),
                 CAST(t.open_slots AS DOUBLE), CAST(p.k AS DOUBLE)) AS surprise
FROM tested AS p
JOIN totals AS t USING (ring_no, level)
WHERE p.k >= $min_covisit_days
"""

# The members' settlements on meeting slots: the evidence of each ring.
EVIDENCE_SQL = """
SELECT DISTINCT v.ring_no, v.settlement_id, v.patient_id, v.institution_id, v.doctor_id,
       v.day, v.fund_paid
FROM _ring_visits AS v
JOIN _ring_slots AS s USING (ring_no, level, column_id, day)
JOIN _ring_members AS m ON m.ring_no = v.ring_no AND m.patient_id = v.patient_id
WHERE s.meeting
ORDER BY v.ring_no, v.settlement_id
"""

HIGH_VALUE_SQL = """
SELECT l.settlement_id, sum(l.line_fund) AS fund,
       sum(CASE WHEN l.high_resale THEN l.line_fund ELSE 0 END) AS fund_high_value
FROM lines AS l
SEMI JOIN _ring_settlements AS r USING (settlement_id)
GROUP BY l.settlement_id
"""


def ring_id(members: list[str]) -> str:
    """Stable id of a ring: the same patients and doctors give the same id."""
    return "R" + hashlib.sha256("|".join(sorted(members)).encode()).hexdigest()[:15]


def communities(g: nx.Graph, seed: int, leiden_min_edges: int) -> list[set]:
    """Modularity communities of one component: networkx Louvain for moderate graphs,
    igraph's Leiden (C implementation) above leiden_min_edges edges, where networkx Louvain
    stops scaling (measured: 20 s at 2.5e5 edges, minutes at 1e6; igraph Leiden 1.7 s at 3e5)."""
    if g.number_of_edges() > leiden_min_edges:
        import random

        import igraph as ig
        nodes = sorted(g.nodes)
        index = {n: i for i, n in enumerate(nodes)}
        edges = sorted((min(index[a], index[b]), max(index[a], index[b]), w)
                       for a, b, w in g.edges(data="weight"))
        ig_g = ig.Graph(n=len(nodes), edges=[(a, b) for a, b, _ in edges])
        ig_g.es["weight"] = [w for _, _, w in edges]
        ig.set_random_number_generator(random.Random(seed))   # same rings on a rerun
        try:
            part = ig_g.community_leiden(objective_function="modularity", weights="weight",
                                         n_iterations=2)
        finally:
            ig.set_random_number_generator(random)
        return [{nodes[i] for i in block} for block in part]
    return [set(c) for c in nx.community.louvain_communities(g, weight="weight", seed=seed)]


def candidate_groups(g: nx.Graph, params: dict) -> list[set]:
    """Connected components of the co-visit graph; large or sparse ones split into
    communities. Groups below min_ring_patients are dropped."""
    out = []
    for comp in nx.connected_components(g):
        if len(comp) < params["min_ring_patients"]:
            continue
        sub = g.subgraph(comp)
        if len(comp) > params["split_min_nodes"] or nx.density(sub) < params["min_density"]:
            parts = communities(sub, int(params["seed"]), int(params["leiden_min_edges"]))
        else:
            parts = [set(comp)]
        out.extend(p for p in parts if len(p) >= params["min_ring_patients"])
    return sorted(out, key=lambda s: sorted(s)[0])


def densest_core(weights: dict[tuple, float], nodes: set) -> set:
    """Greedy peeling (Charikar; the FRAUDAR greedy): repeatedly drop the node with the
    smallest weighted degree and keep the prefix maximising total weight / nodes.
    O(E log E): a heap with lazy deletion; the best set is rebuilt from the peel order."""
    adj = defaultdict(dict)
    for (a, b), w in weights.items():
        adj[a][b] = adj[a].get(b, 0) + w
        adj[b][a] = adj[b].get(a, 0) + w
    alive = set(nodes)
    degree = {n: sum(adj[n].values()) for n in alive}
    total = float(sum(weights.values()))
    best_density, best_step, removed = total / max(len(alive), 1), 0, []
    order = {n: i for i, n in enumerate(sorted(alive, key=repr))}   # ties broken stably
    heap = [(d, order[n], n) for n, d in degree.items()]
    heapq.heapify(heap)
    while len(alive) > 1:
        d, _, n = heapq.heappop(heap)
        if n not in alive or d != degree[n]:
            continue
        alive.discard(n)
        removed.append(n)
        total -= degree[n]
        for m, w in adj[n].items():
            if m in alive:
                degree[m] -= w
                heapq.heappush(heap, (degree[m], order[m], m))
        density = total / len(alive)
        if density > best_density + 1e-12:
            best_density, best_step = density, len(removed)
    return set(nodes) - set(removed[:best_step])


def _table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)


def detect(con, params: dict, ctx) -> dict:
    edges = con.sql(EDGES_SQL, params={k: params[k] for k in (
        "min_covisit_days", "min_lift", "min_surprise", "household_max")}).to_arrow_table()
    g = nx.Graph()
    e = edges.to_pydict()
    for a, b, days, s, kind, cid in zip(e["patient_a"], e["patient_b"], e["covisit_days"],
                                        e["surprise"], e["context_kind"], e["context_id"]):
        g.add_edge(a, b, weight=float(days), surprise=float(s), context=f"{kind}:{cid}")
    groups = candidate_groups(g, params)
    pictures = Path(ctx.out_dir) / "rings"
    shutil.rmtree(pictures, ignore_errors=True)
    if not groups:
        return {"findings": _table([], FINDINGS_SCHEMA), "rings": _table([], RINGS_SCHEMA)}

    rings = _rings_of(con, g, groups, params)
    findings, members = [], []
    for r in rings:
        findings.extend(_findings_of(r))
        n = len(r["members"])
        members.extend({"ring_id": r["ring_id"], "member_type": t, "member_id": m,
                        "ring_score": r["score"], "n_members": n} for t, m in r["members"])
    if rings and params["max_pictures"] > 0:
        pictures.mkdir(parents=True, exist_ok=True)
        for r in sorted(rings, key=lambda r: (-r["score"], r["ring_id"]))[:int(params["max_pictures"])]:
            draw_ring(r, pictures / f"{r['ring_id']}.png")
    return {"findings": _table(findings, FINDINGS_SCHEMA), "rings": _table(members, RINGS_SCHEMA)}


def _arrow_rows(con, sql: str, params: dict | None = None) -> list[dict]:
    return con.sql(sql, params=params or {}).to_arrow_table().to_pylist()


def _register(con, name: str, rows: list[dict], schema: pa.Schema) -> None:
    con.register(name, pa.Table.from_pylist(rows, schema=schema))


def _cores(con, g: nx.Graph, groups: list[set]) -> list[dict]:
    """Dense core of each candidate group: greedy peeling of its patient-patient links and
    patient-column weights (column = doctor, or institution when no doctor is named;
    weight = days the patient met that column together with other group members)."""
    _register(con, "_ring_candidates",
              [{"group_no": i, "patient_id": p} for i, grp in enumerate(groups) for p in sorted(grp)],
              pa.schema([("group_no", pa.int32()), ("patient_id", pa.string())]))
    rows = _arrow_rows(con, SLOTS_SQL)
    con.unregister("_ring_candidates")
    by_group = defaultdict(list)
    for r in rows:
        by_group[r["group_no"]].append(r)
    cores = []
    for no, grp in enumerate(groups):
        pc_days = defaultdict(set)
        for r in by_group.get(no, []):
            if r["at_column_slot"]:
                pc_days[(r["patient_id"], (r["column_type"], r["column_id"]))].add(r["day"])
        weights = {(a, b): d["weight"] for a, b, d in g.subgraph(grp).edges(data=True)}
        weights.update({(p, c): float(len(days)) for (p, c), days in pc_days.items()})
        core = densest_core(weights, set(grp) | {c for _, c in pc_days})
        patients = {p for p in core if isinstance(p, str)}
        columns = {c for c in core if isinstance(c, tuple)}
        inst_days = defaultdict(set)
        for r in by_group.get(no, []):
            if r["patient_id"] in patients:
                inst_days[r["institution_id"]].add(r["day"])
        cores.append({"patients": patients, "columns": columns,
                      "institutions": {i for i, d in inst_days.items() if len(d) >= 2}})
    return cores


def _members(con, cores: list[dict], params: dict) -> tuple[dict, list[dict]]:
    """Which patients belong to each ring: those whose visits to the ring's doctors (or
    institutions) fall on the ring's meeting days far more than chance. Returns
    {ring_no: {patient: test}} and the members' visits on meeting days (the evidence)."""
    _register(con, "_ring_core",
              [{"ring_no": i, "patient_id": p} for i, c in enumerate(cores) for p in sorted(c["patients"])],
              pa.schema([("ring_no", pa.int32()), ("patient_id", pa.string())]))
    _register(con, "_ring_columns",
              [{"ring_no": i, "level": "doctor", "column_id": cid}
               for i, c in enumerate(cores) for _, cid in sorted(c["columns"])]
              + [{"ring_no": i, "level": "institution", "column_id": inst}
                 for i, c in enumerate(cores) for inst in sorted(c["institutions"])],
              pa.schema([("ring_no", pa.int32()), ("level", pa.string()), ("column_id", pa.string())]))
    con.execute(RING_VISITS_SQL, {"min_density": params["min_density"]})
    tests = _arrow_rows(con, MEMBER_TEST_SQL, {"min_covisit_days": params["min_covisit_days"]})
    members = defaultdict(dict)
    for t in tests:
        share = t["k"] / t["n_slots"] if t["n_slots"] else 0.0
        # admit while the expected number of honest candidates passing by chance stays
        # below member_false_members per ring (p <= false_members / candidates)
        threshold = math.log10(max(t["candidates"], 10) / params["member_false_members"])
        if (t["k"] >= params["min_covisit_days"] and t["surprise"] >= threshold
                and share >= params["member_min_share"]):
            best = members[t["ring_no"]].get(t["patient_id"])
            if best is None or t["surprise"] > best["surprise"]:
                members[t["ring_no"]][t["patient_id"]] = t
    _register(con, "_ring_members",
              [{"ring_no": r, "patient_id": p} for r, ps in members.items() for p in sorted(ps)],
              pa.schema([("ring_no", pa.int32()), ("patient_id", pa.string())]))
    evidence = _arrow_rows(con, EVIDENCE_SQL)
    for name in ("_ring_core", "_ring_columns", "_ring_members"):
        con.unregister(name)
    con.execute("DROP TABLE IF EXISTS _ring_visits; DROP TABLE IF EXISTS _ring_slots")
    return members, evidence


def _rings_of(con, g: nx.Graph, groups: list[set], params: dict) -> list[dict]:
    cores = _cores(con, g, groups)
    cores = [c for c in cores if len(c["patients"]) >= params["min_ring_patients"]]
    if not cores:
        return []
    members, evidence = _members(con, cores, params)
    rows_of = defaultdict(list)
    for r in evidence:
        rows_of[r["ring_no"]].append(r)
    all_sids = sorted({r["settlement_id"] for r in evidence})
    _register(con, "_ring_settlements", [{"settlement_id": s} for s in all_sids],
              pa.schema([("settlement_id", pa.string())]))
    high_value = {sid: (float(f or 0), float(h or 0))
                  for sid, f, h in con.execute(HIGH_VALUE_SQL).fetchall()}
    con.unregister("_ring_settlements")
    contacts = _shared_contacts(con, [set(m) for m in members.values()], params)

    rings = []
    for nos in _merged(members):
        patients = sorted(set().union(*(members[n] for n in nos)))
        if len(patients) < params["min_ring_patients"]:
            continue
        sub = g.subgraph(patients).copy()
        sub.add_nodes_from(patients)
        # each member's best membership test (merged seeds: the strongest of them)
        tests = {}
        for n in nos:
            for p, t in members[n].items():
                if p not in tests or t["surprise"] > tests[p]["surprise"]:
                    tests[p] = t
        # density: share of the ring's meetings the average member came to
        density = sum(t["k"] / t["meetings"] for t in tests.values()) / len(tests)
        if density < params["min_density"]:
            continue
        by_sid = {r["settlement_id"]: r for n in nos for r in rows_of.get(n, [])}
        fund = sum(float(r["fund_paid"]) for r in by_sid.values())
        line_fund = sum(high_value.get(s, (0, 0))[0] for s in by_sid)
        hv_fund = sum(high_value.get(s, (0, 0))[1] for s in by_sid)
        high_share = hv_fund / line_fund if line_fund > 0 else 0.0
        link_days = [d for _, _, d in sub.edges(data="weight")]
        mean_days = sum(t["k"] for t in tests.values()) / len(tests)     # meetings per member
        score = (density * _ln1p(len(patients)) * _ln1p(mean_days) * (1 + high_share)
                 * (1 + 0.25 * _log10(1 + fund / 1000)))
        if score < params["min_ring_score"]:
            continue
        # doctors of the ring: those its members met on meeting days, on min_covisit_days
        # days at least and as a group (three members or more)
        met, seen_by = defaultdict(set), defaultdict(set)
        for r in by_sid.values():
            if r["doctor_id"] is not None:
                met[r["doctor_id"]].add(r["day"])
                seen_by[r["doctor_id"]].add(r["patient_id"])
        doctors = sorted(d for d in met
                         if len(met[d]) >= params["min_covisit_days"] and len(seen_by[d]) >= 3)
        by_inst = defaultdict(list)
        for r in by_sid.values():
            by_inst[r["institution_id"]].append(r)
        # an institution is charged when the ring met there on min_covisit_days days
        charged = {i: rs for i, rs in by_inst.items()
                   if len({r["day"] for r in rs}) >= params["min_covisit_days"]}
        if not charged and by_inst:
            main = max(by_inst, key=lambda i: (sum(float(r["fund_paid"]) for r in by_inst[i]), i))
            charged = {main: by_inst[main]}
        intermediaries = sorted(c for c, ps in contacts.items()
                                if len(ps & set(patients)) >= params["intermediary_min_cards"])
        members_list = ([("patient", p) for p in patients] + [("doctor", d) for d in doctors]
                        + [("institution", i) for i in sorted(charged)]
                        + [("intermediary", c) for c in intermediaries])
        pd_days = defaultdict(set)
        for r in by_sid.values():
            if r["doctor_id"] in doctors:
                pd_days[(r["patient_id"], r["doctor_id"])].add(r["day"])
        rings.append({
            "ring_id": ring_id(patients + doctors), "score": round(score, 6),
            "patients": patients, "doctors": doctors, "members": members_list,
            "charged": charged, "density": density, "mean_days": mean_days,
            "pair_density": nx.density(sub),
            "n_days": len({r["day"] for r in by_sid.values()}), "fund": fund,
            "high_share": high_share, "links": len(link_days), "intermediaries": intermediaries,
            "edges": {
                "covisit": [(a, b, d) for a, b, d in sub.edges(data="weight")],
                "patient_doctor": [(p, d, len(days)) for (p, d), days in sorted(pd_days.items())],
                "doctor_institution": sorted({(r["doctor_id"], r["institution_id"])
                                              for r in by_sid.values()
                                              if r["doctor_id"] in doctors and r["institution_id"] in charged}),
                "intermediary": [(c, p) for c in intermediaries
                                 for p in sorted(contacts[c] & set(patients))],
            },
        })
    return _distinct(rings)


def _merged(members: dict) -> list[list[int]]:
    """Seeds whose members mostly coincide are one ring (a ring split by community
    detection grows back whole from each part): union them, transitively."""
    nos = sorted(n for n, m in members.items() if m)
    parent = {n: n for n in nos}

    def root(n):
        while parent[n] != n:
            n = parent[n]
        return n
    for i, a in enumerate(nos):
        for b in nos[i + 1:]:
            ma, mb = set(members[a]), set(members[b])
            if len(ma & mb) >= 0.5 * min(len(ma), len(mb)):
                parent[root(b)] = root(a)
    out = defaultdict(list)
    for n in nos:
        out[root(n)].append(n)
    return sorted(out.values())


def _distinct(rings: list[dict]) -> list[dict]:
    """Two seeds can grow into the same ring: keep the stronger when they share most patients."""
    kept = []
    for r in sorted(rings, key=lambda r: (-r["score"], r["ring_id"])):
        ps = set(r["patients"])
        if all(len(ps & set(k["patients"])) < 0.5 * min(len(ps), len(k["patients"])) for k in kept):
            kept.append(r)
    return sorted(kept, key=lambda r: r["ring_id"])


def _shared_contacts(con, groups: list[set], params: dict) -> dict[str, set]:
    """Non-household phones and addresses (shared by more than household_max cards) that
    reach into the candidate groups: possible intermediaries gathering cards."""
    con.register("_ring_patients", pa.table({"patient_id": pa.array(
        sorted({p for grp in groups for p in grp}), pa.string())}))
    rows = con.execute("""
        WITH contacts AS (
            SELECT patient_id, 'phone:' || phone_hash AS contact FROM insured_persons WHERE phone_hash IS NOT NULL
            UNION ALL
            SELECT patient_id, 'address:' || address_hash FROM insured_persons WHERE address_hash IS NOT NULL
        ),
        ring_contacts AS (
            SELECT * FROM contacts SEMI JOIN _ring_patients USING (patient_id)
        ),
        wide AS (
            SELECT contact FROM contacts SEMI JOIN ring_contacts USING (contact)
            GROUP BY contact HAVING count(DISTINCT patient_id) > $household_max
        )
        SELECT contact, patient_id
        FROM ring_contacts
        SEMI JOIN wide USING (contact)
    """, {"household_max": params["household_max"]}).fetchall()
    con.unregister("_ring_patients")
    out = defaultdict(set)
    for contact, patient in rows:
        out[contact].add(patient)
    return out


def _findings_of(r: dict) -> list[dict]:
    out = []
    for inst, rows in sorted(r["charged"].items()):
        sids = sorted({x["settlement_id"] for x in rows})
        fund = sum(float(x["fund_paid"]) for x in {x["settlement_id"]: x for x in rows}.values())
        days = len({x["day"] for x in rows})
        main_doctor = None
        if r["doctors"]:
            counts = defaultdict(int)
            for x in rows:
                if x["doctor_id"] in r["doctors"]:
                    counts[x["doctor_id"]] += 1
            main_doctor = max(counts, key=lambda d: (counts[d], d)) if counts else None
        evidence = {
            "ring_id": r["ring_id"], "patients": r["patients"], "doctors": r["doctors"],
            "intermediaries": r["intermediaries"], "institutions": sorted(r["charged"]),
            "n_patients": len(r["patients"]), "covisit_links": r["links"],
            "attendance": round(r["density"], 4), "meetings_per_member": round(r["mean_days"], 2),
            "pair_density": round(r["pair_density"], 4),
            "ring_days": r["n_days"], "days_at_institution": days,
            "ring_fund": round(r["fund"], 2), "fund_at_institution": round(fund, 2),
            "high_value_share": round(r["high_share"], 4),
        }
        out.append({
            "finding_key": f"{r['ring_id']}|{inst}", "entity_type": "ring", "entity_id": r["ring_id"],
            "institution_id": inst, "patient_id": None, "doctor_id": main_doctor,
            "settlement_ids": sids, "score": r["score"], "amount_at_risk": round(fund, 2),
            "reason": (f"{len(r['patients'])} patients came together to {len(r['doctors'])} doctor(s) at "
                       f"{inst} on {days} day(s); the average member came to {r['density']:.0%} of the "
                       f"ring's meetings ({r['mean_days']:.1f}), far above chance; {len(sids)} settlements. / "
                       f"{len(r['patients'])}名参保人在{inst}结伴就诊{days}天（医生{len(r['doctors'])}名），"
                       f"成员平均参加团伙{r['density']:.0%}的集中就诊（{r['mean_days']:.1f}次），远高于随机水平；"
                       f"涉及{len(sids)}笔结算。"),
            "evidence": json.dumps(evidence, ensure_ascii=False, default=str),
        })
    return out


def _ln1p(x: float) -> float:
    return math.log1p(max(x, 0.0))


def _log10(x: float) -> float:
    return math.log10(max(x, 1e-12))


COLOURS = {"patient": "#4C78A8", "doctor": "#E45756", "institution": "#54A24B",
           "intermediary": "#F58518"}


MEMBER_LABELS = {"patient": "参保人", "doctor": "医师", "institution": "机构", "intermediary": "中介"}


def draw_ring(r: dict, out: Path) -> Path:
    """One picture per ring: members coloured by type, edge width = shared days."""
    import matplotlib
    matplotlib.use("Agg")
    with fonts.matplotlib_fonts():
        return _draw_ring(r, out)


def _draw_ring(r: dict, out: Path) -> Path:
    import matplotlib.pyplot as plt
    bi = fonts.bilingual
    kind = {m: t for t, m in r["members"]}
    g = nx.Graph()
    for t, m in r["members"]:
        g.add_node(m, kind=t)
    for a, b, w in r["edges"]["covisit"]:
        g.add_edge(a, b, weight=w)
    for a, b, w in r["edges"]["patient_doctor"]:
        g.add_edge(a, b, weight=w)
    for a, b in r["edges"]["doctor_institution"]:
        g.add_edge(a, b, weight=1.0)
    for a, b in r["edges"]["intermediary"]:
        g.add_edge(a, b, weight=1.0)
    pos = nx.spring_layout(g, seed=1, weight="weight")
    fig, ax = plt.subplots(figsize=(8, 7), dpi=110)
    widths = [0.4 + 0.4 * d.get("weight", 1.0) for _, _, d in g.edges(data=True)]
    nx.draw_networkx_edges(g, pos, ax=ax, width=widths, alpha=0.35, edge_color="#555555")
    for t in MEMBER_TYPES:
        nodes = [n for n in g.nodes if kind.get(n) == t]
        if nodes:
            nx.draw_networkx_nodes(g, pos, nodelist=nodes, node_color=COLOURS[t], ax=ax,
                                   node_size=420 if t != "patient" else 220, label=bi(t, MEMBER_LABELS.get(t, "")))
    nx.draw_networkx_labels(g, pos, font_size=5, ax=ax,
                            labels={n: n.split(":")[0] + ":" + n[-6:] if ":" in n else n for n in g.nodes})
    ax.legend(loc="best", fontsize=7, frameon=False)
    n_p, n_d, fund = len(r["patients"]), len(r["doctors"]), f"{r['fund']:,.0f}"
    ax.set_title(f"{bi('Ring', '团伙')} {r['ring_id']}  score {r['score']:.2f}\n"
                 f"{bi(f'{n_p} patients', '参保人')}, {bi(f'{n_d} doctors', '医师')}, "
                 f"{bi(f'fund {fund}', '基金金额')}; {bi('edge width = shared days', '连线粗细=共同就诊天数')}",
                 fontsize=8)
    ax.axis("off")
    fig.tight_layout()
    # tight_layout leaves a placeholder layout engine behind, which makes savefig lay out
    # every label once more in an extra draw pass; the layout is done, drop it
    fig.set_layout_engine(None)
    tmp = out.with_name("." + out.name)
    fig.savefig(tmp, format="png")
    plt.close(fig)
    tmp.replace(out)
    return out
