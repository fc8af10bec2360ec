"""``dataprune rag evaluate``: does the pruner help on your own labelled passages?

One record per retrieved passage: its query, its text and its evidence (evidence sentences,
answer strings or ``[start, end]`` spans; an empty list for a distractor). Prints the pruner's
evidence recall and compression at its threshold against BM25 and embedding-cosine filters at the
same compression, with paired bootstrap intervals, and writes the report as JSON with
``--output``.
"""

from __future__ import annotations

import argparse
from typing import Any

from dataprune.cli._common import add_input_args, non_negative_float, positive_int


def add_evaluate_parser(rsub: Any) -> None:
    """Register ``dataprune rag evaluate`` on the ``rag`` sub-command parser."""
    from dataprune.rag.passage_weight import DEFAULT_PASSAGE_WEIGHT

    e = rsub.add_parser(
        "evaluate",
        help="measure on your own labelled passages whether the pruner keeps the evidence "
        "better than BM25 / embedding filters at the same compression",
        description=__doc__.splitlines()[0],
    )
    add_input_args(
        e,
        text=False,
        flags=("--input", "-i"),
        split=False,
        input_help="labelled passages: JSONL / JSON / parquet / CSV, one record per passage",
    )
    e.add_argument(
        "--query-field", default="query", help="field holding the query (default: query)"
    )
    e.add_argument("--text-field", default="text", help="field holding the passage (default: text)")
    e.add_argument(
        "--evidence-field",
        default="evidence",
        help="field holding the passage's evidence: a list of evidence strings (sentences or "
        "answers, matched case-insensitively) or of [start, end] character spans; [] for a "
        "passage without evidence (default: evidence)",
    )
    e.add_argument(
        "--model", default="default", help="'default' (shipped pruner) or a checkpoint folder"
    )
    e.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="keep threshold in [0, 1] (default: the checkpoint's own default threshold)",
    )
    e.add_argument(
        "--passage-weight",
        type=non_negative_float,
        default=DEFAULT_PASSAGE_WEIGHT,
        help="weigh each query's passages by (passage score / its best) ** this, as "
        "'dataprune rag prune --passage-weight'; run once with 0 and once with a weight to see "
        f"whether it helps on your passages (default {DEFAULT_PASSAGE_WEIGHT:g})",
    )
    e.add_argument(
        "--baselines",
        nargs="*",
        default=["bm25", "embedding"],
        help="filters compared at the same compression (default: bm25 embedding)",
    )
    e.add_argument(
        "--target-compression",
        type=float,
        default=0.6,
        help="share of characters you want removed: the report gives the best evidence recall "
        "each method reaches there and the pruner's threshold for it (default: 0.6)",
    )
    e.add_argument("--n-boot", type=positive_int, default=1000, help="bootstrap resamples")
    e.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    e.add_argument("--batch-size", type=positive_int, default=32)
    e.add_argument("--output", "-o", default=None, help="write the report to this JSON file")
    e.set_defaults(run=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from dataprune.atomic import atomic_write_json
    from dataprune.errors import DataValidationError
    from dataprune.io import load_records, validate_fields
    from dataprune.manifest import RunTimer
    from dataprune.outputs import check_output
    from dataprune.rag.labelled import examples_from_records
    from dataprune.rag.pruner import ContextPruner
    from dataprune.rag.pruner_evaluation import BASELINES, evaluate_pruner, evaluation_lines
    from dataprune.rag.selection import check_threshold

    timer = RunTimer()
    if args.threshold is not None:
        check_threshold(args.threshold)
    for name in args.baselines:
        BASELINES.get(name)
    if not 0.0 < args.target_compression < 1.0:
        raise DataValidationError(
            f"--target-compression must be in (0, 1), got {args.target_compression}"
        )
    if args.n_boot < 100:
        raise DataValidationError(f"--n-boot must be >= 100, got {args.n_boot}")
    if args.output is not None:
        check_output(args.output, inputs=(args.input, args.model))
    rs = load_records(args.input, on_bad_record=args.on_bad_record)
    rs = validate_fields(
        rs, text_fields=[args.query_field, args.text_field], on_bad_record=args.on_bad_record
    )
    evidence = []
    for pos, rec in enumerate(rs.records):
        if args.evidence_field not in rec:
            raise DataValidationError(
                "missing field; expected a list of evidence strings or [start, end] spans "
                "([] for a passage without evidence)",
                source=rs.source,
                record=rs.indices[pos],
                field=args.evidence_field,
            )
        evidence.append(rec[args.evidence_field])
    examples = examples_from_records(
        rs.column(args.query_field),
        rs.column(args.text_field),
        evidence,
        source=rs.source,
        record_ids=rs.indices,
        field=args.evidence_field,
    )
    pruner = ContextPruner.from_pretrained(args.model, batch_size=args.batch_size)
    report = evaluate_pruner(
        pruner,
        examples,
        threshold=args.threshold,
        passage_weight=args.passage_weight,
        baselines=args.baselines,
        target_compression=args.target_compression,
        n_boot=args.n_boot,
        random_state=args.seed,
    )
    for line in evaluation_lines(report):
        print(line)
    if args.output is not None:
        atomic_write_json(
            args.output,
            {
                "command": "dataprune rag evaluate",
                "input": {
                    "source": rs.source,
                    "content_hash": rs.content_hash,
                    "n_input": rs.n_input,
                    "n_rejected": len(rs.rejects),
                },
                "parameters": {
                    "query_field": args.query_field,
                    "text_field": args.text_field,
                    "evidence_field": args.evidence_field,
                    "model": args.model,
                    "passage_weight": args.passage_weight,
                    "baselines": list(args.baselines),
                },
                "pruner": pruner.describe(),
                "report": report,
                "seconds": round(timer.elapsed, 2),
            },
            nan_as_null=True,  # a baseline that cannot reach the pruner's compression: null
        )
        print(f"wrote {args.output} ({timer.elapsed:.1f} s)")
    if rs.rejects:  # --on-bad-record skip: the skipped records, kept with their line and reason
        from dataprune.cli._common import report_rejects

        print(
            report_rejects(rs, args.output)
            if args.output is not None
            else f"skipped {len(rs.rejects)} bad records (give --output to keep them in "
            "OUTPUT.rejects.jsonl)"
        )
    return 0
