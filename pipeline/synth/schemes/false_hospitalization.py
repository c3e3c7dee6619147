"""虚假住院 false hospitalisation: a culprit hospital fills beds on paper. Recruited patients
(mostly elderly, from two or three addresses) are admitted in batches on a few days, all
with a mild diagnosis usually treated as an outpatient, the same length of stay (give or
take a day) and one copied item list (the template); some culprits bill bed, nursing and
the daily fee with almost no treatment (挂床, bed-hanging). One case per stay; each
culprit hospital and its recruits are one ring in ring_members (patients, institution).

Honest look-alike planted with it: a household admitted together after an accident
(shared address, same day, real and varied care, different lengths of stay)."""
from __future__ import annotations

from pipeline.synth.catalog import ELDERLY, IP
from pipeline.synth.schemes import SchemeOutput, n_cases
from pipeline.synth.schemes._common import day_in
from pipeline.synth.world import HOSP, Line

SCHEME_ID = "false_hospitalization"
MILD = ("J06.9", "M54.5", "K29.7", "I10", "J20.9")


def _recruits(W, rng, k):
    ps = []
    for _ in range(k):
        ps.extend(W.take_patients(1, ag=ELDERLY if rng.random() < 0.75 else None))
    villages = ps[:int(rng.integers(2, 4))]          # two or three villages / addresses
    for p in ps:
        W.household[p] = W.household[villages[int(rng.integers(0, len(villages)))]]
        W.addr_null[p] = False
    return ps


def _fits(W, k, p, inst) -> bool:
    return W.compatible(k, IP, int(W.sex[p]), int(W.agegroup[p]), int(W.inst_level[inst]))


def _family_accident(W, rng, out):
    hosp = [i for i in range(W.n_inst) if W.inst_kind[i] == HOSP and W.inst_level[i] >= 2]
    inst = hosp[int(rng.integers(0, len(hosp)))]
    ps = W.take_patients(3)
    for p in ps[1:]:
        W.household[p] = W.household[ps[0]]
        W.addr_null[p] = False
    admit = day_in(W, rng, 0, 10)
    dx = W.dx_index["S52.5"]
    ids = []
    for p in ps:
        los = int(rng.integers(2, 9))
        lines = W.stay_lines(rng, p, inst, dx, admit, admit + los, n_extra=int(rng.integers(8, 20)))
        ids.append(out.add(W.settlement(rng, p, inst, IP, admit + los, lines, dx=dx, admit=admit,
                                        discharge=admit + los)).id)
    out.lookalikes.append({"kind": "household_admitted_together",
                           "description": "three members of one household admitted on the same day after an "
                                          "accident, with real and varied care",
                           "patient_id": W.pid(ps[0]), "institution_id": W.inst_id_list[inst],
                           "settlement_ids": ids})


def plant(W, days, rng, scale) -> SchemeOutput:
    out = SchemeOutput()
    if days < 12:
        return out
    _family_accident(W, rng, out)
    culprits = [i for i in W.culprit_ip if W.inst_kind[i] == HOSP] or list(W.culprit_ip)
    n_inst = min(len(culprits), max(1, round(scale ** 0.5)))
    for ci in range(n_inst):
        inst = culprits[ci]
        bed_hanging = ci % 2 == 1 or rng.random() < 0.3
        ps = _recruits(W, rng, n_cases(scale) * 2 + int(rng.integers(0, 4)))
        dx_code = MILD[int(rng.integers(0, len(MILD)))]
        dx = W.dx_index[dx_code]
        los = int(rng.integers(5, 9))
        batch_days = sorted({day_in(W, rng, 0, los + 2) for _ in range(int(rng.integers(2, 4)))})
        # the template: one honest-looking stay, copied item for item (dates shifted)
        t_admit = batch_days[0]
        if bed_hanging:
            template = [Line(W.bed_items[0], t_admit + d, 1000) for d in range(los)]
            template += [Line(int(W.nursing_items[-1]), t_admit + d, 1000) for d in range(los)]
            template += [Line(W.ip_fee, t_admit + d, 1000) for d in range(los)]
            template += W.honest_lines(rng, ps[0], inst, IP, dx, t_admit, 2)
        else:
            template = W.stay_lines(rng, ps[0], inst, dx, t_admit, t_admit + los, n_extra=int(rng.integers(10, 16)))
        bed = template[0].item
        for j, p in enumerate(ps):
            admit = batch_days[j % len(batch_days)] + (1 if rng.random() < 0.15 else 0)
            stay = los + (1 if rng.random() < 0.15 else 0)
            shift = admit - t_admit
            lines = [Line(l.item, l.date + shift, l.qty, days_supply=l.days_supply)
                     for l in template if _fits(W, l.item, p, inst)]
            if stay > los:      # one more night billed
                lines.append(Line(bed, admit + los, 1000))
            s = out.add(W.settlement(rng, p, inst, IP, admit + stay, lines, dx=dx, admit=admit,
                                     discharge=admit + stay, dx_code=dx_code))
            out.case(SCHEME_ID, "settlement", s.id, [s])
        # the hospital and its recruits are one ring (a false-admission ring, 虚假住院团伙)
        rid = f"{SCHEME_ID}-ring-{ci + 1:03d}"
        out.ring_members.extend(
            [{"ring_id": rid, "member_type": "patient", "member_id": W.pid(p)} for p in ps]
            + [{"ring_id": rid, "member_type": "institution", "member_id": W.inst_id_list[inst]}])
    return out
