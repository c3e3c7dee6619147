"""重复收费 duplicate billing: the same item billed twice for one patient on one service date
at one institution, either as two lines of one settlement or in two settlements that day."""
from __future__ import annotations

from pipeline.synth.catalog import OP
from pipeline.synth.schemes import SchemeOutput, n_cases
from pipeline.synth.schemes._common import adult_or_elderly, day_in, pick_dx, pick_inst
from pipeline.synth.world import Line

SCHEME_ID = "duplicate_billing"


def plant(W, days, rng, scale) -> SchemeOutput:
    out = SchemeOutput()
    infusion = W.item_index_by_name("Intravenous infusion")
    for _ in range(n_cases(scale)):
        p = W.take_patients(1, ag=adult_or_elderly(rng))[0]
        inst = pick_inst(W, rng, OP)
        day = day_in(W, rng)
        dx = pick_dx(W, rng, OP, p)
        lines = W.honest_lines(rng, p, inst, OP, dx, day, int(rng.integers(3, 7)))
        # an item whose double still fits the daily limit (so only duplication is wrong)
        dup = [l for l in lines if not W.item_is_drug[l.item] and W.item_role[l.item] == "general"
               and (W.item_max_daily[l.item] < 0 or 2 * l.qty <= W.item_max_daily[l.item])]
        if dup:
            target = dup[int(rng.integers(0, len(dup)))]
        else:
            lines = [l for l in lines if l.item != infusion]
            target = Line(infusion, day, 1000)
            lines.append(target)
        if rng.random() < 0.6:
            lines.append(Line(target.item, day, target.qty))
            s = out.add(W.settlement(rng, p, inst, OP, day, lines, dx=dx))
            out.case(SCHEME_ID, "settlement", s.id, [s])
        else:
            s1 = out.add(W.settlement(rng, p, inst, OP, day, lines, dx=dx))
            used = {l.item for l in lines}
            consult = next(int(c) for c in rng.permutation(W.consult_items) if int(c) not in used)
            lines2 = [Line(consult, day, 1000), Line(target.item, day, target.qty)]
            s2 = out.add(W.settlement(rng, p, inst, OP, day, lines2, dx=dx))
            out.case(SCHEME_ID, "settlement", s2.id, [s1, s2])
    return out
