"""Simulator benchmark: AGP vs AgentPrune-style, full, chain, star, random and the exact oracle.

Run:  .venv/bin/python benchmarks/agents_simulator.py [--seeds 5] [--quick]

For each seed a simulated pool of 6 agents is drawn (one specialist per query type, a generalist,
two distractors -- scenario "distractors"; or three generalists and no distractors -- scenario
"no_distractors"). Training queries are mined (Stage I: 64 random candidate sub-graphs of the full
mesh DAG per query, successive halving, each evaluation = 10 sampled runs), AGP is trained on the
records (Stage II) and every method predicts a topology per held-out query. Accuracy is the EXACT
expected accuracy of the predicted topology for the query's type (dynamic programming over the
propagation rule), tokens are the exact expected tokens; the oracle is the utility-optimal
sub-graph per type found by brute force over all 40,068 sub-graphs. Writes
benchmarks/results/agents_simulator.{json,md,png}.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks import _common as common  # noqa: E402

TOKEN_PENALTY = 0.1
METHODS = ["agp", "agp_noisefree", "agentprune", "full", "chain", "star", "random", "oracle"]
LABELS = {
    "agp": "AGP (Stage I mined with sampled runs)",
    "agp_noisefree": "AGP (Stage I with exact accuracies; ceiling)",
    "agentprune": "AgentPrune-style (global edges, PG + magnitude pruning)",
    "full": "full mesh DAG",
    "chain": "chain",
    "star": "star",
    "random": "random sub-graph",
    "oracle": "oracle (true type, brute force)",
}


def f1(pred: set, true: set) -> float:
    if not pred and not true:
        return 1.0
    tp = len(pred & true)
    if tp == 0:
        return 0.0
    p, r = tp / len(pred), tp / len(true)
    return 2 * p * r / (p + r)


def run_seed(scenario: str, seed: int, encoder, n_train: int, n_test: int) -> dict:
    from dataprune.agents import AgentPrunePruner, AGPConfig, AGPPruner, make_pruner, mine_subgraphs
    from dataprune.agents.simulator import (
        OraclePruner,
        SimulatorConfig,
        SimulatorEvaluator,
        make_environment,
    )

    cfg = (
        SimulatorConfig()
        if scenario == "distractors"
        else SimulatorConfig(n_generalists=3, n_distractors=0)
    )
    env = make_environment(cfg, random_state=seed)
    full = env.full_topology()
    ref = env.tokens(full)
    table = env.oracle_table()
    train = env.make_queries(n_train, random_state=1000 + seed)
    test = env.make_queries(n_test, random_state=2000 + seed)
    texts = [q.text for q in train]
    timings = {}
    t0 = time.perf_counter()
    noisy = SimulatorEvaluator(env, mode="sample", n_repeats=10, random_state=seed)
    recs = mine_subgraphs(
        texts,
        full,
        noisy,
        n_candidates=64,
        token_penalty=TOKEN_PENALTY,
        reference_tokens=ref,
        random_state=seed,
        show_progress_bar=False,
    )
    timings["mining_s"] = time.perf_counter() - t0
    evals_per_query = noisy.n_calls / len(texts)
    exact = SimulatorEvaluator(env, mode="expected")
    recs_exact = mine_subgraphs(
        texts,
        full,
        exact,
        n_candidates=64,
        token_penalty=TOKEN_PENALTY,
        reference_tokens=ref,
        random_state=seed,
        show_progress_bar=False,
    )
    pruners = {}
    t0 = time.perf_counter()
    pruners["agp"] = AGPPruner(
        base=full, config=AGPConfig(), encoder=encoder, cache_embeddings=False, random_state=seed
    ).fit(recs)
    timings["agp_fit_s"] = time.perf_counter() - t0
    pruners["agp_noisefree"] = AGPPruner(
        base=full, config=AGPConfig(), encoder=encoder, cache_embeddings=False, random_state=seed
    ).fit(recs_exact)
    t0 = time.perf_counter()
    ap_eval = SimulatorEvaluator(env, mode="sample", n_repeats=10, random_state=seed)
    pruners["agentprune"] = AgentPrunePruner(
        base=full, n_iterations=200, batch_size=4, token_penalty=TOKEN_PENALTY, random_state=seed
    ).fit(queries=texts, evaluator=ap_eval)
    timings["agentprune_fit_s"] = time.perf_counter() - t0
    agentprune_evals = ap_eval.n_calls
    pruners["full"] = make_pruner("full", base=full).fit()
    pruners["chain"] = make_pruner("chain", agents=env.agent_specs()).fit()
    pruners["star"] = make_pruner("star", agents=env.agent_specs()).fit()
    pruners["random"] = make_pruner("random", base=full, random_state=seed).fit()
    pruners["oracle"] = OraclePruner(env, token_penalty=TOKEN_PENALTY).fit()
    oracle_by_type = {
        t: env.oracle_topology(t, token_penalty=TOKEN_PENALTY) for t in range(env.n_types)
    }
    out = {
        "seed": seed,
        "timings": timings,
        "mining_evaluations_per_query": evals_per_query,
        "agentprune_evaluations": agentprune_evals,
        "full_tokens": ref,
        "methods": {},
    }
    tq = [q.text for q in test]
    for name in METHODS:
        tops = pruners[name].predict_many(tq)
        acc, tok, reg, mf1, ef1, nact, ned = [], [], [], [], [], [], []
        for top, q in zip(tops, test):
            a = env.expected_accuracy(top, q.qtype)
            k = env.tokens(top)
            o = oracle_by_type[q.qtype]
            acc.append(a)
            tok.append(k)
            reg.append(table.frontier_accuracy(q.qtype, k) - a)
            mf1.append(f1(set(top.active_names), set(o.active_names)))
            ef1.append(f1(set(top.edges()), set(o.edges())))
            nact.append(top.n_active_agents)
            ned.append(top.n_edges)
        out["methods"][name] = {
            "accuracy": float(np.mean(acc)),
            "tokens": float(np.mean(tok)),
            "tokens_saved_vs_full_pct": float(100 * (1 - np.mean(tok) / ref)),
            "regret_at_matched_tokens": float(np.mean(reg)),
            "mask_f1_vs_oracle": float(np.mean(mf1)),
            "edge_f1_vs_oracle": float(np.mean(ef1)),
            "n_active_agents": float(np.mean(nact)),
            "n_edges": float(np.mean(ned)),
        }
    # Executor cross-check on the simulated backend: really run AGP's topologies.
    from dataprune.agents import Executor, SimulatedBackend

    ex = Executor(SimulatedBackend(env, random_state=seed), max_workers=1)
    tops = pruners["agp"].predict_many(tq)
    runs = [ex.run(t, q.text) for t, q in zip(tops, test)]
    out["executor_check"] = {
        "empirical_accuracy": float(np.mean([r.answer == q.answer for r, q in zip(runs, test)])),
        "exact_accuracy": out["methods"]["agp"]["accuracy"],
        "ledger_tokens": float(np.mean([r.ledger.total_tokens for r in runs])),
        "exact_tokens": out["methods"]["agp"]["tokens"],
        "agents_called_per_query": float(
            np.mean([sum(x.status != "pruned" for x in r.runs) for r in runs])
        ),
    }
    frontier = {}
    grid = np.linspace(0, ref, 41)
    for t in range(env.n_types):
        frontier[t] = [table.frontier_accuracy(t, g) for g in grid]
    out["frontier"] = {
        "tokens": grid.tolist(),
        "accuracy": np.mean(list(frontier.values()), axis=0).tolist(),
    }
    return out


def summarize(per_seed: list[dict]) -> dict:
    summ = {}
    for name in METHODS:
        summ[name] = {}
        for metric in per_seed[0]["methods"][name]:
            m, h = common.t_ci95([s["methods"][name][metric] for s in per_seed])
            summ[name][metric] = {"mean": m, "ci95": h}
    paired = {}
    for a, b, metric in [
        ("agp", "full", "accuracy"),
        ("agp", "full", "tokens_saved_vs_full_pct"),
        ("agp", "agentprune", "regret_at_matched_tokens"),
        ("agp", "agentprune", "accuracy"),
        ("agp_noisefree", "full", "accuracy"),
        ("agp_noisefree", "agentprune", "regret_at_matched_tokens"),
    ]:
        d = [s["methods"][a][metric] - s["methods"][b][metric] for s in per_seed]
        m, h = common.t_ci95(d)
        paired[f"{a} - {b}: {metric}"] = {"mean": m, "ci95": h, "per_seed": d}
    return {"methods": summ, "paired": paired}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scen = list(results["scenarios"])
    fig, axes = plt.subplots(1, len(scen), figsize=(6 * len(scen), 4.5), squeeze=False)
    for ax, sc in zip(axes[0], scen):
        r = results["scenarios"][sc]
        per_seed = r["per_seed"]
        g = np.array(per_seed[0]["frontier"]["tokens"])
        fr = np.mean([s["frontier"]["accuracy"] for s in per_seed], axis=0)
        ax.plot(
            g, fr, color="grey", lw=1, ls="--", label="oracle frontier (best acc. at <= tokens)"
        )
        for name in METHODS:
            s = r["summary"]["methods"][name]
            ax.errorbar(
                s["tokens"]["mean"],
                s["accuracy"]["mean"],
                xerr=s["tokens"]["ci95"],
                yerr=s["accuracy"]["ci95"],
                fmt="o",
                capsize=3,
                label=name,
            )
        ax.set_xlabel("tokens per query (exact expectation)")
        ax.set_ylabel("accuracy (exact expectation)")
        ax.set_title(f"scenario: {sc} (mean +- 95% CI, {len(per_seed)} seeds)")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    from dataprune.atomic import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def write_md(results: dict, path: Path) -> None:
    lines = [
        "## Agent topologies on the simulator (`benchmarks/agents_simulator.py`)",
        "",
        f"Command: `{results['command']}`. {results['n_seeds']} seeds, {results['n_train']} training / "
        f"{results['n_test']} held-out queries per seed, 6 agents, 3 query types, token penalty "
        f"{results.get('token_penalty', TOKEN_PENALTY)}. Accuracy and tokens are exact "
        "expectations for each predicted topology "
        "(dynamic programming over the simulator's propagation rule, alpha=0.7, beta=0.1, majority "
        "decision); the oracle searches all 40,068 sub-graphs of the full mesh DAG per query type. "
        "Regret = best oracle accuracy reachable with at most the method's tokens minus the method's "
        "accuracy (per query). F1 = agreement of the active agents / edges with the oracle topology. "
        "Stage I mining: 64 random candidate sub-graphs per query, successive halving, each "
        "evaluation = 10 sampled runs; `agp_noisefree` mines with exact accuracies instead. "
        + common.machine_sentence(results.get("machine")),
        "",
    ]
    for sc, r in results["scenarios"].items():
        s = r["summary"]["methods"]
        lines += [
            f"### Scenario `{sc}`",
            "",
            "| method | accuracy | tokens / query | tokens saved vs full | regret @ matched tokens | mask F1 vs oracle | edge F1 vs oracle | agents | edges |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name in METHODS:
            m = s[name]

            def fmt(k, d=3, m=m):
                return f"{m[k]['mean']:.{d}f} ± {m[k]['ci95']:.{d}f}"

            lines.append(
                f"| {LABELS[name]} | {fmt('accuracy')} | {fmt('tokens', 0)} | "
                f"{fmt('tokens_saved_vs_full_pct', 1)}% | {fmt('regret_at_matched_tokens')} | "
                f"{fmt('mask_f1_vs_oracle')} | {fmt('edge_f1_vs_oracle')} | "
                f"{fmt('n_active_agents', 2)} | {fmt('n_edges', 2)} |"
            )
        lines += ["", "Paired differences (same seeds, mean ± 95% CI):", ""]
        for k, v in r["summary"]["paired"].items():
            lines.append(f"- {k}: {v['mean']:+.3f} ± {v['ci95']:.3f}")
        ec = [p["executor_check"] for p in r["per_seed"]]
        lines += [
            "",
            f"Executor cross-check (AGP topologies really run with the simulated backend, pruned "
            f"agents never called): empirical accuracy {np.mean([e['empirical_accuracy'] for e in ec]):.3f} vs exact "
            f"{np.mean([e['exact_accuracy'] for e in ec]):.3f}; ledger tokens {np.mean([e['ledger_tokens'] for e in ec]):.0f} "
            f"vs exact {np.mean([e['exact_tokens'] for e in ec]):.0f}; agents called per query "
            f"{np.mean([e['agents_called_per_query'] for e in ec]):.2f}.",
            f"Cost: Stage I used {np.mean([p['mining_evaluations_per_query'] for p in r['per_seed']]):.0f} "
            f"evaluations per training query (each 10 runs); AgentPrune-style used "
            f"{np.mean([p['agentprune_evaluations'] for p in r['per_seed']]):.0f} evaluations in total; "
            f"AGP Stage II trained in {np.mean([p['timings']['agp_fit_s'] for p in r['per_seed']]):.1f} s.",
            "",
        ]
        verdict = r["verdict"]
        lines += [f"Verdict: {verdict}", ""]
    lines += ["![accuracy vs tokens](results/agents_simulator.png)", ""]
    common.write_text(path, "\n".join(lines))


def verdict(summary: dict) -> str:
    s = summary["methods"]
    p = summary["paired"]
    saved = s["agp"]["tokens_saved_vs_full_pct"]["mean"]
    dacc = p["agp - full: accuracy"]
    dreg = p["agp - agentprune: regret_at_matched_tokens"]
    tok_ok = saved >= 50
    lo, hi = dacc["mean"] - dacc["ci95"], dacc["mean"] + dacc["ci95"]
    if lo > 0:
        acc_word = "significantly BETTER than the full graph"
    elif hi < 0:
        acc_word = "significantly WORSE than the full graph"
    else:
        acc_word = "not significantly different from the full graph (the CI spans 0)"
    reg_ok = dreg["mean"] + dreg["ci95"] < 0
    return (
        f"AGP uses {saved:.1f}% fewer tokens than the full graph (target >= 50%: "
        f"{'met' if tok_ok else 'NOT met'}); accuracy difference vs full {dacc['mean']:+.3f} ± "
        f"{dacc['ci95']:.3f}: {acc_word}; regret difference vs AgentPrune-style "
        f"{dreg['mean']:+.3f} ± {dreg['ci95']:.3f} "
        f"({'significantly lower regret' if reg_ok else 'NOT significantly lower regret'})."
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--n-train", type=int, default=120)
    ap.add_argument("--n-test", type=int, default=150)
    ap.add_argument("--scenarios", nargs="*", default=["distractors", "no_distractors"])
    ap.add_argument(
        "--rebuild",
        "--render-only",
        dest="rebuild",
        action="store_true",
        help="only rebuild the md/png (and the verdict strings in the JSON) from "
        "benchmarks/results/agents_simulator.json, recompute nothing",
    )
    args = ap.parse_args()
    out = HERE / "results"
    if args.rebuild:
        results = common.read_results("agents_simulator")
        for r in results["scenarios"].values():
            r["verdict"] = verdict(r["summary"])
        common.write_json(out / "agents_simulator.json", results)
        plot(results, out / "agents_simulator.png")
        write_md(results, out / "agents_simulator.md")
        common.rebuild_results_md()
        return
    machine = common.machine_info(["torch"])
    import torch

    torch.set_num_threads(1)
    from dataprune.models import load_encoder

    encoder = load_encoder()
    t0 = time.perf_counter()
    results = {
        "command": "python benchmarks/agents_simulator.py " + " ".join(sys.argv[1:]),
        "n_seeds": args.seeds,
        "n_train": args.n_train,
        "n_test": args.n_test,
        "token_penalty": TOKEN_PENALTY,
        "scenarios": {},
    }
    for sc in args.scenarios:
        per_seed = []
        for seed in range(args.seeds):
            per_seed.append(run_seed(sc, seed, encoder, args.n_train, args.n_test))
            print(
                sc,
                seed,
                {k: round(v["accuracy"], 3) for k, v in per_seed[-1]["methods"].items()},
                f"{time.perf_counter() - t0:.0f}s",
                flush=True,
            )
        summary = summarize(per_seed)
        results["scenarios"][sc] = {
            "per_seed": per_seed,
            "summary": summary,
            "verdict": verdict(summary),
        }
    results["wall_time_s"] = time.perf_counter() - t0
    results["machine"] = common.record_end_load(machine)
    common.write_json(out / "agents_simulator.json", results)
    plot(results, out / "agents_simulator.png")
    write_md(results, out / "agents_simulator.md")
    common.rebuild_results_md()
    for sc, r in results["scenarios"].items():
        print(sc, r["verdict"])


if __name__ == "__main__":
    main()
