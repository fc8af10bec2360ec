"""``dataprune agents``: train an AGP pruner, predict a topology for a query, export topologies;
train and run PriorDynaFlow dynamic-workflow policies (``flow-train``, ``flow-run``)."""

from __future__ import annotations

import argparse

from dataprune.agents.agp.config import AGPConfig
from dataprune.agents.flow.config import FlowConfig
from dataprune.agents.flow.context import CONTEXTS
from dataprune.cli._common import (
    Subparsers,
    non_negative_float,
    non_negative_int,
    positive_int,
)
from dataprune.cli.config_options import add_config_options, config_from_args

ORDER = 60

EXPORT_FORMATS = ("langgraph", "autogen", "mermaid", "json", "crewai")
PRESETS = ("full", "chain", "star", "layered", "random")


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "agents",
        help="multi-agent topologies: train AGP, predict a pruned topology, export to frameworks",
    )
    asub = p.add_subparsers(dest="agents_command", metavar="ACTION")
    p.set_defaults(run=_no_action, _parser=p)

    t = asub.add_parser(
        "train",
        help="Stage II: train an AGP pruner on Stage I records (AGP format, mask 1 = pruned)",
    )
    _add_agp_training_options(t)
    t.add_argument("--output", "-o", required=True, help="model directory to write")
    t.add_argument(
        "--overwrite", action="store_true", help="replace an existing non-empty model directory"
    )
    t.add_argument("--random-state", type=int, default=0)
    t.set_defaults(run=run_train)

    from dataprune.cli.agents_evaluate import add_evaluate_parser

    add_evaluate_parser(asub, _add_agp_training_options)

    r = asub.add_parser("predict", help="predict the pruned topology for a query")
    r.add_argument("--model", required=True, help="model directory from `dataprune agents train`")
    r.add_argument("--query", required=True)
    r.add_argument("--json", action="store_true", help="print the topology as JSON")
    r.add_argument("--sample", action="store_true", help="sample instead of thresholding (seeded)")
    r.add_argument("--max-agents", type=positive_int, default=None)
    r.add_argument("--required", nargs="*", default=None, help="agents that must run")
    r.add_argument(
        "--token-budget", type=non_negative_float, default=None, help="token budget per query"
    )
    r.add_argument("--random-state", type=int, default=None)
    r.set_defaults(run=run_predict)

    e = asub.add_parser(
        "export", help="export a topology to LangGraph, AutoGen, mermaid, JSON or CrewAI"
    )
    e.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--topology", help="topology JSON file (from `predict --json` or Topology.save)"
    )
    src.add_argument("--model", help="AGP model directory (with --query)")
    src.add_argument("--preset", choices=PRESETS, help="a preset over --agents")
    src.add_argument(
        "--majority-of",
        metavar="RECORDS",
        help="the one fixed topology of Stage I records: each agent and edge kept when most "
        "records keep it (MajorityPruner; what `agents evaluate` compares AGP with)",
    )
    e.add_argument("--query", help="query for --model")
    e.add_argument("--agents", help="agent pool JSON for --preset (optional for --majority-of)")
    e.add_argument("--random-state", type=int, default=0, help="seed of the random preset")
    e.add_argument("--output", "-o", default=None, help="file to write (default: stdout)")
    e.set_defaults(run=run_export)

    ft = asub.add_parser(
        "flow-train",
        help="train a PriorDynaFlow policy (next agent chosen at run time) on the simulator or "
        "on real agents",
    )
    src = ft.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--simulator",
        metavar="SCENARIO",
        help="train on a simulated pool: distractors or no_distractors",
    )
    src.add_argument(
        "--agents",
        help="JSON file with the agent pool (list of {name, role, profile, llm, ...}); "
        "needs --queries",
    )
    ft.add_argument(
        "--queries", help="JSON list or JSONL of {query, answer} (training queries for --agents)"
    )
    ft.add_argument(
        "--n-queries", type=positive_int, default=200, help="simulated training queries"
    )
    ft.add_argument(
        "--progress-noise",
        type=non_negative_float,
        default=0.2,
        help="simulator: probability that an agent misjudges its own progress (default 0.2)",
    )
    ft.add_argument(
        "--proposal-noise",
        type=non_negative_float,
        default=0.1,
        help="simulator: probability of a random proposal (default 0.1)",
    )
    ft.add_argument("--output", "-o", required=True, help="policy JSON file to write")
    add_config_options(
        ft,
        FlowConfig,
        fields=(
            "n_epochs",
            "cost_weight",
            "learning_rate",
            "epsilon",
            "proposal_bonus",
            "prune_threshold",
            "prune_min_visits",
            "max_steps",
            "token_budget",
            "context",
            "start_agent",
        ),
        types={
            "n_epochs": non_negative_int,
            "cost_weight": non_negative_float,
            "proposal_bonus": non_negative_float,
            "prune_min_visits": non_negative_int,
            "max_steps": positive_int,
            "token_budget": non_negative_float,
        },
        choices={"context": CONTEXTS.names()},
    )
    ft.add_argument("--random-state", type=int, default=0)
    ft.set_defaults(run=run_flow_train)

    fr = asub.add_parser("flow-run", help="run a query as a dynamic workflow chosen by a policy")
    fr.add_argument("--policy", required=True, help="policy JSON file from `flow-train`")
    fr.add_argument("--query", required=True)
    fr.add_argument(
        "--json", action="store_true", help="print the trace (and its topology) as JSON"
    )
    fr.add_argument("--max-steps", type=positive_int, default=None)
    fr.add_argument(
        "--token-budget", type=non_negative_float, default=None, help="token budget per query"
    )
    fr.add_argument(
        "--agents",
        help="JSON agent pool whose llm configs answer for those agents (names from the policy)",
    )
    fr.set_defaults(run=run_flow_run)


