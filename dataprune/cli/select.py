"""``dataprune select``: keep exactly a budget of records with a named method, save every score."""

from __future__ import annotations

import argparse

from dataprune.cli._common import (
    Subparsers,
    add_engine_args,
    add_input_args,
    engine_from_args,
    key_value_option,
)

ORDER = 20

_METHOD_HELP = (
    "random, class_balanced, longest, kcenter, facility_location, cluster_facility_location, "
    "prototypes, herding, semdedup, ccs, el2n, grand, confident_learning"
)


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "select",
        help="keep exactly N (or a fraction of) records with a selection method; saves all scores",
        description=(
            "Select a subset of records. Writes OUTPUT (same format as the input unless the "
            "suffix says otherwise) with exactly the budgeted number of records, "
            "OUTPUT.manifest.json and OUTPUT.scores.parquet (one row per input record: index, "
            "status, score columns, kept, rank)."
        ),
    )
    add_input_args(p, text=True, sft=True, label=True)
    p.add_argument("--method", "-m", required=True, help=f"selection method: {_METHOD_HELP}")
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--fraction", type=float, help="fraction of records to keep, in (0, 1]")
    budget.add_argument("--n-samples", type=int, help="number of records to keep")
    p.add_argument("--output", "-o", required=True, help="output file (format from its suffix)")
    p.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    p.add_argument(
        "--model",
        default=None,
        help="encoder for embedding methods (default all-MiniLM-L6-v2) or causal LM for LM "
        "scores / token lengths (default SmolLM2-135M-Instruct)",
    )
    p.add_argument(
        "--option",
        "-O",
        action="append",
        type=key_value_option,
        default=[],
        metavar="KEY=VALUE",
        help="method option, repeatable (VALUE parsed as JSON when it can be): e.g. keep=easy, "
        "offset=0.1, eps=0.07, beta=0.2, n_runs=3",
    )
    p.add_argument(
        "--plot",
        action="store_true",
        help="also save OUTPUT.scores.png: score histograms, kept vs not kept",
    )
    p.add_argument(
        "--against-random",
        type=int,
        default=0,
        metavar="N",
        help="also compare the kept set with N random subsets of the same size drawn from the "
        "same candidates, on measures that need no training: embedding coverage (methods that "
        "do not embed the records use the default sentence encoder for it), label mix with "
        "--label-field, semantic duplicates, score means; printed and saved in the manifest "
        "(e.g. 20; default 0: off)",
    )
    add_engine_args(
        p,
        engine_help="where the work runs: 'local' (this process, default) or 'ray' (embedding "
        "and LM scores as resumable Ray Data shard pipelines; prototypes/semdedup/"
        "cluster_facility_location as per-cluster Ray tasks, el2n/ccs ranked on the driver; "
        "needs pip install 'dataprune[ray]')",
    )
    p.add_argument(
        "--keep-empty",
        action="store_true",
        help="keep records with empty text as candidates (default: report and exclude them)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dataprune.cli._common import output_format, report_rejects
    from dataprune.errors import DataValidationError
    from dataprune.io import load_records, write_records
    from dataprune.manifest import RunTimer, build_manifest, write_manifest
    from dataprune.outputs import check_output
    from dataprune.selection.api import select
    from dataprune.selection.methods import get_method

    timer = RunTimer()
    spec = get_method(args.method)  # unknown method: error listing the valid ones
    engine, engine_options = engine_from_args(args)
    if engine != "local":
        from dataprune.distributed.clustered import ENGINE_METHODS

        if spec.name not in ENGINE_METHODS:
            raise DataValidationError(
                f"--method {spec.name} runs on the local engine only; methods for "
                f"--engine {engine}: {', '.join(ENGINE_METHODS)}"
            )
    options = dict(args.option)
    spec.check_options(options)  # unknown options and bad values fail before any loading
    if args.fraction is not None and not 0.0 < args.fraction <= 1.0:
        raise DataValidationError(f"--fraction must be in (0, 1], got {args.fraction}")
    if args.n_samples is not None and args.n_samples < 1:
        raise DataValidationError(f"--n-samples must be >= 1, got {args.n_samples}")
    if args.against_random < 0:
        raise DataValidationError(f"--against-random must be >= 0, got {args.against_random}")
    check_output(args.output, inputs=(args.input,))
    rs = load_records(args.input, split=args.split, on_bad_record=args.on_bad_record)
    fmt = output_format(args.output, rs.format)
    result = select(
        rs,
        method=spec.name,
        fraction=args.fraction,
        n_samples=args.n_samples,
        random_state=args.random_state,
        text_field=args.text_field,
        prompt_field=args.prompt_field,
        response_field=args.response_field,
        label_field=args.label_field,
        model=args.model,
        on_bad_record=args.on_bad_record,
        empty_text="keep" if args.keep_empty else "exclude",
        engine=engine,
        engine_options=engine_options,
        against_random=args.against_random,
        **options,
    )
    kept = result.dataset.records
    if len(kept) != result.budget:  # the contract of the command; never write a short file
        raise RuntimeError(f"selected {len(kept)} records, expected {result.budget}")
    write_records(kept, args.output, fmt=fmt)
    scores_path = f"{args.output}.scores.parquet"
    result.write_scores(scores_path)
    outputs = {"records": str(args.output), "scores": scores_path}
    if args.plot:
        outputs["plot"] = str(result.plot_scores(f"{args.output}.scores.png"))
    rejects_note = report_rejects(result, args.output)
    empty = result.empty_indices
    manifest = build_manifest(
        command="dataprune select",
        parameters=result.params,
        random_state=args.random_state,
        inputs={rs.source: rs.content_hash},
        counts={
            "n_input": result.n_input,
            "n_candidates": int((result.rank >= 0).sum()),
            "n_output": len(kept),
            "n_rejected": len(result.rejected_indices),
            "n_empty_text": len(empty),
        },
        models=result.models,
        outputs=outputs,
        timer=timer,
        extra={
            "against_random": [c.to_dict() for c in result.comparisons],
            "details": result.details,
            "empty_text_indices": empty.tolist(),
            "score_columns": ["score", *result.columns],
        },
    )
    manifest_path = write_manifest(args.output, manifest)
    print(f"{result.summary()} -> {args.output} ({timer.elapsed:.1f} s)")
    print(f"scores -> {scores_path}; manifest -> {manifest_path}")
    if args.plot:
        print(f"score histograms -> {outputs['plot']}")
    if len(empty):
        shown = ", ".join(map(str, empty[:10].tolist()))
        more = ", ..." if len(empty) > 10 else ""
        action = "kept as candidates" if args.keep_empty else "excluded"
        print(f"{len(empty)} records have empty text ({action}): input positions {shown}{more}")
    if "duplicate_groups" in result.details:
        groups = result.details["duplicate_groups"]
        print(
            f"semantic duplicates: {result.details.get('n_duplicates', 0)} records in "
            f"{len(groups)} groups (listed in the manifest)"
        )
    if "n_label_issues" in result.details:
        print(f"likely label issues: {result.details['n_label_issues']}")
    if rejects_note:
        print(rejects_note)
    if args.against_random:
        from dataprune.against_random import comparison_lines

        for line in comparison_lines(result.comparisons, result.budget, args.against_random):
            print(line)
    return 0
