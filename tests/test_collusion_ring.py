"""Collusion rings on planted data: a ring is found with its members; a busy honest
doctor, a family sharing a phone are not rings; two rings at one institution stay two."""
from __future__ import annotations

import random
from datetime import date, timedelta

import duckdb
import pytest

from pipeline import builder, ingest, registry, screen, validate
from pipeline.settings import load_settings

START = date(2026, 9, 1)
MONTH = [START + timedelta(days=i) for i in range(30)]
SETTLE = "2026-10-01"          # every claim of the month settled in one extract: one ingest


def person(pid: str, phone: str | None = None, address: str | None = None, i: int = 0) -> dict:
    return {"patient_id": pid, "sex": "MF"[i % 2], "birth_date": date(1950 + i % 50, 1 + i % 12, 1),
            "home_region": "440106", "insurance_type": "resident",
            "phone_hash": phone or f"ph-{pid}", "address_hash": address or f"ad-{pid}",
            "enrolled_date": date(2010, 1, 1)}


class World:
    def __init__(self):
        self.settlements, self.items, self.persons, self.doctors = [], [], [], []
        self.n = 0

    def visit(self, patient, inst, doctor, day, item="CON01", price=30, dx="J06", dx2=None):
        self.n += 1
        sid = f"S{self.n:07d}"
        self.settlements.append({"settlement_id": sid, "patient_id": patient, "institution_id": inst,
                                 "doctor_id": doctor, "admit_date": day, "settle_date": SETTLE,
                                 "primary_dx": dx, "secondary_dx": dx2})
        self.items.append({"settlement_id": sid, "item_code": item, "service_date": day,
                           "unit_price": price, "quantity": 1})

    def people(self, prefix, n, **kw):
        ids = [f"{prefix}{i:03d}" for i in range(n)]
        self.persons.extend(person(p, i=i, **kw) for i, p in enumerate(ids))
        return ids

    def doctor(self, did, inst):
        self.doctors.append({"doctor_id": did, "institution_id": inst, "specialty": "general",
                             "licensed_from": date(2005, 1, 1)})
        return did

    def ring(self, patients, inst, doctors, rng, n_days=9, attend=0.85):
        """Recruited patients brought to the same doctor(s) on the same days."""
        days = sorted(rng.sample(MONTH, n_days))
        for day in days:
            for p in patients:
                if rng.random() < attend:
                    self.visit(p, inst, rng.choice(doctors), day, item="DRG02", price=180)
        return days

    def background(self, patients, inst, doctors, rng, visits=(1, 5)):
        """Honest patients: each comes on a few days of their own choosing."""
        for p in patients:
            for day in rng.sample(MONTH, rng.randint(*visits)):
                self.visit(p, inst, rng.choice(doctors), day)


