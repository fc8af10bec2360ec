"""Simulator benchmark: AGP and PriorDynaFlow vs AgentPrune-style, full, chain, star, random and
the exact oracle.

Run:  .venv/bin/python benchmarks/agents_simulator.py [--seeds 5]   (resumable)
      .venv/bin/python benchmarks/agents_simulator.py --render-only   # md/png from the saved JSON

For each seed a simulated pool of 6 agents is drawn (one specialist per query type, a generalist,
two distractors -- scenario "distractors"; or three generalists and no distractors -- scenario
"no_distractors"). Training queries are mined (Stage I: 64 random candidate sub-graphs of the full
mesh DAG per query, successive halving, each evaluation = 10 sampled runs), AGP is trained on the
records (Stage II) and every method predicts a topology per held-out query. Accuracy is the EXACT
expected accuracy of the predicted topology for the query's type (dynamic programming over the
propagation rule), tokens are the exact expected tokens; the oracle is the utility-optimal
sub-graph per type found by brute force over all 40,068 sub-graphs. PriorDynaFlow (a dynamic
workflow policy, trained per seed on the same training queries at two progress-noise levels) is
added by :mod:`benchmarks.agents_simulator_flow`, which documents its evaluation, training budget
and the matched-token comparison with AGP. Training budgets are counted in agent calls (Stage I:
active agents x rounds x 10 runs per evaluation). Every finished (scenario, seed) part is
checkpointed in the dataprune cache, so an interrupted run resumes (``--no-resume`` ignores it).
Writes benchmarks/results/agents_simulator.{json,md,png} and rebuilds benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks import _common as common  # noqa: E402
from benchmarks import agents_simulator_flow as flow  # noqa: E402
from benchmarks.agents_simulator_render import METHODS, plot, render  # noqa: E402

NAME = "agents_simulator"
TOKEN_PENALTY = 0.1
#: Bumped when the static part of a seed changes (invalidates its checkpoints).
STATIC_VERSION = 2
#: AGP's predict-time token budgets (fractions of the full graph's tokens) for its matched-token
#: curve; the unbudgeted prediction is the curve's last point.
AGP_BUDGETS = (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7)


def f1(pred: set, true: set) -> float:
    if not pred and not true:
        return 1.0
    tp = len(pred & true)
    if tp == 0:
        return 0.0
    p, r = tp / len(pred), tp / len(true)
    return 2 * p * r / (p + r)


def counting_evaluator(env, **kwargs):
    """A :class:`SimulatorEvaluator` that also counts the agent calls its runs would make
    (active agents x rounds, plus a decision agent, x ``n_repeats`` per evaluation)."""
    from dataprune.agents.simulator import SimulatorEvaluator

    class Counting(SimulatorEvaluator):
        agent_calls = 0

        def evaluate(self, query, topology):
            per_run = topology.n_active_agents * topology.rounds + (topology.decision is not None)
            self.agent_calls += per_run * self.n_repeats
            return super().evaluate(query, topology)

    return Counting(env, **kwargs)


def run_seed(scenario: str, seed: int, encoder, n_train: int, n_test: int) -> dict:
    from dataprune.agents import AgentPrunePruner, AGPConfig, AGPPruner, make_pruner, mine_subgraphs
    from dataprune.agents.simulator import (
        SCENARIOS,
        OraclePruner,
        SimulatorEvaluator,
        make_environment,
    )

    env = make_environment(SCENARIOS.get(scenario), random_state=seed)
    full = env.full_topology()
    ref = env.tokens(full)
    table = env.oracle_table()
    train = env.make_queries(n_train, random_state=1000 + seed)
    test = env.make_queries(n_test, random_state=2000 + seed)
    texts = [q.text for q in train]
    timings = {}
    t0 = time.perf_counter()
    noisy = counting_evaluator(env, mode="sample", n_repeats=10, random_state=seed)
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
    ap_eval = counting_evaluator(env, mode="sample", n_repeats=10, random_state=seed)
    pruners["agentprune"] = AgentPrunePruner(
        base=full, n_iterations=200, batch_size=4, token_penalty=TOKEN_PENALTY, random_state=seed
    ).fit(queries=texts, evaluator=ap_eval)
    timings["agentprune_fit_s"] = time.perf_counter() - t0
    agentprune_evals = ap_eval.n_calls
    pruners["majority"] = make_pruner("majority", base=full).fit(recs)
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
        "training_agent_calls": {
            "agp": noisy.agent_calls,
            "agp_noisefree": 0,
            "agentprune": ap_eval.agent_calls,
        },
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
    # AGP's accuracy-vs-tokens curve under predict-time token budgets (matched-token comparison).
    curve = []
    agp = pruners["agp"]
    for frac in AGP_BUDGETS:
        agp.token_budget = frac * ref
        tops = agp.predict_many(tq)
        curve.append(
            {
                "budget_fraction": frac,
                "accuracy": float(
                    np.mean([env.expected_accuracy(t, q.qtype) for t, q in zip(tops, test)])
                ),
                "tokens": float(np.mean([env.tokens(t) for t in tops])),
            }
        )
    agp.token_budget = None
    m = out["methods"]["agp"]
    curve.append({"budget_fraction": None, "accuracy": m["accuracy"], "tokens": m["tokens"]})
    out["agp_budget_curve"] = curve
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
        ("agp", "majority", "accuracy"),
        ("agp", "majority", "tokens_saved_vs_full_pct"),
        ("agp", "majority", "regret_at_matched_tokens"),
    ]:
        d = [s["methods"][a][metric] - s["methods"][b][metric] for s in per_seed]
        m, h = common.t_ci95(d)
        paired[f"{a} - {b}: {metric}"] = {"mean": m, "ci95": h, "per_seed": d}
    calls = {}
    for name in per_seed[0].get("training_agent_calls", {}):
        m, h = common.t_ci95([s["training_agent_calls"][name] for s in per_seed])
        calls[name] = {"mean": m, "ci95": h}
    return {"methods": summ, "paired": paired, "training_agent_calls": calls}


def summarize_scenario(r: dict) -> None:
    """(Re)compute a scenario's summaries and verdicts from its per-seed records, in place."""
    r["summary"] = summarize(r["per_seed"])
    r["verdict"] = verdict(r["summary"])
    if r.get("flow_per_seed"):
        r["flow_summary"] = flow.summarize_flow(r["per_seed"], r["flow_per_seed"])
        r["flow_targets"] = {
            noise: {v: flow.target(r["flow_summary"], noise, v) for v in flow.FLOW_VARIANTS}
            for noise in r["flow_summary"]
        }


