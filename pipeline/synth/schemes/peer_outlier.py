"""同类机构偏离 institutions and doctors billing far above their peers: at one culprit
institution a doctor pads every visit with expensive examinations and the largest drug
quantities (cost per visit, fund per patient and exam share far above comparable
institutions); at a second culprit a doctor calls the same patients back again and again
(visits per patient). One case per institution and one per doctor (settlement_ids: the
padded visits).

Honest look-alike: a busy tertiary hospital with many extra ordinary visits (volume, not
price)."""
from __future__ import annotations

import numpy as np

from pipeline.synth.catalog import OP
from pipeline.synth.schemes import SchemeOutput
from pipeline.synth.schemes._common import pick_dx
from pipeline.synth.world import HOSP, Line

SCHEME_ID = "peer_outlier"
PADDING = ("Head CT", "Abdominal ultrasound", "Echocardiography", "Glycated haemoglobin", "Coagulation panel",
           "NT-proBNP", "Procalcitonin")


def _daily_visits(W, inst) -> int:
    """About the institution's own daily outpatient volume in the background."""
    w = W.inst_weights[OP]
    return max(3, int(round(W.daily_target.mean() * 0.55 * w[inst] / w.sum())))


def _affordable(W, k: int) -> int:
    """At most a fifth of the reserved persons left: the other schemes need theirs."""
    return max(3, min(k, len(W._reserved_pool) // 5))


def _busy_hospital(W, rng, out):
    big = [i for i in range(W.n_inst) if W.inst_kind[i] == HOSP and W.inst_level[i] == 3]
    inst = max(big, key=lambda i: W.inst_beds[i])
    ps = W.take_patients(_affordable(W, _daily_visits(W, inst) * W.days // 2))
    ids = []
    for k, p in enumerate(ps):
        day = W.start + k % W.days
        dx = pick_dx(W, rng, OP, p)
        ids.append(out.add(W.settlement(rng, p, inst, OP, day,
                                        W.honest_lines(rng, p, inst, OP, dx, day, int(rng.integers(2, 6))),
                                        dx=dx)).id)
    out.lookalikes.append({"kind": "busy_tertiary_hospital",
                           "description": "the largest tertiary hospital with many extra ordinary outpatient visits",
                           "patient_id": None, "institution_id": W.inst_id_list[inst], "settlement_ids": ids})


def plant(W, days, rng, scale) -> SchemeOutput:
    out = SchemeOutput()
    if days < 7:
        return out
    _busy_hospital(W, rng, out)
    for ci, inst in enumerate(list(W.culprit_h[:2])):
        daily = _daily_visits(W, inst)
        doc = int(W.doc_start[inst])          # the institution's first doctor pads the bills
        lvl = int(W.inst_level[inst])
        padding = [k for k in (W.item_index_by_name(n) for n in PADDING) if W.compatible(k, OP, 0, 1, lvl)]
        patients = W.take_patients(max(daily, _affordable(W, daily * days // (6 if ci == 1 else 2))))
        visits, given = [], {}
        for day in range(W.start, W.end + 1):
            for p in rng.choice(patients, min(daily, len(patients)), replace=False):   # once a day each
                p = int(p)
                dx = pick_dx(W, rng, OP, p)
                # a drug given once per patient: repeat visits must not stack supplies (another rule)
                lines = W.honest_lines(rng, p, inst, OP, dx, day, int(rng.integers(2, 4)),
                                       exclude=given.setdefault(p, set()))
                given[p].update(l.item for l in lines if W.items[l.item].category == "drug")
                if ci == 0:
                    have = {l.item for l in lines}
                    lines += [Line(int(k), day, 1000) for k in rng.permutation(padding)[:int(rng.integers(2, 4))]
                              if int(k) not in have]
                    for l in lines:
                        if W.items[l.item].category == "drug":
                            l.qty = int(W.item_qmax[l.item])
                visits.append(out.add(W.settlement(rng, p, inst, OP, day, lines, dx=dx, doctor=doc)))
        out.case(SCHEME_ID, "institution", W.inst_id_list[inst], visits, institution_id=W.inst_id_list[inst],
                 patient_id="", doctor_id="")
        out.cases[-1]["patient_id"] = out.cases[-1]["doctor_id"] = None
        out.case(SCHEME_ID, "doctor", W.doc_id_list[doc], visits, institution_id=W.inst_id_list[inst],
                 doctor_id=W.doc_id_list[doc], patient_id="")
        out.cases[-1]["patient_id"] = None
    return out