def screen_world(tmp_path, w: World):
    builder.write_extracts(tmp_path / "landing", w.settlements, w.items,
                           reference={"insured_persons": w.persons, "practitioners": w.doctors})
    st = load_settings(data_dir=tmp_path / "data")
    for r in ingest.ingest(st, tmp_path / "landing"):
        validate.promote(st, r.extract_date)   # detector tests skip the gate: tests/test_validation.py covers it
    return screen.screen(st, SETTLE)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    rng = random.Random(20261001)
    w = World()
    # 1. a ring: one doctor and 15 recruited patients at a small clinic, plus honest patients
    d_ring = w.doctor("D100000000001", "H00000000001")
    ring = w.people("RING", 15)
    w.ring(ring, "H00000000001", [d_ring], rng)
    w.background(w.people("CLIN", 40), "H00000000001", [d_ring, "D000000000004"], rng)
    # 2. a busy honest doctor: 150 unrelated regulars, ~20 a day
    d_busy = w.doctor("D100000000002", "H00000000003")
    w.background(w.people("BUSY", 150), "H00000000003", [d_busy], rng, visits=(2, 6))
    # 3. a family of five sharing a phone and an address, often visiting together
    family = w.people("FAM", 5, phone="ph-family", address="ad-family")
    for day in rng.sample(MONTH, 8):
        for p in family:
            w.visit(p, "H00000000002", "D000000000003", day)
    w.background(w.people("DIST", 30), "H00000000002", ["D000000000003"], rng)
    # 3b. a rehabilitation group: 12 patients every Monday and Thursday with one doctor
    d_dial = w.doctor("D100000000006", "H00000000002")
    for p in w.people("DIAL", 12):
        for day in MONTH:
            if day.isoweekday() in (1, 4) and rng.random() < 0.95:
                w.visit(p, "H00000000002", d_dial, day, item="LAB01", price=25)
    w.background(w.people("NEPH", 30), "H00000000002", [d_dial], rng)
    # 3c. scheduled care, each imperfect: a dialysis shift on Mon/Thu (newcomers, missed
    # sessions, a session made up the next day, two doctors taking turns), a chemotherapy
    # chair on Fridays (days 1 and 2 every 14 days, in two phases), a daily rehabilitation
    # course on workdays starting together, a care home (20 residents at one address, a
    # doctor's Tuesday round seeing about half of them each time, now and then a sick call)
    d_neph = [w.doctor(d, "H00000000005") for d in ("D100000000007", "D100000000008")]
    for i, p in enumerate(w.people("HDLY", 14)):
        first = MONTH[rng.randint(5, 14)] if i % 4 == 0 else MONTH[0]
        for day in MONTH:
            if day >= first and day.isoweekday() in (1, 4):
                if rng.random() < 0.9:
                    w.visit(p, "H00000000005", rng.choice(d_neph), day, item="TRHD1", price=420, dx="N18.5")
                elif rng.random() < 0.5 and day + timedelta(days=1) <= MONTH[-1]:
                    w.visit(p, "H00000000005", rng.choice(d_neph), day + timedelta(days=1),
                            item="TRHD1", price=420, dx="N18.5")
    d_onc = w.doctor("D100000000009", "H00000000005")
    fridays = [d for d in MONTH if d.isoweekday() == 5]
    for i, p in enumerate(w.people("CHEM", 12)):
        for day in fridays[i % 2::2]:
            for d in (day, day + timedelta(days=1)):
                if d <= MONTH[-1]:
                    if rng.random() < 0.5:       # coded as a chemotherapy session, the cancer beside
                        w.visit(p, "H00000000005", d_onc, d, item="XDPEM1", price=890, dx="Z51.1", dx2=["C34.9"])
                    else:
                        w.visit(p, "H00000000005", d_onc, d, item="XDPEM1", price=890, dx="C34.9")
    d_rehab = w.doctor("D100000000010", "H00000000005")
    start = MONTH[rng.randint(0, 7)]
    for p in w.people("RHAB", 10):
        sessions = [d for d in MONTH if d >= start and d.isoweekday() <= 5][:rng.randint(10, 15)]
        for day in sessions:
            if rng.random() < 0.85:
                w.visit(p, "H00000000005", d_rehab, day, item="TRPHY1", price=30, dx="I63.9")
    d_round = w.doctor("D100000000011", "H00000000006")
    chronic = ["I10", "E11.9", "I50.9", "J44.9"]
    for i, p in enumerate(w.people("HOME", 20, address="ad-care-home")):
        for day in MONTH:
            if day.isoweekday() == 2 and rng.random() < 0.5:
                w.visit(p, "H00000000006", d_round, day, dx=chronic[i % 4])
        if rng.random() < 0.3:
            w.visit(p, "H00000000006", "D000000000006", rng.choice(MONTH), dx=chronic[i % 4])
    w.background(w.people("NBHD", 40), "H00000000006", [d_round, "D000000000006"], rng)
    w.background(w.people("OUTP", 40), "H00000000005", d_neph + [d_onc, d_rehab], rng)
    # 4. two rings at one institution, each with its own doctors and days
    d_a, d_b1, d_b2 = (w.doctor(d, "H00000000004") for d in
                       ("D100000000003", "D100000000004", "D100000000005"))
    ring_a = w.people("RNGA", 4) + w.people("RNGX", 8, phone="ph-broker")   # 8 cards on one phone
    ring_b = w.people("RNGB", 10)
    w.ring(ring_a, "H00000000004", [d_a], rng)
    w.ring(ring_b, "H00000000004", [d_b1, d_b2], rng)       # a ring with two doctors
    w.background(w.people("RIVR", 60), "H00000000004", [d_a, d_b1, d_b2, "D000000000005"], rng)
    tmp = tmp_path_factory.mktemp("rings")
    out = screen_world(tmp, w)
    con = duckdb.connect()
    rings = con.sql(f"SELECT * FROM read_parquet('{out}/rings.parquet')").to_arrow_table().to_pylist()
    findings = con.sql(f"SELECT * FROM read_parquet('{out}/findings.parquet') "
                           f"WHERE detector_id = 'collusion_ring'").to_arrow_table().to_pylist()
    members = {}
    for r in rings:
        members.setdefault(r["ring_id"], {}).setdefault(r["member_type"], set()).add(r["member_id"])
    return {"out": out, "rings": members, "findings": findings, "ring": set(ring),
            "ring_a": set(ring_a), "ring_b": set(ring_b), "d_ring": d_ring,
            "doctors_ab": (d_a, {d_b1, d_b2})}


