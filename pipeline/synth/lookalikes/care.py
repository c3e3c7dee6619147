"""Honest care that a careless rule mistakes for fraud: intensive care billed by the day and
by the hour, chronic refills collected a few days early, a second consultation the same day
in the same department, one readmission a week or two after discharge. Several variants of
each (lengths, hours, how early, which items); the number planted grows with the scale."""
from __future__ import annotations

from pipeline.synth.catalog import ELDERLY, IP, OP, PH
from pipeline.synth.lookalikes.basic import _la
from pipeline.synth.schemes import SchemeOutput
from pipeline.synth.schemes._common import adult_or_elderly, day_in, pick_dx, pick_inst
from pipeline.synth.world import HOSP, PHARMACY, Line, World


def _n(scale: float, base: float) -> int:
    return max(2, round(base * scale ** 0.5))


def _intensive_care(W: World, rng, out, rows, scale):
    """ICU days (a 24-hour day unit) with hourly ECG monitoring, then a general ward."""
    icu = W.item_index_by_name("ICU bed")
    ecg = W.item_index_by_name("ECG monitoring (per hour)")
    nurse = W.item_index_by_name("Grade I nursing")
    hosp = [i for i in range(W.n_inst) if W.inst_kind[i] == HOSP and W.inst_level[i] >= 2]
    for _ in range(_n(scale, 4)):
        p = W.take_patients(1, ag=adult_or_elderly(rng))[0]
        inst = hosp[int(rng.integers(0, len(hosp)))]
        dx = W.dx_index[["I21.9", "I63.9", "J18.9", "I50.0"][int(rng.integers(0, 4))]] \
            if "I21.9" in W.dx_index else pick_dx(W, rng, IP, p)
        icu_days, ward_days = int(rng.integers(1, 6)), int(rng.integers(0, 6))
        discharge = day_in(W, rng)
        admit = discharge - icu_days - ward_days
        lines = W.stay_lines(rng, p, inst, dx, admit + icu_days, discharge) if ward_days else []
        hours = []
        for d in range(admit, admit + icu_days):
            h = int(rng.integers(12, 25)) if rng.random() < 0.5 else 24
            hours.append(h)
            lines += [Line(icu, d, 1000), Line(nurse, d, 1000), Line(ecg, d, h * 1000)]
            lines += [l for l in W.honest_lines(rng, p, inst, IP, dx, d, int(rng.integers(2, 5)),
                                                exclude={icu, nurse, ecg, *W.time_items})]
        s = out.add(W.settlement(rng, p, inst, IP, discharge, lines, dx=dx, admit=admit, discharge=discharge))
        rows.append(_la("intensive_care_hourly_monitoring",
                        f"{icu_days} ICU day(s) (a 24-hour day unit) with {', '.join(map(str, hours))} hour(s) "
                        f"of ECG monitoring a day, then {ward_days} ward day(s)",
                        W.pid(p), W.inst_id_list[inst], [s.id]))