def _no_action(args: argparse.Namespace) -> int:
    args._parser.print_help()
    return 2


def _add_agp_training_options(parser: argparse.ArgumentParser) -> None:
    """What ``train`` and ``evaluate`` share: the records, the agent pool, the encoder and AGP's
    training options (defaults and help from AGPConfig, one source)."""
    parser.add_argument(
        "--records", required=True, help="JSON list or JSONL of {task, edge_weight, mask}"
    )
    parser.add_argument(
        "--agents",
        help="JSON file with the agent pool (list of {name, role, profile, ...}); "
        "default agent_0..agent_{N-1}",
    )
    parser.add_argument(
        "--encoder", default=None, help="sentence encoder (default all-MiniLM-L6-v2)"
    )
    add_config_options(
        parser,
        AGPConfig,
        fields=(
            "epochs",
            "max_steps",
            "batch_size",
            "learning_rate",
            "hidden_dim",
            "init_from_prior",
            "validation_fraction",
            "patience",
        ),
        types={
            "epochs": positive_int,
            "max_steps": positive_int,
            "batch_size": positive_int,
            "hidden_dim": positive_int,
            "validation_fraction": non_negative_float,
            "patience": positive_int,
        },
    )


def _load_agents(path: str) -> list:
    from pathlib import Path

    from dataprune.agents.spec import as_agent_specs
    from dataprune.errors import DataValidationError
    from dataprune.io.readers import read_json_file

    p = Path(path)
    data = read_json_file(p, "agent file")
    if isinstance(data, dict) and "agents" in data:
        data = data["agents"]
    if not isinstance(data, list):
        raise DataValidationError(
            'expected a JSON list of agents (or {"agents": [...]})', source=str(p)
        )
    try:
        return list(as_agent_specs(data))
    except DataValidationError as exc:
        raise DataValidationError(str(exc), source=str(p)) from None


def run_train(args: argparse.Namespace) -> int:
    from dataprune.agents.agp import AGPPruner
    from dataprune.agents.records import load_agp_records
    from dataprune.atomic import atomic_dir
    from dataprune.io import file_sha256
    from dataprune.manifest import RunTimer, build_manifest, write_manifest
    from dataprune.models import resolve_encoder
    from dataprune.outputs import check_output

    timer = RunTimer()
    check_output(
        args.output,
        kind="dir",
        inputs=(args.records, args.agents, args.encoder),
        overwrite=args.overwrite,
    )
    agents = _load_agents(args.agents) if args.agents else None
    recs = load_agp_records(args.records, n_agents=len(agents) if agents else None)
    config = config_from_args(AGPConfig, args)
    pruner = AGPPruner(agents, config=config, random_state=args.random_state).fit(recs)
    with atomic_dir(args.output) as tmp:
        pruner.save(tmp)
    final = pruner.history_[-1]
    manifest = build_manifest(
        command="dataprune agents train",
        parameters={**config.to_dict(), "agents": args.agents},
        random_state=args.random_state,
        inputs={str(args.records): file_sha256(args.records)},
        counts={"n_records": len(recs), "n_agents": recs.n_agents},
        models={"encoder": resolve_encoder(args.encoder).describe()},
        outputs={"model": str(args.output)},
        timer=timer,
        extra={"final_loss": final},
    )
    write_manifest(args.output, manifest)
    print(
        f"trained AGP on {len(recs)} records ({recs.n_agents} agents, {final['steps']} steps, "
        f"final loss {final['loss']:.4f}) -> {args.output} ({timer.elapsed:.1f} s)"
    )
    return 0


