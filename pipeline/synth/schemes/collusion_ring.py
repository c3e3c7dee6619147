"""结伴就医 collusion rings: recruited patients brought to the same doctor on the same days.

Each ring: 10-20 reserved patients and one doctor (sometimes two, of the same
institution) at a culprit institution; the ring meets on 5-9 days of the run and each
member comes to most meetings (an outpatient visit with honest lines). Members also have
one or two honest visits elsewhere. The first two rings share one institution (different
doctors, different days). Truth: one case per ring (entity_type ring, settlement_ids = the
ring's visits) and its members in ring_members (patients, doctors, the institution).

Honest look-alikes planted beside them (listed in lookalikes.parquet): a busy doctor with
many unrelated regular patients, and a family sharing one phone and address who often
visit the same doctor together.

No other rule is broken: one visit per patient and day, and no drug is given twice to the
same patient (no days-supply overlap).
"""
from __future__ import annotations

import numpy as np

from pipeline.synth.catalog import OP
from pipeline.synth.schemes import SchemeOutput, n_cases
from pipeline.synth.schemes._common import adult_or_elderly, op_visit, pick_inst
from pipeline.synth.world import HOSP, PHARMACY, World

SCHEME_ID = "collusion_ring"


def _room(W: World, day: int) -> bool:
    """Whether the day's extract has settlement numbers to spare for planted claims: rings
    are many claims a day, so at a tiny scale they take at most half the numbers the
    world reserves for hand-made settlements (World.reserve_num)."""
    capacity = max(10, int(W.daily_target[min(max(day - W.start, 0), W.days - 1)] * 0.9))
    return len(W.reserved_nums.get(day, ())) < capacity // 2


def _visit(W: World, rng, out: SchemeOutput, p: int, inst: int, doctor: int, day: int,
           used: dict):
    """One honest outpatient visit; drugs the patient already had are not given again.
    None when the day has no room left (tiny scales)."""
    if not _room(W, day):
        return None
    dx, lines = op_visit(W, rng, p, inst, day, exclude=used.setdefault(p, set()))
    used[p].update(l.item for l in lines if W.item_is_drug[l.item])
    return out.add(W.settlement(rng, p, inst, OP, day, lines, dx=dx, doctor=doctor))


def _institutions_with_doctors(W: World, rng, k: int) -> list[int]:
    """Culprit outpatient institutions with at least two doctors (any such when none)."""
    pool = [i for i in W.culprit_h if W.doc_count[i] >= 2 and W.inst_kind[i] != PHARMACY]
    if not pool:
        pool = [int(i) for i in np.flatnonzero((W.doc_count >= 2) & (W.inst_kind != PHARMACY))]
    return [int(pool[int(rng.integers(0, len(pool)))]) for _ in range(k)]


