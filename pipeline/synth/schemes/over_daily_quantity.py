"""超量收费 more units of an item in one day than its max_daily_qty."""
from pipeline.synth.catalog import OP
from pipeline.synth.schemes import SchemeOutput, n_cases
from pipeline.synth.schemes._common import adult_or_elderly, day_in, op_visit, pick_inst

SCHEME_ID = "over_daily_quantity"


def plant(W, days, rng, scale) -> SchemeOutput:
    out = SchemeOutput()
    for _ in range(n_cases(scale)):
        p = W.take_patients(1, ag=adult_or_elderly(rng))[0]
        inst = pick_inst(W, rng, OP)
        day = day_in(W, rng)
        dx, lines = op_visit(W, rng, p, inst, day, n=int(rng.integers(3, 7)))
        lim = [l for l in lines if W.item_max_daily[l.item] > 0 and W.item_role[l.item] != "consult"]
        l = lim[int(rng.integers(0, len(lim)))] if lim else lines[0]
        mx = int(W.item_max_daily[l.item]) // 1000
        l.qty = (mx + int(rng.integers(1, max(2, mx + 1)))) * 1000
        s = out.add(W.settlement(rng, p, inst, OP, day, lines, dx=dx))
        out.case(SCHEME_ID, "settlement", s.id, [s])
    return out