def _predict(args: argparse.Namespace):
    from dataprune.agents.agp import AGPPruner
    from dataprune.errors import DataValidationError

    if not args.query or not args.query.strip():
        raise DataValidationError("--query must be a non-empty string")
    pruner = AGPPruner.load(args.model)
    return pruner.predict(
        args.query,
        sample=getattr(args, "sample", False),
        random_state=args.random_state,
        max_agents=getattr(args, "max_agents", None),
        token_budget=getattr(args, "token_budget", None),
        required=getattr(args, "required", None),
    )


def run_predict(args: argparse.Namespace) -> int:
    top = _predict(args)
    if args.json:
        print(top.to_json())
    else:
        print(top.describe())
    return 0


def run_export(args: argparse.Namespace) -> int:
    import json

    from dataprune.agents.topology import Topology
    from dataprune.atomic import atomic_write
    from dataprune.errors import DataValidationError
    from dataprune.outputs import check_output

    if args.output is not None:  # never the --topology / --agents / --model it reads
        check_output(args.output, inputs=(args.topology, args.agents, args.model, args.majority_of))
    if args.topology:
        top = Topology.load(args.topology)
    elif args.majority_of:
        from dataprune.agents.baselines import MajorityPruner

        agents = _load_agents(args.agents) if args.agents else None
        top = MajorityPruner(agents).fit(args.majority_of).predict("")
    elif args.model:
        if not args.query:
            raise DataValidationError("--model needs --query (the topology is predicted per query)")
        args.sample = False
        args.max_agents = args.token_budget = args.required = None
        args.random_state = None
        top = _predict(args)
    else:
        if not args.agents:
            raise DataValidationError("--preset needs --agents (a JSON agent pool)")
        agents = _load_agents(args.agents)
        kw = {"random_state": args.random_state} if args.preset == "random" else {}
        top = Topology.preset(args.preset, agents, **kw)
    fmt = args.format
    if fmt == "json":
        text = top.to_json() + "\n"
    elif fmt == "mermaid":
        text = top.to_mermaid()
    elif fmt == "langgraph":
        from dataprune.agents.export import langgraph_source

        text = langgraph_source(top, command=f"dataprune agents export --format {fmt}")
    elif fmt == "autogen":
        from dataprune.agents.export import to_autogen_transitions

        nodes, edges = top.unrolled()
        payload = {
            "format": "dataprune.autogen",
            "allowed_speaker_transitions": to_autogen_transitions(top),
            "speaker_transitions_type": "allowed",
            "graph_flow": {
                "nodes": [{"name": n, "agent": a, "round": r} for n, a, r in nodes]
                + (
                    [{"name": top.decision.name, "agent": top.decision.name, "round": top.rounds}]
                    if top.decision
                    else []
                ),
                "edges": [{"source": s, "target": d} for s, d in edges]
                + (
                    [
                        {"source": n, "target": top.decision.name}
                        for n, _, r in nodes
                        if r == top.rounds
                    ]
                    if top.decision
                    else []
                ),
            },
            "agents": [top.agent(nm).to_dict() for nm in top.active_names],
        }
        text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    else:  # crewai
        text = json.dumps(top.to_crewai_tasks(), indent=2, ensure_ascii=False) + "\n"
    if args.output:
        with atomic_write(args.output) as fh:
            fh.write(text)
        print(
            f"wrote {fmt} export of {top.n_active_agents} agents / {top.n_edges} edges -> {args.output}"
        )
    else:
        print(text, end="")
    return 0


# ---------------------------------------------------------------------- dynamic workflows
def _load_answers(path: str) -> dict[str, str]:
    from pathlib import Path

    from dataprune.errors import DataValidationError
    from dataprune.io import load_records

    p = Path(path)
    if not p.is_file():
        raise DataValidationError("queries file not found", source=str(p))
    out: dict[str, str] = {}
    for i, rec in enumerate(load_records(str(p)).records):
        q, a = rec.get("query"), rec.get("answer")
        if not isinstance(q, str) or not q.strip() or a is None:
            raise DataValidationError(
                "expected {query: non-empty string, answer}", source=str(p), record=i
            )
        out[q] = str(a)
    if not out:
        raise DataValidationError("no training queries", source=str(p))
    return out


