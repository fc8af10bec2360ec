"""``dataprune curate``: the whole SFT curation job (dedup, quality filters, budgeted selection)
in one resumable command, with a status for every record and an HTML report."""

from __future__ import annotations

import argparse

from dataprune.cli._common import Subparsers, add_engine_args, add_input_args, engine_from_args

ORDER = 15


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "curate",
        help="curate SFT data with a recipe: dedup, quality filters, budgeted selection, report",
        description=(
            "Run a curation recipe (built-in 'default' or a YAML file) over the records. Writes "
            "OUTPUT (the kept records), OUTPUT.status.parquet (one row per input record: id, "
            "status, the stage and reason that dropped it, duplicate_of, every score), "
            "OUTPUT.report.html (funnel, score histograms with the cuts, dropped examples, "
            "duplicate groups, the kept set against random subsets of the same size), "
            "OUTPUT.manifest.json and the stage cache OUTPUT.cache/ (a rerun resumes at the "
            "first unfinished stage)."
        ),
    )
    add_input_args(p, text=True, sft=True, label=True)
    p.add_argument(
        "--messages-field", help="field holding chat turns [{role, content}, ...] (chat records)"
    )
    p.add_argument(
        "--id-field", help="field holding the records' own unique ids (default: input position)"
    )
    p.add_argument(
        "--flag-field",
        help="field marking records known to be bad; the report compares their share in the "
        "kept set with random subsets",
    )
    p.add_argument(
        "--recipe",
        default="default",
        help="built-in recipe name (default, dedup) or a YAML recipe file (default: default)",
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--fraction", type=float, help="fraction of input records to keep, in (0, 1]"
    )
    budget.add_argument("--n-samples", type=int, help="number of records to keep")
    p.add_argument(
        "--output",
        "-o",
        required=False,
        help="output file for the kept records (format from its suffix)",
    )
    p.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    p.add_argument("--encoder", default=None, help="sentence encoder (default all-MiniLM-L6-v2)")
    p.add_argument(
        "--lm", default=None, help="causal LM for LM scores (default SmolLM2-135M-Instruct)"
    )
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")
    p.add_argument(
        "--show-recipe",
        action="store_true",
        help="print the resolved recipe (every option) as YAML and exit",
    )
    add_engine_args(
        p,
        engine_help="where embeddings and the clustering selection run: 'local' (default) or "
        "'ray' (same result; needs pip install 'dataprune[ray]')",
    )
    p.set_defaults(run=run, on_bad_record="skip")


def run(args: argparse.Namespace) -> int:
    from dataprune.curation.pipeline import curate, output_paths
    from dataprune.curation.recipe import load_recipe, recipe_yaml
    from dataprune.manifest import RunTimer

    timer = RunTimer()
    recipe = load_recipe(args.recipe).with_budget(fraction=args.fraction, n_samples=args.n_samples)
    if args.show_recipe:
        print(recipe_yaml(recipe), end="")
        return 0
    if not args.output:
        from dataprune.errors import DataValidationError

        raise DataValidationError("--output is required (the file for the kept records)")
    engine, engine_options = engine_from_args(args)
    if args.split is not None:
        from dataprune.io import load_records

        data = load_records(args.input, split=args.split, on_bad_record=args.on_bad_record)
    else:
        data = args.input
    result = curate(
        data,
        recipe,
        text_field=args.text_field,
        prompt_field=args.prompt_field,
        response_field=args.response_field,
        messages_field=args.messages_field,
        id_field=args.id_field,
        label_field=args.label_field,
        flag_field=args.flag_field,
        output=args.output,
        encoder=args.encoder,
        lm=args.lm,
        engine=engine,
        engine_options=engine_options,
        on_bad_record=args.on_bad_record,
        random_state=args.random_state,
        report=not args.no_report,
    )
    paths = output_paths(args.output)
    print(f"{result.summary()} -> {args.output} ({timer.elapsed:.1f} s)")
    print(f"status -> {paths['status']}; manifest -> {args.output}.manifest.json")
    if not args.no_report:
        from dataprune.against_random import comparison_lines

        if result.comparisons:
            n_subsets = len(result.comparisons[0].random)
            lines = comparison_lines(
                result.comparisons, len(result), n_subsets, pool="the valid input records"
            )
            for line in lines:
                print(line)
        print(f"report -> {paths['report']}")
    if result.cached_stages:
        print(f"reused cached stages: {', '.join(result.cached_stages)}")
    return 0