def summarize_dev(d: dict) -> None:
    d["flow_summary"] = flow.summarize_flow([], d["flow_per_seed"], dev=True)
    d["flow_targets"] = {
        noise: {v: flow.target(d["flow_summary"], noise, v) for v in flow.FLOW_VARIANTS}
        for noise in d["flow_summary"]
    }


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
    text = (
        f"AGP uses {saved:.1f}% fewer tokens than the full graph (target >= 50%: "
        f"{'met' if tok_ok else 'NOT met'}); accuracy difference vs full {dacc['mean']:+.3f} ± "
        f"{dacc['ci95']:.3f}: {acc_word}; regret difference vs AgentPrune-style "
        f"{dreg['mean']:+.3f} ± {dreg['ci95']:.3f} "
        f"({'significantly lower regret' if reg_ok else 'NOT significantly lower regret'})."
    )
    if "agp - majority: accuracy" in p:  # runs before the fixed-majority baseline lack it
        text += " " + _versus_fixed(p)
    return text


def _versus_fixed(p: dict) -> str:
    """AGP against the one fixed topology of its own Stage I records (per query vs fixed)."""

    def word(d: dict, lower_is_better: bool) -> str:
        lo, hi = d["mean"] - d["ci95"], d["mean"] + d["ci95"]
        good, bad = (hi < 0, lo > 0) if lower_is_better else (lo > 0, hi < 0)
        return (
            "significantly better"
            if good
            else ("significantly worse" if bad else "no significant difference")
        )

    acc = p["agp - majority: accuracy"]
    tok = p["agp - majority: tokens_saved_vs_full_pct"]
    reg = p["agp - majority: regret_at_matched_tokens"]
    return (
        f"Against the fixed majority topology of the same Stage I records (one topology for "
        f"every query): accuracy {acc['mean']:+.3f} ± {acc['ci95']:.3f} "
        f"({word(acc, False)}), tokens saved vs full {tok['mean']:+.1f} ± {tok['ci95']:.1f} "
        f"points, regret at matched tokens {reg['mean']:+.3f} ± {reg['ci95']:.3f} "
        f"({word(reg, True)})."
    )


# ------------------------------------------------------------------------------ checkpoints
def _key(obj: dict) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:10]


class Checkpoint:
    """Finished parts in a JSON-lines file of the dataprune cache (appended as they finish)."""

    def __init__(self, part: str, key: dict, *, resume: bool) -> None:
        from dataprune.cache import cache_dir

        self.path = cache_dir("benchmarks") / f"{NAME}-{part}-{_key(key)}.jsonl"
        self.done: dict[tuple, dict] = {}
        if resume and self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by an interruption
                    continue
                self.done[(rec["scenario"], rec["seed"])] = rec["data"]
            print(f"resuming: {len(self.done)} {part} parts in {self.path}", flush=True)

    def get(self, scenario: str, seed: int) -> dict | None:
        return self.done.get((scenario, seed))

    def put(self, scenario: str, seed: int, data: dict) -> None:
        self.done[(scenario, seed)] = data
        line = json.dumps({"scenario": scenario, "seed": seed, "data": data}, default=float)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