def plant(W: World, days, rng, scale) -> SchemeOutput:
    out = SchemeOutput()
    if W.days < 8:          # a ring shows as repetition: a run this short cannot hold one
        return out
    run_days = np.arange(W.start, W.end + 1)
    used: dict[int, set] = {}
    n_rings = n_cases(scale)
    insts = _institutions_with_doctors(W, rng, n_rings)
    insts[1] = insts[0]                               # two rings at one institution
    taken_docs: dict[int, set] = {}
    for k in range(n_rings):
        size = int(rng.integers(10, 21))
        if len(W._reserved_pool) < size + 20:
            break
        inst = insts[k]
        docs_here = list(range(int(W.doc_start[inst]), int(W.doc_start[inst] + W.doc_count[inst])))
        free = [d for d in docs_here if d not in taken_docs.get(inst, set())] or docs_here
        n_doc = 2 if (rng.random() < 0.3 and len(free) >= 2) else 1
        doctors = [int(d) for d in rng.choice(free, n_doc, replace=False)]
        taken_docs.setdefault(inst, set()).update(doctors)
        patients = W.take_patients(size, ag=adult_or_elderly(rng))
        meetings = sorted(int(d) for d in rng.choice(run_days, int(min(len(run_days), rng.integers(5, 10))),
                                                     replace=False))
        attend = 0.75 + 0.2 * rng.random()
        evidence = []
        for p in patients:
            came = [d for d in meetings if rng.random() < attend]
            if len(came) < 3:                         # a member comes repeatedly, by definition
                came = sorted(int(d) for d in rng.choice(meetings, 3, replace=False))
            for day in came:
                s = _visit(W, rng, out, p, inst, doctors[int(rng.integers(0, n_doc))], day, used)
                if s is not None:
                    evidence.append(s)
            # a life outside the ring: one or two honest visits elsewhere
            for day in rng.choice([d for d in run_days if d not in came], int(rng.integers(1, 3)), replace=False):
                other = pick_inst(W, rng, OP, 0.0)
                _visit(W, rng, out, p, other, int(W.pick_doctors(np.array([other]), rng, 0.0)[0]),
                       int(day), used)
        if not evidence:
            continue
        rid = f"{SCHEME_ID}-ring-{k + 1:03d}"
        case = out.case(SCHEME_ID, "ring", rid, evidence, institution_id=W.inst_id_list[inst],
                        doctor_id=W.doc_id_list[doctors[0]])
        case["patient_id"] = None
        out.ring_members.extend(
            [{"ring_id": rid, "member_type": "patient", "member_id": W.pid(p)} for p in patients]
            + [{"ring_id": rid, "member_type": "doctor", "member_id": W.doc_id_list[d]} for d in doctors]
            + [{"ring_id": rid, "member_type": "institution", "member_id": W.inst_id_list[inst]}])
    _busy_doctor(W, rng, out, run_days, used, scale)
    _family(W, rng, out, run_days, used)
    return out


def _busy_doctor(W: World, rng, out: SchemeOutput, run_days, used, scale) -> None:
    """Look-alike: one doctor of a big hospital with many unrelated regular patients."""
    n = min(max(30, round(60 * scale ** 0.5)), len(W._reserved_pool) - 10)
    hosp = np.flatnonzero((W.inst_kind == HOSP) & (W.inst_level == 3))
    if n < 20 or not len(hosp):
        return
    inst = int(hosp[int(rng.integers(0, len(hosp)))])
    doctor = int(W.doc_start[inst] + rng.integers(0, W.doc_count[inst]))
    for p in W.take_patients(n, ag=adult_or_elderly(rng)):
        days = rng.choice(run_days, int(rng.integers(2, 6)), replace=False)
        sids = [s.id for d in sorted(days) if (s := _visit(W, rng, out, p, inst, doctor, int(d), used))]
        out.lookalikes.append({
            "kind": "busy_doctor_regulars",
            "description": f"one of many unrelated regular patients of busy doctor {W.doc_id_list[doctor]}",
            "patient_id": W.pid(p), "institution_id": W.inst_id_list[inst], "settlement_ids": sids})


def _family(W: World, rng, out: SchemeOutput, run_days, used) -> None:
    """Look-alike: a family of four or five sharing one phone and address, often seen
    together by the same doctor."""
    size = int(rng.integers(4, 6))
    if len(W._reserved_pool) < size + 5:
        return
    members = W.take_patients(size)
    # one new household of exactly these members: same address, same phone
    household = int(W.household.max()) + 1
    W.household[members] = household
    W.phone_key[members] = np.uint64(2 * 10 ** 9 + household)
    W.phone_null[members] = False
    W.addr_null[members] = False
    inst = pick_inst(W, rng, OP, 0.0)
    doctor = int(W.pick_doctors(np.array([inst]), rng, 0.0)[0])
    together = rng.choice(run_days, int(min(len(run_days), rng.integers(5, 9))), replace=False)
    sids = {p: [] for p in members}
    for d in sorted(together):
        for p in members:
            if rng.random() < 0.8 and (s := _visit(W, rng, out, p, inst, doctor, int(d), used)):
                sids[p].append(s.id)
    for p in members:
        out.lookalikes.append({
            "kind": "family_visits_together",
            "description": "family sharing one phone and address, often visiting the same doctor together: "
                           + ", ".join(W.pid(m) for m in members),
            "patient_id": W.pid(p), "institution_id": W.inst_id_list[inst], "settlement_ids": sids[p]})
