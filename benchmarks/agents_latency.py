"""AGP predict latency per query after loading a saved model (CPU).

Run:  .venv/bin/python benchmarks/agents_latency.py [--n-queries 200]
      .venv/bin/python benchmarks/agents_latency.py --render-only   # md from the saved JSON

Trains a small AGP model on simulator-mined records, saves it (safetensors + JSON), loads it in
a fresh pruner, warms up, then times ``predict(query)`` one query at a time (encode with MiniLM +
GCN + thresholding into a Topology) and, separately, the encoder alone. The pruner's default
``n_threads=1`` is used (and compared with torch's default threads). Writes
benchmarks/results/agents_latency.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks import _common as common  # noqa: E402

NAME = "agents_latency"


def timeit(fn, items) -> np.ndarray:
    out = []
    for x in items:
        t = time.perf_counter()
        fn(x)
        out.append((time.perf_counter() - t) * 1000)
    return np.array(out)


def stats(ms: np.ndarray) -> dict:
    return {
        "median_ms": float(np.median(ms)),
        "p95_ms": float(np.percentile(ms, 95)),
        "mean_ms": float(ms.mean()),
    }


def latency_md(results: dict) -> list[str]:
    """The markdown section (also used to rebuild it from the JSON)."""
    d = results["n_threads=1 (default)"]["predict"]
    enc = results["n_threads=1 (default)"]["encoder_only"]
    ok = d["median_ms"] < 20
    # runs before the "machine" key stored machine_info's fields at the top level
    machine = results.get("machine") or {
        k: results[k] for k in ("cpu_count", "load_average_at_start") if k in results
    }
    lines = [
        "## AGP predict latency (`benchmarks/agents_latency.py`)",
        "",
        f"Command: `{results['command']}`. {results['n_queries']} single-query `predict` calls after "
        "loading the saved model (safetensors + JSON) and a warm-up; each call = MiniLM query "
        "embedding + GCN + thresholding into a Topology (6-agent pool). "
        + common.machine_sentence(machine)
        + _load_vs_cpus(machine)
        + " The encoder-only column was timed in the same process, after the predict calls.",
        "",
        "| torch threads | predict median (ms) | predict p95 (ms) | encoder alone median (ms) |",
        "|---|---|---|---|",
    ]
    for label in [k for k in results if k.startswith(("n_threads", "torch default"))]:
        r = results[label]
        lines.append(
            f"| {label} | {r['predict']['median_ms']:.1f} | {r['predict']['p95_ms']:.1f} | "
            f"{r['encoder_only']['median_ms']:.1f} |"
        )
    lines += [
        "",
        f"Batched `predict_many`: {results['predict_many_ms_per_query']:.1f} ms per query. Loaded "
        f"model reproduces the trained model's topologies: {results['loaded_matches_trained']}. "
        f"Target < 20 ms median per query: {'met' if ok else 'NOT met'} "
        f"({d['median_ms']:.1f} ms; MiniLM alone {enc['median_ms']:.1f} ms).",
        "",
    ]
    return lines


def _load_vs_cpus(machine: dict) -> str:
    """Whether the recorded 1-minute load averages exceed the CPU count ("" if not recorded)."""
    cpus = machine.get("cpu_count")
    loads = [
        x[0]
        for x in (machine.get("load_average_at_start"), machine.get("load_average_at_end"))
        if x
    ]
    if not cpus or not loads:
        return ""
    above = sum(x > cpus for x in loads)
    return f" Recorded 1-minute load averages above the CPU count: {above} of {len(loads)}."


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-queries", type=int, default=200)
    common.add_render_only(ap, NAME)
    args = ap.parse_args()
    if args.render_only:
        print(common.render_from_json(NAME, lambda r: "\n".join(latency_md(r))))
        return
    machine = common.machine_info(["torch"])
    import torch

    from dataprune.agents import AGPConfig, AGPPruner, mine_subgraphs
    from dataprune.agents.simulator import SimulatorEvaluator, make_environment
    from dataprune.models import load_encoder

    default_threads = torch.get_num_threads()
    env = make_environment(random_state=0)
    full = env.full_topology()
    train = env.make_queries(80, random_state=1)
    recs = mine_subgraphs(
        [q.text for q in train],
        full,
        SimulatorEvaluator(env, n_repeats=10),
        n_candidates=32,
        random_state=0,
        show_progress_bar=False,
    )
    encoder = load_encoder()
    agp = AGPPruner(
        base=full,
        config=AGPConfig(epochs=20),
        encoder=encoder,
        cache_embeddings=False,
        random_state=0,
    ).fit(recs)
    queries = [q.text for q in env.make_queries(args.n_queries, random_state=3)]
    results = {
        "command": "python benchmarks/agents_latency.py " + " ".join(sys.argv[1:]),
        "machine": machine,
        "torch_default_threads": default_threads,
        "n_queries": len(queries),
    }
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        agp.save(Path(tmp) / "model")
        results["save_ms"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        loaded = AGPPruner.load(Path(tmp) / "model", encoder=encoder)
        results["load_ms_without_encoder"] = (time.perf_counter() - t) * 1000
    for q in queries[:10]:
        loaded.predict(q)
    same = all(loaded.predict(q) == agp.predict(q) for q in queries[:20])
    results["loaded_matches_trained"] = bool(same)
    for label, n_threads in (
        ("n_threads=1 (default)", 1),
        (f"torch default ({default_threads} threads)", None),
    ):
        loaded.n_threads = n_threads
        for q in queries[:5]:
            loaded.predict(q)
        pred = timeit(loaded.predict, queries)
        if n_threads is not None:
            torch.set_num_threads(n_threads)
        enc = timeit(lambda q: encoder.encode([q], show_progress_bar=False), queries)
        torch.set_num_threads(default_threads)
        results[label] = {"predict": stats(pred), "encoder_only": stats(enc)}
        print(label, results[label], flush=True)
    loaded.n_threads = 1
    t = time.perf_counter()
    loaded.predict_many(queries)
    results["predict_many_ms_per_query"] = (time.perf_counter() - t) * 1000 / len(queries)
    common.record_end_load(machine)
    common.publish(NAME, "\n".join(latency_md(results)), results)


if __name__ == "__main__":
    main()