def publish(results: dict, out_dir: Path = common.RESULTS) -> None:
    """Summaries and verdicts from the per-seed records, then the JSON, md, png and (for the
    results folder) RESULTS.md."""
    for r in results["scenarios"].values():
        summarize_scenario(r)
    for d in (results.get("dev") or {}).values():
        summarize_dev(d)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot(results, out_dir / f"{NAME}.png")
    common.publish(NAME, render(results), results, out_dir=out_dir)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--n-train", type=int, default=120)
    ap.add_argument("--n-test", type=int, default=150)
    ap.add_argument("--scenarios", nargs="*", default=["distractors", "no_distractors"])
    ap.add_argument("--no-flow", action="store_true", help="leave PriorDynaFlow out")
    ap.add_argument("--no-dev", action="store_true", help="skip the development seeds")
    ap.add_argument("--no-resume", action="store_true", help="ignore checkpointed parts")
    ap.add_argument(
        "--output-dir", type=Path, default=common.RESULTS, help="where the results go (smoke runs)"
    )
    common.add_render_only(ap, NAME, "--rebuild")
    args = ap.parse_args()
    if args.render_only:
        publish(common.read_results(NAME))
        return
    machine = common.machine_info(["torch"])
    import torch

    torch.set_num_threads(1)
    static_ck = Checkpoint(
        "static",
        {"n_train": args.n_train, "n_test": args.n_test, "v": STATIC_VERSION, "tp": TOKEN_PENALTY},
        resume=not args.no_resume,
    )
    flow_ck = Checkpoint(
        "flow",
        {"n_train": args.n_train, "n_test": args.n_test, **flow.config_key(TOKEN_PENALTY)},
        resume=not args.no_resume,
    )
    encoder = None
    t0 = time.perf_counter()
    results = {
        "command": "python benchmarks/agents_simulator.py " + " ".join(sys.argv[1:]),
        "n_seeds": args.seeds,
        "n_train": args.n_train,
        "n_test": args.n_test,
        "token_penalty": TOKEN_PENALTY,
        "agp_budgets": list(AGP_BUDGETS),
        "scenarios": {},
    }
    if not args.no_flow:
        results.update(
            noise_levels=list(flow.NOISE_LEVELS),
            proposal_noise=flow.PROPOSAL_NOISE,
            sweep=list(flow.SWEEP),
            dev_seeds=list(flow.DEV_SEEDS),
        )
    for sc in args.scenarios:
        per_seed, flow_seeds = [], []
        for seed in range(args.seeds):
            rec = static_ck.get(sc, seed)
            if rec is None:
                if encoder is None:
                    from dataprune.models import load_encoder

                    encoder = load_encoder()
                rec = run_seed(sc, seed, encoder, args.n_train, args.n_test)
                static_ck.put(sc, seed, rec)
            per_seed.append(rec)
            msg = {k: round(v["accuracy"], 3) for k, v in rec["methods"].items()}
            if not args.no_flow:
                fr = flow_ck.get(sc, seed)
                if fr is None:
                    fr = flow.run_flow_seed(
                        sc, seed, args.n_train, args.n_test, token_penalty=TOKEN_PENALTY
                    )
                    flow_ck.put(sc, seed, fr)
                flow_seeds.append(fr)
                for noise, per in fr["noise"].items():
                    msg[f"flow@{noise}"] = round(per["flow"]["accuracy"], 3)
            print(sc, seed, msg, f"{time.perf_counter() - t0:.0f}s", flush=True)
        results["scenarios"][sc] = {"per_seed": per_seed}
        if flow_seeds:
            results["scenarios"][sc]["flow_per_seed"] = flow_seeds
    if not args.no_flow and not args.no_dev:
        results["dev"] = {}
        for sc in args.scenarios:
            dev = []
            for seed in flow.DEV_SEEDS:
                fr = flow_ck.get(f"dev:{sc}", seed)
                if fr is None:
                    fr = flow.run_flow_seed(
                        sc, seed, args.n_train, args.n_test, token_penalty=TOKEN_PENALTY, dev=True
                    )
                    flow_ck.put(f"dev:{sc}", seed, fr)
                dev.append(fr)
            results["dev"][sc] = {"seeds": list(flow.DEV_SEEDS), "flow_per_seed": dev}
    results["wall_time_s"] = time.perf_counter() - t0
    results["machine"] = common.record_end_load(machine)
    publish(results, args.output_dir)
    for sc, r in results["scenarios"].items():
        print(sc, r["verdict"])
        for noise, tv in (r.get("flow_targets") or {}).items():
            for v, t in tv.items():
                print(" ", flow.target_sentence(t, f"{v} noise {noise}"))


if __name__ == "__main__":
    main()
