"""超标准收费 unit price above the catalog cap for the institution's level."""
from pipeline.synth.catalog import OP
from pipeline.synth.schemes import SchemeOutput, n_cases
from pipeline.synth.schemes._common import adult_or_elderly, day_in, op_visit, pick_inst

SCHEME_ID = "over_price_cap"


def plant(W, days, rng, scale) -> SchemeOutput:
    out = SchemeOutput()
    for _ in range(n_cases(scale)):
        p = W.take_patients(1, ag=adult_or_elderly(rng))[0]
        inst = pick_inst(W, rng, OP)
        day = day_in(W, rng)
        dx, lines = op_visit(W, rng, p, inst, day, n=int(rng.integers(3, 7)))
        capped = [l for l in lines if W.capped[l.item]]
        for l in capped[:1 + int(rng.integers(0, 2))]:
            cap = int(W.cap_by_level[l.item, W.inst_level[inst]])
            l.price = (int(cap * (1.1 + 0.5 * rng.random())) // 100) * 100
        s = out.add(W.settlement(rng, p, inst, OP, day, lines, dx=dx))
        out.case(SCHEME_ID, "settlement", s.id, [s])
    return out
