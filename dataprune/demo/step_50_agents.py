"""Demo step: mine Stage I records on the simulator, train AGP, predict and run a topology."""

from __future__ import annotations

from typing import Any

TITLE = "Multi-agent topologies: mine sub-graphs, train AGP, predict and run a pruned topology"


def run(ctx: Any) -> list[str]:
    import json

    import numpy as np

    from dataprune.agents import AGPConfig, AGPPruner, Executor, SimulatedBackend, mine_subgraphs
    from dataprune.agents.simulator import SimulatorEvaluator, make_environment
    from dataprune.atomic import atomic_write, atomic_write_json
    from dataprune.models import load_encoder

    rs = ctx.random_state
    env = make_environment(random_state=rs)
    full = env.full_topology()
    train = env.make_queries(120, random_state=rs + 1)
    test = env.make_queries(60, random_state=rs + 2)
    evaluator = SimulatorEvaluator(env, n_repeats=10, random_state=rs)
    records = mine_subgraphs(
        [q.text for q in train], full, evaluator, n_candidates=32, random_state=rs
    )
    rec_path = ctx.output_dir / "agp_records.json"
    atomic_write_json(rec_path, records)
    encoder = ctx.state.get("encoder") or load_encoder()
    agp = AGPPruner(
        base=full,
        config=AGPConfig(epochs=30),
        encoder=encoder,
        cache_embeddings=False,
        random_state=rs,
    ).fit(records)
    model_dir = agp.save(ctx.output_dir / "agp_model")
    tops = agp.predict_many([q.text for q in test])
    acc = float(np.mean([env.expected_accuracy(t, q.qtype) for t, q in zip(tops, test)]))
    tok = float(np.mean([env.tokens(t) for t in tops]))
    full_acc = float(np.mean([env.expected_accuracy(full, q.qtype) for q in test]))
    full_tok = env.tokens(full)
    lines = [
        f"simulated pool of {env.n_agents} agents ({', '.join(a.name for a in env.agents)}), "
        f"{env.n_types} query types",
        f"Stage I: mined {len(records)} records (32 candidate sub-graphs per query, successive "
        f"halving, 10 simulated runs per evaluation) -> {rec_path}",
        f"Stage II: AGP trained in {agp.history_[-1]['steps']} steps -> {model_dir}",
        f"held-out {len(test)} queries: AGP accuracy {acc:.3f} with {tok:.0f} tokens/query vs "
        f"full graph {full_acc:.3f} with {full_tok:.0f} ({100 * (1 - tok / full_tok):.0f}% fewer tokens)",
    ]
    q = test[0]
    top = agp.predict(q.text)
    lines.append(f"query ({env.type_names[q.qtype]}): {q.text[:70]}")
    lines += ["  " + ln for ln in top.describe().splitlines()]
    result = Executor(SimulatedBackend(env)).run(top, q.text)
    lines.append(
        f"executed on the simulated backend: answer {result.answer!r} (truth {q.answer!r}), "
        f"{result.ledger.total_tokens} tokens, skipped (never called): {', '.join(result.skipped) or 'none'}"
    )
    with atomic_write(ctx.output_dir / "topology.mmd") as fh:
        fh.write(top.to_mermaid())
    with atomic_write(ctx.output_dir / "execution.json") as fh:
        fh.write(json.dumps(result.to_dict(), indent=2))
    lines.append(
        f"mermaid -> {ctx.output_dir / 'topology.mmd'}, run log -> {ctx.output_dir / 'execution.json'}"
    )
    return lines
