"""``dataprune agents evaluate``: does AGP beat one fixed topology on your own records?

Trains AGP (the same options as ``agents train``) on random train/test splits of the records and
scores its predicted agent sets and edges on each test part against the per-position majority
of the training part (one query-independent topology), with paired 95% CIs over the splits
(:func:`dataprune.agents.agp.evaluation.evaluate_agp`). ``--output`` writes the report as JSON.
"""

from __future__ import annotations

import argparse
from typing import Any

from dataprune.cli._common import positive_int


def add_evaluate_parser(asub: Any, add_training_options: Any) -> None:
    """Register ``dataprune agents evaluate`` on the ``agents`` sub-command parser;
    ``add_training_options(parser)`` adds the records, agent pool, encoder and AGP's training
    options (shared with ``train``)."""
    e = asub.add_parser(
        "evaluate",
        help="does AGP beat one fixed topology on your records? random train/test splits "
        "against the per-position majority",
        description="Does AGP's per-query pruning beat one fixed topology on your own Stage I "
        "records? Trains AGP on random train/test splits and compares its predicted agent sets "
        "and edges with the per-position majority of each training part, with paired 95% CIs "
        "over the splits.",
    )
    add_training_options(e)  # --records, --agents, --encoder and AGP's training options
    e.add_argument(
        "--splits", type=positive_int, default=5, help="random train/test splits (default 5)"
    )
    e.add_argument(
        "--test-fraction",
        type=float,
        default=0.2,
        help="share of the records in each test part, in (0, 1) (default 0.2)",
    )
    e.add_argument("--random-state", type=int, default=0, help="seed of the splits (default 0)")
    e.add_argument("--output", "-o", default=None, help="write the report to this JSON file")
    e.set_defaults(run=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from dataprune.agents.agp.config import AGPConfig
    from dataprune.agents.agp.evaluation import evaluate_agp
    from dataprune.atomic import atomic_write_json
    from dataprune.cli.agents import _load_agents
    from dataprune.cli.config_options import config_from_args
    from dataprune.errors import DataValidationError
    from dataprune.io import file_sha256
    from dataprune.manifest import RunTimer
    from dataprune.models import resolve_encoder
    from dataprune.outputs import check_output

    timer = RunTimer()
    if not 0.0 < args.test_fraction < 1.0:
        raise DataValidationError(f"--test-fraction must be in (0, 1), got {args.test_fraction}")
    config = config_from_args(AGPConfig, args)
    if args.output is not None:
        check_output(args.output, inputs=(args.records, args.agents, args.encoder))
    agents = _load_agents(args.agents) if args.agents else None
    ev = evaluate_agp(
        args.records,
        agents,
        config=config,
        encoder=args.encoder,
        n_splits=args.splits,
        test_fraction=args.test_fraction,
        random_state=args.random_state,
    )
    for line in ev.lines():
        print(line)
    if args.output is not None:
        atomic_write_json(
            args.output,
            {
                "command": "dataprune agents evaluate",
                "inputs": {str(args.records): file_sha256(args.records)},
                "agents": args.agents,
                "encoder": resolve_encoder(args.encoder or config.encoder).describe(),
                "report": ev.to_dict(),
                "seconds": round(timer.elapsed, 2),
            },
        )
        print(f"wrote {args.output} ({timer.elapsed:.1f} s)")
    return 0
