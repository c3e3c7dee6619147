"""分解收费 unbundling: a package item and one of its components billed the same day."""
from pipeline.synth.catalog import OP
from pipeline.synth.schemes import SchemeOutput, n_cases
from pipeline.synth.schemes._common import adult_or_elderly, day_in, op_visit, pick_inst
from pipeline.synth.world import Line

SCHEME_ID = "unbundling"


def plant(W, days, rng, scale) -> SchemeOutput:
    out = SchemeOutput()
    bundled = {c for _, comps in W.packages for c in comps} | {p for p, _ in W.packages}
    for _ in range(n_cases(scale)):
        p = W.take_patients(1, ag=adult_or_elderly(rng))[0]
        inst = pick_inst(W, rng, OP)
        day = day_in(W, rng)
        dx, lines = op_visit(W, rng, p, inst, day, exclude=bundled)
        pk, comps = W.packages[int(rng.integers(0, len(W.packages)))]
        lines.append(Line(pk, day, 1000))
        for c in rng.permutation(comps)[:1 + int(rng.integers(0, len(comps)))]:
            lines.append(Line(int(c), day, 1000))
        s = out.add(W.settlement(rng, p, inst, OP, day, lines, dx=dx))
        out.case(SCHEME_ID, "settlement", s.id, [s])
    return out
