"""冒名就医 card lending and impersonation: someone else uses an insured person's card.
Three patterns: (a) outpatient visits and pharmacy purchases at other institutions while
the card holder is an inpatient; (b) the card used on the same day in two different
cities; (c) an agent holding several cards (registered to the agent's phone) uses them
together at one colluding clinic on the same days.

Truth: one case per card (patient) with the settlements that betray the misuse; the
institution is named only where it colludes (c): elsewhere it merely served the
impostor. Pattern (a) also breaks the visit_during_stay rule: each such visit is recorded
as a case of that scheme too.

Honest look-alikes: a same-day transfer between two hospitals (discharge and admission on
one day); a household sharing a phone visiting a clinic together once."""
from __future__ import annotations

import numpy as np

from pipeline.synth.catalog import IP, OP, PH
from pipeline.synth.schemes import SchemeOutput, n_cases
from pipeline.synth.schemes._common import adult_or_elderly, day_in, pick_dx
from pipeline.synth.world import CLINIC, HOSP, PHARMACY

SCHEME_ID = "card_misuse"
_PHONE_BASE = 8 * 10 ** 9


def _visit(W, rng, out, p, inst, day, vt=OP):
    # a drug once per card: repeated visits must not stack supplies (that is another rule)
    given = W.__dict__.setdefault("_card_misuse_drugs_given", {}).setdefault(p, set())
    dx = pick_dx(W, rng, OP, p)
    lines = W.honest_lines(rng, p, inst, vt, dx, day, int(rng.integers(2, 4)), exclude=given)
    given.update(l.item for l in lines if W.items[l.item].category == "drug")
    return out.add(W.settlement(rng, p, inst, vt, day, lines, dx=dx))


def _no_institution(out):
    out.cases[-1]["institution_id"] = out.cases[-1]["doctor_id"] = None


def _stay(W, rng, out, p, inst, admit, los):
    dx = pick_dx(W, rng, IP, p)
    return out.add(W.settlement(rng, p, inst, IP, admit + los, W.stay_lines(rng, p, inst, dx, admit, admit + los),
                                dx=dx, admit=admit, discharge=admit + los))


def _lookalikes(W, rng, out, hosp, outp):
    # a same-day transfer: discharged from one hospital, admitted to another that day
    p = W.take_patients(1, ag=adult_or_elderly(rng))[0]
    a, b = [int(x) for x in rng.choice(hosp, 2, replace=False)]
    d0 = day_in(W, rng, 0, 12)
    s1 = _stay(W, rng, out, p, a, d0, 4)
    s2 = _stay(W, rng, out, p, b, d0 + 4, int(rng.integers(3, 7)))
    out.lookalikes.append({"kind": "same_day_transfer",
                           "description": "discharged and admitted to another hospital on the same day",
                           "patient_id": W.pid(p), "institution_id": W.inst_id_list[b],
                           "settlement_ids": [s1.id, s2.id]})
    # a household sharing one phone visits a clinic together once
    fam = W.take_patients(3)
    for q in fam:
        W.phone_key[q] = _PHONE_BASE + 900 + int(fam[0] % 97)
        W.phone_null[q] = False
        W.household[q] = W.household[fam[0]]
        W.addr_null[q] = False
    clinic = int(outp[int(rng.integers(0, len(outp)))])
    d = day_in(W, rng)
    ids = [_visit(W, rng, out, q, clinic, d).id for q in fam]
    out.lookalikes.append({"kind": "household_visit_together",
                           "description": "three members of a household sharing a phone seen at one clinic the same day",
                           "patient_id": W.pid(fam[0]), "institution_id": W.inst_id_list[clinic],
                           "settlement_ids": ids})


def plant(W, days, rng, scale) -> SchemeOutput:
    out = SchemeOutput()
    if days < 10:
        return out
    n = n_cases(scale)
    hosp = np.flatnonzero(W.inst_kind == HOSP)
    outp = np.flatnonzero(np.isin(W.inst_kind, [HOSP, CLINIC]))
    pharm = np.flatnonzero(W.inst_kind == PHARMACY)
    _lookalikes(W, rng, out, hosp, outp)
    # (a) used elsewhere while the holder is an inpatient
    for _ in range(n):
        p = W.take_patients(1, ag=adult_or_elderly(rng))[0]
        inst = int(hosp[int(rng.integers(0, len(hosp)))])
        los = int(rng.integers(5, 10))
        admit = day_in(W, rng, 0, los)
        stay = _stay(W, rng, out, p, inst, admit, los)
        fakes = []
        for d in sorted({int(x) for x in rng.integers(admit + 1, admit + los, int(rng.integers(1, 4)))}):
            if rng.random() < 0.5:
                fakes.append(_visit(W, rng, out, p, int(pharm[int(rng.integers(0, len(pharm)))]), d, PH))
            else:
                other = int(outp[int(rng.integers(0, len(outp)))])
                while other == inst:
                    other = int(outp[int(rng.integers(0, len(outp)))])
                fakes.append(_visit(W, rng, out, p, other, d))
            out.case("visit_during_stay", "settlement", fakes[-1].id, [stay, fakes[-1]])
        out.case(SCHEME_ID, "patient", W.pid(p), fakes + [stay], institution_id="", doctor_id="")
        _no_institution(out)
    # (b) same day, two cities
    for _ in range(n):
        p = W.take_patients(1, ag=adult_or_elderly(rng))[0]
        home_city = int(W.p_city[p])
        near = np.flatnonzero((W.inst_city == home_city) & np.isin(W.inst_kind, [HOSP, CLINIC]))
        far = np.flatnonzero(W.inst_city != home_city)
        evidence = []
        for d in sorted({day_in(W, rng) for _ in range(int(rng.integers(1, 3)))}):
            a = int(near[int(rng.integers(0, len(near)))]) if len(near) else int(outp[0])
            b = int(far[int(rng.integers(0, len(far)))])
            evidence.append(_visit(W, rng, out, p, a, d))
            evidence.append(_visit(W, rng, out, p, b, d, PH if W.inst_kind[b] == PHARMACY else OP))
        out.case(SCHEME_ID, "patient", W.pid(p), evidence, institution_id="", doctor_id="")
        _no_institution(out)
    # (c) an agent with several cards on one phone, used together at one clinic
    for a in range(max(1, round(scale ** 0.5))):
        ps = W.take_patients(int(rng.integers(5, 9)))
        for p in ps:
            W.phone_key[p] = _PHONE_BASE + a
            W.phone_null[p] = False
        clinic = W.culprit_h[a % len(W.culprit_h)]
        visit_days = sorted({day_in(W, rng) for _ in range(int(rng.integers(2, 5)))})
        per = {p: [] for p in ps}
        for d in visit_days:
            for p in ps:
                if rng.random() < 0.85:
                    per[p].append(_visit(W, rng, out, p, clinic, d))
        for p, ev in per.items():
            if ev:
                out.case(SCHEME_ID, "patient", W.pid(p), ev, institution_id=W.inst_id_list[clinic])
    return out
