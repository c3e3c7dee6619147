"""Detection quality over generated months: the tables of docs/rules_evaluation.md.

    .venv/bin/python bench/quality.py [--out /tmp/quality] [--seeds 7 11 23]
        [--worlds standard:0.3:fraud standard:1:fraud standard:0.3:honest county:0.3:fraud]

For every world (profile, scale, with or without fraud) and seed: generate 30 nights,
ingest, promote (the gate is measured in bench/validation_bench.py), screen the last
night, and score it with ``claimscreen evaluate``. Prints, per detector, the largest
honest share flagged over the months and the recall pooled over the seeds, and per world
the institution average precision. ``--json`` writes everything.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import evaluate, ingest, screen, synth, validate  # noqa: E402
from pipeline.settings import load_settings  # noqa: E402


def month(root: Path, profile: str, scale: float, seed: int, fraud: bool) -> dict:
    shutil.rmtree(root, ignore_errors=True)
    summary = synth.generate(root, days=30, scale=scale, seed=seed, fraud=fraud, profile=profile)
    st = load_settings(data_dir=root / "data")
    for r in ingest.ingest(st, root / "landing"):
        validate.promote(st, r.extract_date)
    screen.screen(st, summary["dates"][-1], render=False)
    return evaluate.evaluate(st, root / "truth")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/claimscreen-quality")
    ap.add_argument("--seeds", type=int, nargs="+", default=[7, 11, 23])
    ap.add_argument("--worlds", nargs="+",
                    default=["standard:0.3:fraud", "standard:1:fraud", "standard:0.3:honest",
                             "county:0.3:fraud", "county:0.5:honest"])
    ap.add_argument("--json", help="write all results to this file")
    a = ap.parse_args(argv)
    results = {}
    for w in a.worlds:
        profile, scale, kind = w.split(":")
        for seed in a.seeds:
            t = time.perf_counter()
            key = f"{profile}:{scale}:{kind}:{seed}"
            results[key] = month(Path(a.out) / key.replace(":", "-"), profile, float(scale), seed, kind == "fraud")
            s = results[key]["settlements"]
            print(f"{key:28s} {s['settlements']:7d} settlements, honest flagged {s['all']['honest_flagged']:4d} "
                  f"({100 * s['all']['honest_share']:.3f} %), institution AP "
                  f"{results[key]['institutions']['average_precision'] or 0:.3f}  ({time.perf_counter() - t:.0f} s)",
                  flush=True)
    # per detector: the worst honest share over all months, recall pooled over fraud months
    worst, cases, found, findings = {}, {}, {}, {}
    for key, r in results.items():
        for d in r["detectors"]:
            i = d["detector_id"]
            if (d["honest_share"] or 0) >= worst.get(i, (-1, ""))[0]:
                worst[i] = (d["honest_share"] or 0, key)
            findings[i] = findings.get(i, 0) + d["findings"]
        for scheme, s in r["schemes"].items():
            cases[scheme] = cases.get(scheme, 0) + s["cases"]
            found[scheme] = found.get(scheme, 0) + s["found_by_own_detector"]
    print(f"\n| detector | findings (all months) | worst honest share | in | recall (pooled) |")
    print("|---|---|---|---|---|")
    for i in sorted(set(worst) | set(cases)):
        share, where = worst.get(i, (0, "-"))
        rec = f"{found[i]}/{cases[i]} = {found[i] / cases[i]:.3f}" if cases.get(i) else "-"
        print(f"| {i} | {findings.get(i, 0)} | {100 * share:.3f} % | {where} | {rec} |")
    print("\n| world | seeds | institution AP | precision@10 | honest flagged (all detectors) |")
    print("|---|---|---|---|---|")
    for w in a.worlds:
        keys = [f"{w}:{s}" for s in a.seeds]
        aps = [results[k]["institutions"]["average_precision"] for k in keys]
        p10 = [results[k]["institutions"]["precision_at_10"] for k in keys]
        hon = [100 * results[k]["settlements"]["all"]["honest_share"] for k in keys]
        fmt = lambda xs, f="{:.3f}": ", ".join("-" if x is None else f.format(x) for x in xs)  # noqa: E731
        print(f"| {w} | {', '.join(map(str, a.seeds))} | {fmt(aps)} | {fmt(p10)} | {fmt(hon, '{:.3f} %')} |")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1, default=str, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
