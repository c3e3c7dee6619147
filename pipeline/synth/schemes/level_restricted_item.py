"""An item billed by an institution below the item's minimum level (e.g. CT at a level-1 clinic)."""
from pipeline.synth.catalog import OP
from pipeline.synth.schemes import SchemeOutput, n_cases
from pipeline.synth.schemes._common import adult_or_elderly, day_in, op_visit, pick_inst
from pipeline.synth.world import Line

SCHEME_ID = "level_restricted_item"


def plant(W, days, rng, scale) -> SchemeOutput:
    out = SchemeOutput()
    for _ in range(n_cases(scale)):
        p = W.take_patients(1, ag=adult_or_elderly(rng))[0]
        inst = pick_inst(W, rng, OP, 0.9)
        if W.inst_level[inst] >= 3:
            inst = W.culprit_h[0] if W.culprit_h else 2
        lvl = int(W.inst_level[inst])
        wrong = [k for k, i in enumerate(W.items) if i.min_level and i.min_level > lvl and i.category == "exam"
                 and i.sex_only is None and i.min_age is None]
        day = day_in(W, rng)
        dx, lines = op_visit(W, rng, p, inst, day)
        lines.append(Line(int(wrong[int(rng.integers(0, len(wrong)))]), day, 1000))
        s = out.add(W.settlement(rng, p, inst, OP, day, lines, dx=dx))
        out.case(SCHEME_ID, "settlement", s.id, [s])
    return out