def _early_refills(W: World, rng, out, rows, scale):
    """A chronic drug collected one to five days before the last pack runs out, cycle after
    cycle, sometimes as two packs on two lines, sometimes at another pharmacy."""
    pharm = [i for i in range(W.n_inst) if W.inst_kind[i] == PHARMACY]
    for _ in range(_n(scale, 5)):
        p = W.take_patients(1, ag=ELDERLY if rng.random() < 0.7 else None)[0]
        drug = int(W.chronic_items[int(rng.integers(0, len(W.chronic_items)))])
        ind = W.items[drug].indication[0]
        dx = next(k for k, d in enumerate(W.dx) if d.cat3 == ind)
        supply = [7, 14, 28, 30][int(rng.choice(4, p=[0.15, 0.25, 0.35, 0.25]))]
        early_max = {7: 1, 14: 2, 28: 5, 30: 5}[supply]
        shops = [pharm[int(rng.integers(0, len(pharm)))] for _ in range(2)]
        day, ids, early = W.start + int(rng.integers(0, 4)), [], []
        while day <= W.end:
            two_lines = supply >= 28 and rng.random() < 0.25
            shop = shops[1] if rng.random() < 0.3 else shops[0]
            if two_lines:                # two pack sizes: the larger pack and a top-up
                small = 7
                lines = [Line(drug, day, max(1, (supply - small) // 7) * 1000, days_supply=supply - small),
                         Line(drug, day, 1000, days_supply=small)]
            else:
                lines = [Line(drug, day, max(1, supply // 7) * 1000, days_supply=supply)]
            ids.append(out.add(W.settlement(rng, p, shop, PH, day, lines, dx=dx)).id)
            e = int(rng.integers(0, early_max + 1))
            early.append(e)
            day += supply - e
        rows.append(_la("chronic_refill_early",
                        f"{W.items[drug].name}: {supply}-day packs collected {', '.join(map(str, early[:-1])) or '0'} "
                        f"day(s) early", W.pid(p), W.inst_id_list[shops[0]], ids))


def _second_consultation(W: World, rng, out, rows, scale):
    """Back the same day to the same department: seen again (a new consultation), with
    nothing else, or with a test or a drug of its own."""
    for _ in range(_n(scale, 4)):
        p = W.take_patients(1, ag=adult_or_elderly(rng))[0]
        inst = pick_inst(W, rng, OP, 0.3)
        day = day_in(W, rng)
        dx = pick_dx(W, rng, OP, p)
        l1 = W.honest_lines(rng, p, inst, OP, dx, day, int(rng.integers(2, 5)))
        used = {l.item for l in l1}
        extra = int(rng.integers(0, 3))
        # the consultation again: the same item where the catalog pays two a day, else the
        # return-visit consultation of another grade
        con = l1[0].item
        if 0 < W.item_max_daily[con] < 2 * l1[0].qty:
            con = next(int(c) for c in rng.permutation(W.consult_items) if int(c) not in used)
        l2 = [Line(con, day, 1000)]
        if extra:
            more = W.honest_lines(rng, p, inst, OP, dx, day, extra + 1, exclude=used)[1:]
            l2 += [l for l in more if not W._bundle_clash(l.item, used)]
        s1 = out.add(W.settlement(rng, p, inst, OP, day, l1, dx=dx))
        s2 = out.add(W.settlement(rng, p, inst, OP, day, l2, dx=dx))
        rows.append(_la("second_consultation_same_department",
                        f"seen twice the same day in the same department: a new consultation"
                        f"{' with ' + str(len(l2) - 1) + ' item(s) of its own' if len(l2) > 1 else ' only'}",
                        W.pid(p), W.inst_id_list[inst], [s1.id, s2.id]))


def _single_readmission(W: World, rng, out, rows, scale):
    """One relapse: readmitted with the same diagnosis 4 to 14 days after discharge."""
    if W.days < 14:
        return
    for _ in range(_n(scale, 3)):
        p = W.take_patients(1, ag=adult_or_elderly(rng))[0]
        inst = pick_inst(W, rng, IP, 0.3)
        dx = pick_dx(W, rng, IP, p)
        los1, gap, los2 = int(rng.integers(2, 7)), int(rng.integers(4, 15)), int(rng.integers(2, 6))
        d2 = day_in(W, rng, min(W.days - 1, gap + los2 + 1))
        a2 = d2 - los2
        d1 = a2 - gap
        s1 = out.add(W.settlement(rng, p, inst, IP, d1, W.stay_lines(rng, p, inst, dx, d1 - los1, d1),
                                  dx=dx, admit=d1 - los1, discharge=d1))
        s2 = out.add(W.settlement(rng, p, inst, IP, d2, W.stay_lines(rng, p, inst, dx, a2, d2),
                                  dx=dx, admit=a2, discharge=d2))
        rows.append(_la("single_readmission_same_dx",
                        f"one readmission {gap} days after discharge with the same diagnosis {W.dx_codes[dx]}",
                        W.pid(p), W.inst_id_list[inst], [s1.id, s2.id]))


def plant(W: World, rng, scale: float) -> tuple[SchemeOutput, list[dict]]:
    out, rows = SchemeOutput(), []
    for fn in (_intensive_care, _early_refills, _second_consultation, _single_readmission):
        fn(W, rng, out, rows, scale)
    return out, rows