def _ring_with(planted, patients):
    hits = [m for m in planted["rings"].values() if m.get("patient", set()) & patients]
    return hits


def test_header_parses():
    det = registry.get("collusion_ring")
    assert det.kind == "py" and det.entity_type == "ring" and det.family == "graph"


def test_collusion_ring_of_one_doctor_and_15_patients_is_one_ring(planted):
    hits = _ring_with(planted, planted["ring"])
    assert len(hits) == 1
    assert hits[0]["patient"] == planted["ring"]
    assert hits[0]["doctor"] == {planted["d_ring"]}
    assert hits[0]["institution"] == {"H00000000001"}


def test_collusion_ring_busy_honest_doctor_is_not_a_ring(planted):
    assert not [m for m in planted["rings"].values()
                if any(p.startswith("BUSY") for p in m.get("patient", ()))]


def test_group_on_fixed_weekdays_is_not_a_ring(planted):
    assert not [m for m in planted["rings"].values()
                if any(p.startswith("DIAL") for p in m.get("patient", ()))]


@pytest.mark.parametrize("prefix", ["HDLY", "CHEM", "RHAB", "HOME"])
def test_scheduled_care_and_a_care_home_are_not_rings(planted, prefix):
    assert not [m for m in planted["rings"].values()
                if any(p.startswith(prefix) for p in m.get("patient", ()))]


def test_weekly_calendar_is_told_from_a_rings_own_days():
    mod, _ = _load_detector()
    mon_thu = [d for d in MONTH if d.isoweekday() in (1, 4)]
    assert mod.on_a_calendar(mon_thu[1:3] + mon_thu[4:], 3, 0.7)                # a session missed
    assert mod.on_a_calendar([date(2026, 9, 4) + timedelta(days=14 * k) for k in range(3)], 3, 0.7)  # q14
    assert mod.on_a_calendar([d for d in MONTH[3:19] if d.isoweekday() <= 5], 3, 0.7)  # a course
    rng = random.Random(3)
    rings = [sorted(rng.sample(MONTH, rng.randint(5, 9))) for _ in range(1000)]
    assert sum(mod.on_a_calendar(r, 3, 0.7) for r in rings) <= 60    # a ring's own days: ~4 %


def test_family_sharing_a_phone_is_not_a_ring(planted):
    assert not [m for m in planted["rings"].values()
                if any(p.startswith("FAM") for p in m.get("patient", ()))]


def test_two_rings_at_one_institution_are_two_rings(planted):
    a = _ring_with(planted, planted["ring_a"])
    b = _ring_with(planted, planted["ring_b"])
    assert len(a) == 1 and len(b) == 1 and a[0] is not b[0]
    assert a[0]["patient"] == planted["ring_a"] and b[0]["patient"] == planted["ring_b"]
    d_a, d_b = planted["doctors_ab"]
    assert a[0]["doctor"] == {d_a} and b[0]["doctor"] == d_b


def test_phone_binding_ring_cards_is_an_intermediary(planted):
    a = _ring_with(planted, planted["ring_a"])[0]
    assert a.get("intermediary") == {"phone:ph-broker"}
    assert all("intermediary" not in m for m in planted["rings"].values() if m is not a)


def test_no_other_rings_and_findings_carry_evidence(planted):
    assert len(planted["rings"]) == 3
    by_ring = {}
    for f in planted["findings"]:
        assert f["entity_type"] == "ring" and f["entity_id"] in planted["rings"]
        assert f["institution_id"] in planted["rings"][f["entity_id"]]["institution"]
        assert f["settlement_ids"] and f["amount_at_risk"] > 0
        by_ring.setdefault(f["entity_id"], []).append(f)
    assert set(by_ring) == set(planted["rings"])


def test_pictures_published_beside_the_run(planted):
    pictures = sorted((planted["out"] / "rings").glob("*.png"))
    assert {p.stem for p in pictures} == set(planted["rings"])
    assert all(p.stat().st_size > 5000 for p in pictures)


