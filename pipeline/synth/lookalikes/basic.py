"""The first look-alikes: readmission with an unrelated diagnosis, transfer with the same
diagnosis, two departments the same day, households sharing a phone, and those watched in
the background (claims before death, chronic refills, prices at the cap, reversals)."""
from __future__ import annotations

import numpy as np

from pipeline.synth.catalog import IP, OP
from pipeline.synth.schemes import SchemeOutput
from pipeline.synth.schemes._common import adult_or_elderly, day_in, pick_dx, pick_inst
from pipeline.synth.world import HOSP, Line, World


def _la(kind, description, patient_id=None, institution_id=None, settlement_ids=()):
    return {"kind": kind, "description": description, "patient_id": patient_id,
            "institution_id": institution_id, "settlement_ids": list(settlement_ids)}


def plant(W: World, rng, scale: float) -> tuple[SchemeOutput, list[dict]]:
    out = SchemeOutput()
    rows: list[dict] = []
    n = max(2, round(2 * scale ** 0.5))
    hospitals = np.flatnonzero(W.inst_kind == HOSP)
    for _ in range(n if W.days >= 6 else 0):
        # readmission to the same institution with an unrelated diagnosis
        p = W.take_patients(1, ag=adult_or_elderly(rng))[0]
        inst = pick_inst(W, rng, IP, 0.5)
        dx1 = pick_dx(W, rng, IP, p)
        dx2 = dx1
        while W.dx_codes[dx2][0] == W.dx_codes[dx1][0]:
            dx2 = pick_dx(W, rng, IP, p)
        los1, gap, los2 = int(rng.integers(2, 5)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
        d1 = day_in(W, rng, 0, gap + los2)
        a2 = d1 + gap
        s1 = out.add(W.settlement(rng, p, inst, IP, d1, W.stay_lines(rng, p, inst, dx1, d1 - los1, d1),
                                  dx=dx1, admit=d1 - los1, discharge=d1))
        s2 = out.add(W.settlement(rng, p, inst, IP, a2 + los2, W.stay_lines(rng, p, inst, dx2, a2, a2 + los2),
                                  dx=dx2, admit=a2, discharge=a2 + los2))
        rows.append(_la("readmission_unrelated_dx",
                        f"readmitted {gap} day(s) after discharge to the same institution with an "
                        f"unrelated diagnosis ({W.dx_codes[dx1]} then {W.dx_codes[dx2]})",
                        W.pid(p), W.inst_id_list[inst], [s1.id, s2.id]))
        # transfer: same diagnosis, a different institution
        p = W.take_patients(1, ag=adult_or_elderly(rng))[0]
        inst = pick_inst(W, rng, IP, 0.5)
        inst2 = int(hospitals[int(rng.integers(0, len(hospitals)))])
        while inst2 == inst and len(hospitals) > 1:
            inst2 = int(hospitals[int(rng.integers(0, len(hospitals)))])
        dx = pick_dx(W, rng, IP, p)
        los1, gap, los2 = int(rng.integers(2, 5)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
        d1 = day_in(W, rng, 0, gap + los2)
        a2 = d1 + gap
        s1 = out.add(W.settlement(rng, p, inst, IP, d1, W.stay_lines(rng, p, inst, dx, d1 - los1, d1),
                                  dx=dx, admit=d1 - los1, discharge=d1))
        s2 = out.add(W.settlement(rng, p, inst2, IP, a2 + los2, W.stay_lines(rng, p, inst2, dx, a2, a2 + los2),
                                  dx=dx, admit=a2, discharge=a2 + los2))
        rows.append(_la("transfer_same_dx",
                        f"admitted {gap} day(s) after discharge with the same diagnosis {W.dx_codes[dx]} "
                        f"but at a different institution ({W.inst_id_list[inst]} -> {W.inst_id_list[inst2]})",
                        W.pid(p), W.inst_id_list[inst2], [s1.id, s2.id]))
    for _ in range(n):
        # two visits the same day to different departments of one institution, different items
        p = W.take_patients(1, ag=adult_or_elderly(rng))[0]
        inst = pick_inst(W, rng, OP, 0.5)
        day = day_in(W, rng)
        dx1 = pick_dx(W, rng, OP, p)
        dx2 = dx1
        for _ in range(50):
            dx2 = pick_dx(W, rng, OP, p)
            if W.dx[dx2].dept != W.dx[dx1].dept:
                break
        l1 = W.honest_lines(rng, p, inst, OP, dx1, day, int(rng.integers(2, 5)))
        used = {l.item for l in l1}
        l2 = W.honest_lines(rng, p, inst, OP, dx2, day, int(rng.integers(2, 5)), exclude=used)
        if l2[0].item in used:   # the consultation must differ too
            l2[0] = Line(next(int(c) for c in W.consult_items if int(c) not in used), day, 1000)
        l2 = [l for l in l2 if not W._bundle_clash(l.item, used)]
        s1 = out.add(W.settlement(rng, p, inst, OP, day, l1, dx=dx1))
        s2 = out.add(W.settlement(rng, p, inst, OP, day, l2, dx=dx2))
        rows.append(_la("two_departments_same_day",
                        f"two outpatient visits the same day ({W.dx[dx1].dept} and {W.dx[dx2].dept}), "
                        f"different items", W.pid(p), W.inst_id_list[inst], [s1.id, s2.id]))
    # households sharing one phone and address
    hh_sizes = np.bincount(W.household)
    shared = np.flatnonzero(W.shared_phone_hh[:len(hh_sizes)] & (hh_sizes >= 3))[:n]
    for h in shared:
        members = np.flatnonzero(W.household == h)
        members = members[~W.phone_null[members]]
        rows.append(_la("shared_phone_household",
                        "family members sharing one registered phone and address: "
                        + ", ".join(W.pid(m) for m in members),
                        W.pid(members[0]) if len(members) else None, None, []))
    return out, rows


def from_watch(W: World, watched: dict) -> list[dict]:
    """Look-alikes found in the background while it was generated."""
    rows = []
    bd: dict[int, list[str]] = {}
    for p, sid in watched.get("before_death", []):
        bd.setdefault(p, []).append(sid)
    from pipeline.synth import arrowutil as au
    for p, sids in sorted(bd.items()):
        rows.append(_la("claims_before_death",
                        f"claims dated before the patient's death on {au.day_to_str(int(W.death[p]))}",
                        W.pid(p), None, sids))
    cr: dict[int, list[str]] = {}
    for p, sid in watched.get("chronic_refill", []):
        cr.setdefault(p, []).append(sid)
    for p, sids in sorted(cr.items()):
        if len(sids) >= 2:
            rows.append(_la("chronic_refill",
                            f"chronic patient ({W.dx_codes[W.chronic_dx[p]]}) buying "
                            f"{W.items[W.chronic_drug[p]].name} every {W.chronic_period[p]} days "
                            f"with {W.chronic_period[p]} days supplied",
                            W.pid(p), W.inst_id_list[W.usual_pharmacy[p]], sids))
    for p, sid, inst in watched.get("price_at_cap", []):
        rows.append(_la("price_at_cap", "unit price exactly at the price cap of the institution's level",
                        W.pid(p), W.inst_id_list[inst], [sid]))
    for p, orig, rev, inst in watched.get("reversal", [])[:5]:
        rows.append(_la("reversal", f"settlement {orig} reversed (refunded) by {rev}; neither should be "
                        "screened", p, inst, [orig, rev]))
    return rows
