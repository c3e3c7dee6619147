"""An item outside its age limits: paediatric items for adults, adult-only drugs for children."""
from pipeline.synth.catalog import ADULT, CHILD, OP
from pipeline.synth.schemes import SchemeOutput, n_cases
from pipeline.synth.schemes._common import day_in, op_visit, pick_inst
from pipeline.synth.world import Line

SCHEME_ID = "age_restricted_item"


def plant(W, days, rng, scale) -> SchemeOutput:
    out = SchemeOutput()
    for _ in range(n_cases(scale)):
        child = rng.random() < 0.4
        p = W.take_patients(1, ag=CHILD if child else ADULT)[0]
        if child:
            wrong = [k for k, i in enumerate(W.items) if i.min_age and i.min_age >= 18 and i.category == "drug"
                     and i.indication is None]
        else:
            wrong = [k for k, i in enumerate(W.items) if i.max_age is not None and i.max_age <= 14]
        inst = pick_inst(W, rng, OP)
        day = day_in(W, rng)
        dx, lines = op_visit(W, rng, p, inst, day)
        k = int(wrong[int(rng.integers(0, len(wrong)))])
        lines = [l for l in lines if l.item != k] + [W.line(k, day, rng)]
        s = out.add(W.settlement(rng, p, inst, OP, day, lines, dx=dx))
        out.case(SCHEME_ID, "settlement", s.id, [s])
    return out
