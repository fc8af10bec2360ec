"""``dataprune agents``: train an AGP pruner, predict a topology for a query, export topologies."""

from __future__ import annotations

import argparse

from dataprune.agents.agp.config import AGPConfig
from dataprune.cli._common import Subparsers, non_negative_float, positive_int
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
    t.add_argument(
        "--records", required=True, help="JSON list or JSONL of {task, edge_weight, mask}"
    )
    t.add_argument("--output", "-o", required=True, help="model directory to write")
    t.add_argument(
        "--overwrite", action="store_true", help="replace an existing non-empty model directory"
    )
    t.add_argument(
        "--agents",
        help="JSON file with the agent pool (list of {name, role, profile, ...}); "
        "default agent_0..agent_{N-1}",
    )
    t.add_argument("--encoder", default=None, help="sentence encoder (default all-MiniLM-L6-v2)")
    # AGP's training options: defaults and help from AGPConfig (one source)
    add_config_options(
        t,
        AGPConfig,
        fields=("epochs", "max_steps", "batch_size", "learning_rate", "hidden_dim"),
        types={
            "epochs": positive_int,
            "max_steps": positive_int,
            "batch_size": positive_int,
            "hidden_dim": positive_int,
        },
    )
    t.add_argument("--random-state", type=int, default=0)
    t.set_defaults(run=run_train)

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
    e.add_argument("--query", help="query for --model")
    e.add_argument("--agents", help="agent pool JSON for --preset")
    e.add_argument("--random-state", type=int, default=0, help="seed of the random preset")
    e.add_argument("--output", "-o", default=None, help="file to write (default: stdout)")
    e.set_defaults(run=run_export)


def _no_action(args: argparse.Namespace) -> int:
    args._parser.print_help()
    return 2


def _load_agents(path: str) -> list:
    import json
    from pathlib import Path

    from dataprune.agents.spec import as_agent_specs
    from dataprune.errors import DataValidationError

    p = Path(path)
    if not p.is_file():
        raise DataValidationError("agent file not found", source=str(p))
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataValidationError(
            f"malformed JSON ({exc.msg}) at line {exc.lineno}", source=str(p)
        ) from None
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
        check_output(args.output, inputs=(args.topology, args.agents, args.model))
    if args.topology:
        top = Topology.load(args.topology)
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
