"""医保药品倒卖 resale of insured drugs: recruited card holders fill a high-resale drug
(insulin, SGLT2 inhibitors, statins on the watch list) every few days with a month's supply
(4 packs, 28 days) at several pharmacies, sometimes receiving packs whose traceability
codes were already dispensed (recycled packs). Rings: an intermediary (中间人) holds several
cards registered to the intermediary's phone; they buy mostly at one colluding pharmacy.
A few resellers act alone, shopping around.

Truth: one case per patient (its purchases; institution = the colluding pharmacy for ring
members, none for a lone reseller), one ring case per ring (ring_members: the patients and
the intermediary, member_id "phone:<phone_hash>"). The same purchases also break the
excess_days_supply rule and recycled packs the duplicate_trace_code rule: those are
recorded as cases of those schemes too (the truth must explain every rule violation).

Honest look-alikes: a chronic patient refilling monthly at two pharmacies; a household
sharing a phone whose members each refill monthly."""
from __future__ import annotations

import numpy as np

from pipeline.synth import arrowutil as au
from pipeline.synth.catalog import ADULT, ELDERLY, PH
from pipeline.synth.schemes import SchemeOutput, n_cases
from pipeline.synth.schemes._common import day_in
from pipeline.synth.world import PHARMACY, Line

SCHEME_ID = "drug_resale"
WATCH = ("Insulin glargine injection", "Dapagliflozin tablets", "Rosuvastatin tablets")
_PHONE_BASE = 7 * 10 ** 9


def phone_hash(W, p) -> str:
    return au.hexhash(np.array([W.phone_key[p]], dtype=np.uint64), 101)[0].as_py()


def _dx_for(W, item) -> int:
    return W.dx_index["E78.5"] if W.items[item].name.startswith("Rosuvastatin") else W.dx_index["E11.9"]


def _buy(W, rng, out, p, pharmacy, day, item, packs, trace=None):
    line = Line(item, day, packs * 1000, days_supply=7 * packs, trace=trace)
    return out.add(W.settlement(rng, p, pharmacy, PH, day, [line], dx=_dx_for(W, item)))


def _excess(purchases) -> bool:
    """The excess_days_supply rule: days supplied before the last purchase far beyond the span."""
    if len(purchases) < 2:
        return False
    days = [int(s.items[0]["days_supply"]) for s in purchases]
    dates = [s.items[0]["service_date"] for s in purchases]
    span = (max(dates) - min(dates)).days
    return sum(days) - days[-1] > 1.5 * span + 3


def _reseller(W, rng, out, p, start, pharmacies, item, recycled):
    """Purchases every 3-8 days of a 28-day supply at the given pharmacies."""
    day, bought = start, []
    while day <= W.end:
        ph = pharmacies[int(rng.integers(0, len(pharmacies)))]
        reused = []
        if recycled and rng.random() < 0.25:
            reused = [recycled.pop(int(rng.integers(0, len(recycled))))]
        trace = [c for c, _ in reused] + W.next_trace(day, 4 - len(reused))
        s = _buy(W, rng, out, p, ph, day, item, 4, trace)
        for code, original in reused:
            out.case("duplicate_trace_code", "settlement", s.id, [original, s], institution_id="")
            out.cases[-1]["institution_id"] = None
        recycled.append((s.items[0]["trace_codes"][-1], s))
        bought.append(s)
        day += int(rng.integers(3, 9))
    if _excess(bought):
        out.case("excess_days_supply", "patient", W.pid(p), bought, institution_id="", doctor_id="")
        out.cases[-1]["institution_id"] = out.cases[-1]["doctor_id"] = None
    return bought


def _lookalikes(W, rng, out, pharm, items):
    # a chronic patient refilling every 28 days, alternating two pharmacies
    p = W.take_patients(1, ag=ELDERLY)[0]
    shops = [int(x) for x in rng.choice(pharm, 2, replace=False)]
    item = items[0]
    ids = [_buy(W, rng, out, p, shops[k % 2], d, item, 4).id for k, d in enumerate(range(W.start, W.end + 1, 28))]
    out.lookalikes.append({"kind": "chronic_refill_two_pharmacies",
                           "description": "insulin refilled every 28 days with 28 days' supply, at two pharmacies",
                           "patient_id": W.pid(p), "institution_id": W.inst_id_list[shops[0]], "settlement_ids": ids})
    # a household sharing one phone, each member refilling monthly at the same pharmacy
    fam = W.take_patients(3, ag=ELDERLY)
    for q in fam:
        W.phone_key[q] = _PHONE_BASE + 900 + int(fam[0] % 97)
        W.phone_null[q] = False
        W.household[q] = W.household[fam[0]]
        W.addr_null[q] = False
    ids = []
    for q in fam:
        first = day_in(W, rng, 0, max(0, W.days - 29))
        ids += [_buy(W, rng, out, q, shops[0], d, items[1], 4).id for d in range(first, W.end + 1, 28)]
    out.lookalikes.append({"kind": "shared_phone_family_refills",
                           "description": "three members of a household sharing one phone, each refilling a "
                                          "watch-list drug monthly at the same pharmacy",
                           "patient_id": W.pid(fam[0]), "institution_id": W.inst_id_list[shops[0]],
                           "settlement_ids": ids})


def plant(W, days, rng, scale) -> SchemeOutput:
    out = SchemeOutput()
    if days < 10:
        return out
    pharm = np.flatnonzero(W.inst_kind == PHARMACY)
    items = [W.item_index_by_name(n) for n in WATCH]
    _lookalikes(W, rng, out, pharm, items)
    recycled: list = []
    for r in range(max(1, round(scale ** 0.5))):
        ps = W.take_patients(int(rng.integers(3, 7)), ag=ELDERLY if rng.random() < 0.5 else ADULT)
        for p in ps:
            W.phone_key[p] = _PHONE_BASE + r
            W.phone_null[p] = False
        home = W.culprit_p[r % len(W.culprit_p)] if W.culprit_p else int(pharm[0])
        item = items[int(rng.integers(0, len(items)))]
        ring_id = f"{SCHEME_ID}-ring-{r + 1:02d}"
        ring_buys = []
        for p in ps:
            others = [int(x) for x in rng.choice(pharm, 2, replace=False)]   # each member's own extra shops
            bought = _reseller(W, rng, out, p, day_in(W, rng, 0, 12), [home, home, *others], item, recycled)
            ring_buys.extend(bought)
            out.case(SCHEME_ID, "patient", W.pid(p), bought, institution_id=W.inst_id_list[home])
        out.case(SCHEME_ID, "ring", ring_id, ring_buys, institution_id=W.inst_id_list[home], patient_id="")
        out.cases[-1]["patient_id"] = None
        out.ring_members.extend({"ring_id": ring_id, "member_type": "patient", "member_id": W.pid(p)} for p in ps)
        out.ring_members.append({"ring_id": ring_id, "member_type": "intermediary",
                                 "member_id": "phone:" + phone_hash(W, ps[0])})
    for _ in range(max(2, n_cases(scale) // 2)):
        p = W.take_patients(1, ag=ADULT)[0]
        shops = [int(x) for x in rng.choice(pharm, int(rng.integers(2, 5)), replace=False)]
        bought = _reseller(W, rng, out, p, day_in(W, rng, 0, 12), shops,
                           items[int(rng.integers(0, len(items)))], recycled)
        # a lone reseller shops around: the pharmacies are not party to it
        out.case(SCHEME_ID, "patient", W.pid(p), bought, institution_id="", doctor_id="")
        out.cases[-1]["institution_id"] = out.cases[-1]["doctor_id"] = None
    return out
