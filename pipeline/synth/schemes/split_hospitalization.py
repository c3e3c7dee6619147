"""分解住院 split hospitalization: one episode cut into stays at the same institution with the
same or a related diagnosis (same ICD-10 3-character category) - either readmitted 0-3
days after discharge, or a chain of three or four stays with gaps of up to 12 days.
One case per readmission: [previous stay, readmission]."""
from __future__ import annotations

from pipeline.synth.catalog import IP
from pipeline.synth.schemes import SchemeOutput, n_cases
from pipeline.synth.schemes._common import adult_or_elderly, day_in, pick_dx, pick_inst

SCHEME_ID = "split_hospitalization"


def related(code: str, rng) -> str:
    """Another code of the same 3-character category (or the same code)."""
    if rng.random() < 0.5:
        return code
    alt = [code[:3] + "." + d for d in "0189" if code[:3] + "." + d != code]
    return alt[int(rng.integers(0, len(alt)))]


def plant(W, days, rng, scale) -> SchemeOutput:
    out = SchemeOutput()
    if days < 3:
        return out
    for _ in range(n_cases(scale)):
        p = W.take_patients(1, ag=adult_or_elderly(rng))[0]
        inst = pick_inst(W, rng, IP)
        dx = pick_dx(W, rng, IP, p)
        chain = int(rng.integers(3, 5)) if rng.random() < 0.35 else 2
        los = [int(rng.integers(2, 9)) for _ in range(chain)]
        gaps = [int(rng.integers(0, 4)) if chain == 2 else int(rng.integers(1, 13)) for _ in range(chain - 1)]
        rest = sum(gaps) + sum(los[1:])
        while rest > days - 1 and chain > 3:          # a shorter chain fits a short month
            chain, los, gaps = chain - 1, los[:-1], gaps[:-1]
            rest = sum(gaps) + sum(los[1:])
        if rest > days - 1:
            chain, los, gaps = 2, [los[0], 1], [1]
            rest = 2
        discharge = day_in(W, rng, 0, rest)
        admit = discharge - los[0]
        prev = None
        code = W.dx_codes[dx]
        for i in range(chain):
            c = code if i == 0 else related(code, rng)
            lines = W.stay_lines(rng, p, inst, dx, admit, discharge, n_extra=int(rng.integers(8, 30)))
            s = out.add(W.settlement(rng, p, inst, IP, discharge, lines, dx=dx, admit=admit,
                                     discharge=discharge, dx_code=c))
            if prev is not None:
                out.case(SCHEME_ID, "settlement", s.id, [prev, s])
            prev = s
            if i + 1 < chain:
                admit = discharge + gaps[i]
                discharge = admit + los[i + 1]
    return out
