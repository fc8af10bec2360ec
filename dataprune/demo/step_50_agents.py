"""Demo step: mine Stage I records on the simulator, train AGP, predict and run a topology; then
train a PriorDynaFlow policy on the same simulator and run the same query dynamically."""

from __future__ import annotations

from typing import Any

TITLE = (
    "Multi-agent topologies: mine sub-graphs, train AGP, predict and run a pruned topology; "
    "a dynamic PriorDynaFlow run next to it"
)


def run(ctx: Any) -> list[str]:
    import json

    import numpy as np

    from dataprune.agents import (
        AGPConfig,
        AGPPruner,
        Executor,
        MajorityPruner,
        SimulatedBackend,
        mine_subgraphs,
    )
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
    fixed = MajorityPruner(base=full).fit(records).predict("")  # one topology for every query
    fixed_acc = float(np.mean([env.expected_accuracy(fixed, q.qtype) for q in test]))
    fixed_tok = env.tokens(fixed)
    lines = [
        f"simulated pool of {env.n_agents} agents ({', '.join(a.name for a in env.agents)}), "
        f"{env.n_types} query types",
        f"Stage I: mined {len(records)} records (32 candidate sub-graphs per query, successive "
        f"halving, 10 simulated runs per evaluation) -> {rec_path}",
        f"Stage II: AGP trained in {agp.history_[-1]['steps']} steps -> {model_dir}",
        f"held-out {len(test)} queries: AGP accuracy {acc:.3f} with {tok:.0f} tokens/query vs "
        f"full graph {full_acc:.3f} with {full_tok:.0f} ({100 * (1 - tok / full_tok):.0f}% fewer tokens)",
        f"  one fixed topology for every query (the records' per-position majority, "
        f"MajorityPruner): {fixed_acc:.3f} with {fixed_tok:.0f} tokens, "
        f"{fixed.n_active_agents} agents",
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
    lines += _dynamic_run(ctx, env, train, q, top, result.ledger.total_tokens)
    return lines


def _dynamic_run(
    ctx: Any, env: Any, train: list, q: Any, agp_top: Any, agp_tokens: int
) -> list[str]:
    """Train a PriorDynaFlow policy on the simulator (noisy progress reports) and run ``q``."""
    import json

    from dataprune.agents import FlowConfig, FlowExecutor, FlowPolicy
    from dataprune.agents.simulator import SimulatedFlowBackend, SimulatorFlowEvaluator
    from dataprune.atomic import atomic_write

    rs = ctx.random_state
    evaluator = SimulatorFlowEvaluator(env, progress_noise=0.2, random_state=rs)
    policy = FlowPolicy(config=FlowConfig(n_epochs=8), random_state=rs).fit(
        [x.text for x in train], evaluator
    )
    policy_path = policy.save(ctx.output_dir / "flow_policy.json")
    trace = FlowExecutor(SimulatedFlowBackend(env, progress_noise=0.2, random_state=rs)).run_flow(
        policy, q.text
    )
    steps = [
        f"{s.agent} (progress {s.proposal.progress}, proposes {s.proposal.next})"
        for s in trace.steps
    ]
    flow_top = trace.to_topology()
    with atomic_write(ctx.output_dir / "flow_topology.mmd") as fh:
        fh.write(flow_top.to_mermaid())
    with atomic_write(ctx.output_dir / "flow_trace.json") as fh:
        fh.write(json.dumps(trace.to_dict(), indent=2))
    return [
        f"PriorDynaFlow: policy trained on the same {len(train)} queries in "
        f"{policy.n_episodes_} episodes (progress reports wrong 20% of the time) -> {policy_path}",
        f"dynamic run of the same query: path {' -> '.join([*trace.path, 'STOP'])}",
        *(f"  step {i}: {s}" for i, s in enumerate(steps, start=1)),
        f"  answer {trace.answer!r} (truth {q.answer!r}), {trace.total_tokens} tokens, stopped by "
        f"{trace.stopped_by}; AGP's topology ran {agp_top.n_active_agents} agents with "
        f"{agp_tokens} tokens",
        f"dynamic topology mermaid -> {ctx.output_dir / 'flow_topology.mmd'}, trace -> "
        f"{ctx.output_dir / 'flow_trace.json'}",
    ]