def _load_detector():
    import importlib.util
    det = registry.get("collusion_ring")
    spec = importlib.util.spec_from_file_location("collusion_ring_mod", det.path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod, det.defaults()


@pytest.mark.parametrize("leiden_min_edges", [10 ** 9, 0])      # networkx Louvain, igraph Leiden
def test_two_cliques_joined_by_a_bridge_split_into_two_groups(leiden_min_edges):
    import networkx as nx
    mod, params = _load_detector()
    params.update(leiden_min_edges=leiden_min_edges, split_min_nodes=10)
    g = nx.Graph()
    a = [f"A{i:02d}" for i in range(12)]
    b = [f"B{i:02d}" for i in range(12)]
    for grp in (a, b):
        g.add_weighted_edges_from((x, y, 6.0) for i, x in enumerate(grp) for y in grp[i + 1:])
    g.add_edge("A00", "B00", weight=3.0)
    groups = mod.candidate_groups(g, params)
    assert sorted(map(sorted, groups)) == [a, b]
    assert mod.candidate_groups(g, params) == groups        # stable on a rerun


def test_peeling_keeps_the_dense_block_and_drops_the_fringe():
    mod, _ = _load_detector()
    block = [f"P{i}" for i in range(8)]
    weights = {(x, y): 5.0 for i, x in enumerate(block) for y in block[i + 1:]}
    weights.update({("P0", "F1"): 1.0, ("F1", "F2"): 1.0, ("P3", "F3"): 2.0})
    assert mod.densest_core(weights, set(block) | {"F1", "F2", "F3"}) == set(block)


def test_ring_id_is_stable_for_the_same_members():
    mod, _ = _load_detector()
    assert mod.ring_id(["P2", "P1", "D1"]) == mod.ring_id(["D1", "P1", "P2"])
    assert mod.ring_id(["P2", "P1", "D1"]) != mod.ring_id(["P2", "P1", "D2"])


@pytest.fixture(scope="module")
def generated_month(tmp_path_factory):
    from pipeline.synth import generate
    root = tmp_path_factory.mktemp("ring_month")
    generate(root, days=30, scale=0.3, seed=5, start="2026-09-01")
    st = load_settings(data_dir=root / "data")
    for r in ingest.ingest(st, root / "landing"):
        validate.promote(st, r.extract_date)   # detector tests skip the gate: tests/test_validation.py covers it
    out = screen.screen(st, "2026-09-30", render=False)
    con = duckdb.connect()

    def groups(path, where=""):
        g = {}
        for rid, m in con.sql(f"SELECT ring_id, member_id FROM read_parquet('{path}') "
                              f"WHERE member_type = 'patient' {where}").fetchall():
            g.setdefault(rid, set()).add(m)
        return g
    planted = groups(root / "truth" / "ring_members.parquet")
    published = groups(out / "rings.parquet")
    lookalike = {p for k, p in con.sql(f"SELECT kind, patient_id FROM read_parquet("
                                       f"'{root}/truth/lookalikes.parquet')").fetchall()
                 if k in ("busy_doctor_regulars", "family_visits_together", "dialysis_cohort",
                          "chemotherapy_cohort", "rehabilitation_group", "care_home_rounds")}
    return planted, published, lookalike


def test_generated_month_every_planted_ring_is_found(generated_month):
    planted, published, _ = generated_month
    assert planted, "the generator planted no ring"

    def jaccard(a, b):
        return len(a & b) / len(a | b)
    best = {rid: max((jaccard(m, p) for p in published.values()), default=0.0)
            for rid, m in planted.items()}
    assert all(j >= 0.7 for j in best.values()), best
    matching = sum(1 for p in published.values() if any(jaccard(m, p) >= 0.7 for m in planted.values()))
    print(f"planted {len(planted)}, published {len(published)}, matching {matching}")
    assert len(published) <= 2 * len(planted)


def test_generated_month_lookalikes_are_not_rings(generated_month):
    _, published, lookalike = generated_month
    assert lookalike
    assert not [p for p in published.values() if len(p & lookalike) >= 0.5 * len(p)]


def test_runs_on_a_lake_without_rings(tmp_path):
    w = World()
    w.visit("P001", "H00000000001", "D000000000004", MONTH[0])
    w.visit("P002", "P00000000001", None, MONTH[1])
    out = screen_world(tmp_path, w)
    con = duckdb.connect()
    assert con.sql(f"SELECT count(*) FROM read_parquet('{out}/rings.parquet')").fetchall() == [(0,)]
    assert con.sql(f"SELECT count(*) FROM read_parquet('{out}/findings.parquet') "
                   f"WHERE detector_id = 'collusion_ring'").fetchall() == [(0,)]
    assert not (out / "rings").exists() or not any((out / "rings").iterdir())