def run_flow_train(args: argparse.Namespace) -> int:
    from dataprune.agents.flow import FlowEvaluator, FlowPolicy, exact_match_scorer
    from dataprune.errors import DataValidationError
    from dataprune.io import file_sha256
    from dataprune.manifest import RunTimer, build_manifest, write_manifest
    from dataprune.outputs import check_output

    timer = RunTimer()
    check_output(args.output, inputs=(args.agents, args.queries))
    config = config_from_args(FlowConfig, args)
    inputs: dict[str, str] = {}
    if args.simulator:
        from dataprune.agents.simulator import (
            SCENARIOS,
            SimulatorFlowEvaluator,
            make_environment,
        )

        env = make_environment(SCENARIOS.get(args.simulator), random_state=args.random_state)
        queries = [q.text for q in env.make_queries(args.n_queries)]
        evaluator = SimulatorFlowEvaluator(
            env,
            progress_noise=args.progress_noise,
            proposal_noise=args.proposal_noise,
            scenario=args.simulator.lower(),
        )
        agents = None
    else:
        if not args.queries:
            raise DataValidationError("--agents needs --queries (training queries with answers)")
        agents = _load_agents(args.agents)
        answers = _load_answers(args.queries)
        queries = list(answers)
        evaluator = FlowEvaluator(None, exact_match_scorer(answers), agents=agents)
        inputs = {
            str(args.agents): file_sha256(args.agents),
            str(args.queries): file_sha256(args.queries),
        }
    policy = FlowPolicy(agents, config=config, random_state=args.random_state).fit(
        queries, evaluator
    )
    policy.save(args.output)
    last = policy.history_[-1] if policy.history_ else {}
    manifest = build_manifest(
        command="dataprune agents flow-train",
        parameters={
            **config.to_dict(),
            "simulator": args.simulator,
            "agents": args.agents,
            "progress_noise": args.progress_noise,
            "proposal_noise": args.proposal_noise,
        },
        random_state=args.random_state,
        inputs=inputs,
        counts={"n_queries": len(queries), "n_agents": len(policy.agents_)},
        outputs={"policy": str(args.output)},
        timer=timer,
        extra={"last_epoch": last},
    )
    write_manifest(args.output, manifest)
    summary = (
        f", last epoch: return {last['mean_return']:.3f}, score {last['mean_score']:.3f}"
        if last
        else " (cold start)"
    )
    print(
        f"trained a flow policy on {len(queries)} queries ({len(policy.agents_)} agents, "
        f"{policy.n_episodes_} episodes{summary}) -> {args.output} ({timer.elapsed:.1f} s)"
    )
    return 0


def _flow_backend(policy, agents_file: str | None):
    """The backend a saved policy runs with: its simulator, and/or the given agents' LLMs."""
    from dataprune.errors import DataValidationError

    names = [a.name for a in policy.agents_]
    default = None
    info = policy.trained_on_
    if info.get("kind") == "simulator":
        from dataprune.agents.simulator import SCENARIOS, SimulatedFlowBackend, make_environment

        if not info.get("scenario"):
            raise DataValidationError(
                "the policy was trained on a custom simulator environment; run it from Python "
                "(FlowExecutor with SimulatedFlowBackend)"
            )
        env = make_environment(
            SCENARIOS.get(info["scenario"]), random_state=int(info["env_random_state"])
        )
        if [a.name for a in env.agents] != names:
            raise DataValidationError(
                "the policy's agents do not match its simulator scenario "
                f"({', '.join(a.name for a in env.agents)})"
            )
        default = SimulatedFlowBackend(
            env,
            progress_noise=float(info["progress_noise"]),
            proposal_noise=float(info["proposal_noise"]),
            random_state=int(info["random_state"]),
        )
    if not agents_file:
        return default
    from dataprune.agents.executor import make_backend

    backends = {nm: default for nm in names} if default is not None else {}
    for spec in _load_agents(agents_file):
        if spec.name not in names:
            raise DataValidationError(
                f"unknown agent {spec.name!r}; the policy's agents are: {', '.join(names)}",
                source=agents_file,
            )
        if spec.llm is None:
            raise DataValidationError(f"agent {spec.name!r} has no llm config", source=agents_file)
        backends[spec.name] = make_backend(spec.llm)
    return backends


def run_flow_run(args: argparse.Namespace) -> int:
    import json

    from dataprune.agents.flow import FlowExecutor, FlowPolicy
    from dataprune.errors import DataValidationError

    if not args.query or not args.query.strip():
        raise DataValidationError("--query must be a non-empty string")
    policy = FlowPolicy.load(args.policy)
    runner = FlowExecutor(
        _flow_backend(policy, args.agents),
        max_steps=args.max_steps,
        token_budget=args.token_budget,
    )
    trace = runner.run_flow(policy, args.query)
    if args.json:
        payload = {**trace.to_dict(), "topology": trace.to_topology().to_dict()}
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return 0
    path = " -> ".join([*trace.path, "STOP"])
    print(f"path: {path} (stopped by {trace.stopped_by})")
    print(f"answer: {trace.answer}")
    print(f"tokens: {trace.total_tokens} in {len(trace.steps)} steps")
    return 0
