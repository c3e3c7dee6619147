"""Benchmark of the collusion-graph analysis (issue 6).

Two parts, run separately (each prints one JSON line per measurement):

    python bench/bench_graph.py graphs [--edges 100000 300000 1000000]
        networkx vs igraph (and leidenalg) on synthetic co-visit-like graphs (communities of
        ~20 patients, 80% of edges inside them): connected components, Louvain (networkx)
        vs Leiden (igraph), and the greedy peeling used for ring cores.

    python bench/bench_graph.py pipeline --data DIR [--scale S --days D]
        a generated lake (pipeline.synth) ingested, then the shared features (incl.
        covisit_pairs) and the collusion_ring detector timed, with graph sizes. Run it
        under `/usr/bin/time -v` for the peak RSS.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def emit(**kw):
    print(json.dumps(kw), flush=True)


def community_graph(n_edges: int, community: int = 20, inside: float = 0.8, seed: int = 1):
    """Edge list (a, b, weight) of a graph with planted communities, ~5 edges per node."""
    rng = np.random.default_rng(seed)
    n = max(n_edges // 5, community * 2)
    n_in = int(n_edges * inside)
    a = rng.integers(0, n, n_in)
    b = (a // community) * community + rng.integers(0, community, n_in)
    c = rng.integers(0, n, n_edges - n_in)
    d = rng.integers(0, n, n_edges - n_in)
    src, dst = np.concatenate([a, c]), np.concatenate([b, d])
    keep = src != dst
    src, dst = np.minimum(src, dst)[keep], np.maximum(src, dst)[keep]
    pairs = np.unique(src * n + dst)
    src, dst = pairs // n, pairs % n
    w = rng.integers(3, 10, len(src)).astype(float)
    return n, src, dst, w


def bench_graphs(sizes: list[int], nx_louvain_max: int) -> None:
    import igraph as ig
    import leidenalg
    import networkx as nx

    from importlib import util
    spec = util.spec_from_file_location("collusion_ring", ROOT / "detectors" / "collusion_ring.py")
    cr = util.module_from_spec(spec)
    spec.loader.exec_module(cr)

    for m in sizes:
        n, src, dst, w = community_graph(m)
        t = time.perf_counter()
        g = nx.Graph()
        g.add_weighted_edges_from(zip(src.tolist(), dst.tolist(), w.tolist()))
        t_build = time.perf_counter() - t
        t = time.perf_counter()
        comps = list(nx.connected_components(g))
        t_cc = time.perf_counter() - t
        t = time.perf_counter()
        igg = ig.Graph(n=n, edges=np.column_stack([src, dst]).tolist())
        igg.es["weight"] = w.tolist()
        t_igbuild = time.perf_counter() - t
        t = time.perf_counter()
        part = leidenalg.find_partition(igg, leidenalg.ModularityVertexPartition, weights="weight", seed=7)
        t_leidenalg = time.perf_counter() - t
        # what the detector runs on large components (igraph's C Leiden, iterated to a fixpoint)
        sub = nx.Graph()
        sub.add_weighted_edges_from(zip(src.tolist(), dst.tolist(), w.tolist()))
        t = time.perf_counter()
        det_parts = cr.communities(sub, 7, leiden_min_edges=0)
        t_leiden = time.perf_counter() - t
        t = time.perf_counter()
        ig_cc = igg.connected_components()
        t_igcc = time.perf_counter() - t
        row = dict(part="graphs", edges=g.number_of_edges(), nodes=g.number_of_nodes(),
                   nx_build_s=round(t_build, 2), nx_components_s=round(t_cc, 2), components=len(comps),
                   igraph_build_s=round(t_igbuild, 2), igraph_components_s=round(t_igcc, 3),
                   detector_leiden_s=round(t_leiden, 2), detector_leiden_communities=len(det_parts),
                   leidenalg_s=round(t_leidenalg, 2), leidenalg_communities=len(part),
                   leidenalg_modularity=round(part.modularity, 3))
        if m <= nx_louvain_max:
            t = time.perf_counter()
            lv = nx.community.louvain_communities(g, weight="weight", seed=7)
            row["nx_louvain_s"] = round(time.perf_counter() - t, 2)
            row["nx_louvain_communities"] = len(lv)
        t = time.perf_counter()
        core = cr.densest_core({(a, b): x for a, b, x in zip(src.tolist(), dst.tolist(), w.tolist())},
                               set(range(n)))
        row["peeling_s"] = round(time.perf_counter() - t, 2)
        row["peeling_core_nodes"] = len(core)
        emit(**row)


def bench_pipeline(data: Path, scale: float, days: int, start: str, seed: int) -> None:
    import resource

    from pipeline import detect, features, ingest, lake, registry, validate
    from pipeline.settings import load_settings

    st = load_settings(data_dir=data / "data", duckdb_memory_limit="3GB")
    landing = data / "landing"
    if not landing.exists():
        from pipeline.synth import generate
        t = time.perf_counter()
        summary = generate(data, days=days, scale=scale, seed=seed, start=start)
        emit(part="generate", seconds=round(time.perf_counter() - t, 1), rows=summary["rows"])
    if not lake.ingested_dates(st):
        t = time.perf_counter()
        for r in ingest.ingest(st, landing):
            validate.validate(st, r.extract_date)
        emit(part="ingest", seconds=round(time.perf_counter() - t, 1))
    run_date = lake.ingested_dates(st)[-1]
    con = lake.open_screening(st, run_date, features=False)
    n_lines = con.execute("SELECT count(*) FROM settlement_items").fetchall()[0][0]
    n_claims = con.execute("SELECT count(*) FROM settlements").fetchall()[0][0]
    con.close()
    # the build records each feature's own time, so covisit_pairs gets its own
    features.build(st, run_date, force=True)
    state = json.loads((features.run_dir(st, run_date) / "features" / "_STATE.json").read_text())
    times = state["seconds"]
    con = lake.open_screening(st, run_date)
    pairs = con.execute("SELECT count(*), count(*) FILTER (WHERE covisit_days >= 3 AND lift >= 3 AND surprise >= 3) "
                        "FROM covisit_pairs").fetchall()[0]
    con.close()
    emit(part="features", run_date=run_date, settlements=n_claims, charge_lines=n_lines,
         feature_seconds=times, covisit_pairs=pairs[0], surprising_links=pairs[1],
         lines_per_s_covisit=round(n_lines / max(times.get("covisit_pairs", 1e-9), 1e-9)))
    det = registry.get("collusion_ring")
    from pipeline.rules_config import load_rules
    params = load_rules(st.rules_file).params_for(det)
    out_dir = detect.findings_dir(st, run_date)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = detect.DetectContext(st, run_date, lake.ALL, out_dir)
    con = lake.open_screening(st, run_date)
    t = time.perf_counter()
    stats = detect.run_detector(con, det, params, ctx)
    con.close()
    emit(part="detector", seconds=round(time.perf_counter() - t, 1), findings=stats["findings"],
         ring_members=stats["ring_members"],
         peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="part", required=True)
    g = sub.add_parser("graphs")
    g.add_argument("--edges", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    g.add_argument("--nx-louvain-max", type=int, default=300_000,
                   help="largest graph given to networkx Louvain (it takes minutes at 10^6 edges)")
    p = sub.add_parser("pipeline")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--scale", type=float, default=30.0)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--start", default="2026-09-01")
    p.add_argument("--seed", type=int, default=7)
    a = ap.parse_args(argv)
    if a.part == "graphs":
        bench_graphs(a.edges, a.nx_louvain_max)
    else:
        bench_pipeline(a.data, a.scale, a.days, a.start, a.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
