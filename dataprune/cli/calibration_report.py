"""``dataprune calibration-report``: compare candidate calibration sets on the target model before
pruning (samples, tokens, source shares, token diversity, activation coverage of a reference)."""

from __future__ import annotations

import argparse

from dataprune.cli._common import (
    Subparsers,
    add_dtype_arg,
    add_input_args,
    model_dtype,
    positive_int,
)

ORDER = 58  # next to prune-model, which consumes the sets


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "calibration-report",
        help="compare calibration sets before pruning: tokens, source shares, token diversity "
        "and how well they cover a reference set in the model's activation space",
        description=(
            "Report, for each calibration set (a .npz written by CalibrationSet.save or a "
            "prune-model output folder holding calibration.npz): samples and tokens, the share "
            "of every source, token diversity (distinct-token ratio, unigram entropy) and the "
            "activation coverage of --reference: per decoder block, the mean cosine distance "
            "from each reference block's mean-pooled hidden state to the nearest calibration "
            "block's (lower = better covered). Writes OUTPUT (JSON) and OUTPUT.manifest.json and "
            "prints a Markdown table."
        ),
    )
    p.add_argument(
        "sets",
        nargs="+",
        metavar="SET",
        help="calibration set: .npz file (CalibrationSet.save) or prune-model output folder",
    )
    add_input_args(
        p,
        sft=True,
        flags=("--reference",),
        dest="input",
        input_help="reference texts (JSONL / JSON / parquet / CSV, or a hub dataset id): what "
        "the pruned model should do well on",
    )
    p.add_argument(
        "--name",
        action="append",
        default=None,
        help="name of each SET, repeatable, in order (default: file stem or folder name)",
    )
    p.add_argument(
        "--model", default=None, help="causal LM path or hub id (default SmolLM2-135M-Instruct)"
    )
    p.add_argument(
        "--layers",
        default="auto",
        help="decoder blocks, comma-separated 0-based indices (negative from the end), or 'auto' "
        "(default: blocks at 1/3, 2/3 and the last)",
    )
    p.add_argument(
        "--seq-len",
        type=positive_int,
        default=None,
        help="tokens per reference block (default: the largest seq_len of the sets)",
    )
    p.add_argument(
        "--max-reference-blocks",
        type=positive_int,
        default=256,
        help="evenly spaced reference blocks to use at most (default 256)",
    )
    p.add_argument(
        "--batch-size", type=positive_int, default=8, help="blocks per forward pass (default 8)"
    )
    add_dtype_arg(p, what="used for the forward passes (pooling is always float32)")
    p.add_argument("--output", "-o", required=True, help="report file (JSON)")
    p.set_defaults(run=run)


def _parse_layers(text: str) -> str | list[int]:
    from dataprune.errors import DataValidationError

    if text.strip().lower() == "auto":
        return "auto"
    try:
        layers = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        layers = []
    if not layers:
        raise DataValidationError(
            f"--layers expects 'auto' or comma-separated block indices such as 0,5,-1, got {text!r}"
        )
    return layers


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dataprune.calibration.report import calibration_report, load_calibration_sets
    from dataprune.cli._common import (
        load_validated,
        record_texts,
        report_rejects,
        text_fields_from_args,
    )
    from dataprune.errors import DataValidationError
    from dataprune.manifest import RunTimer, build_manifest, write_manifest
    from dataprune.models import load_causal_lm
    from dataprune.outputs import check_output

    timer = RunTimer()
    layers = _parse_layers(args.layers)
    if args.name is not None and len(args.name) != len(args.sets):
        raise DataValidationError(f"{len(args.name)} --name for {len(args.sets)} calibration sets")
    if Path(args.output).suffix.lower() != ".json":
        raise DataValidationError("expected an output path ending in .json", source=args.output)
    check_output(args.output, inputs=(*args.sets, args.input, args.model))
    sets = load_calibration_sets(args.sets, args.name)  # missing/unreadable sets: before loading
    rs, fields = load_validated(args, text_fields=text_fields_from_args(args))
    texts = record_texts(rs.records, fields)

    model, tokenizer = load_causal_lm(args.model, dtype=args.dtype)
    resolved = getattr(model, "dataprune_source", None)
    report = calibration_report(
        sets,
        model,
        tokenizer,
        texts,
        layers=layers,
        seq_len=args.seq_len,
        max_reference_blocks=args.max_reference_blocks,
        batch_size=args.batch_size,
    )
    report.save(args.output)
    manifest = build_manifest(
        command="dataprune calibration-report",
        parameters={
            "sets": dict(zip(sets, args.sets)),
            "layers": report.layers,
            "seq_len": report.reference["seq_len"],
            "max_reference_blocks": args.max_reference_blocks,
            "batch_size": args.batch_size,
            "dtype": model_dtype(model),
        },
        random_state=None,
        inputs={rs.source: rs.content_hash},
        counts={
            "n_sets": len(sets),
            "n_reference": len(texts),
            "n_reference_blocks": report.reference["n_blocks_used"],
            "n_rejected": len(rs.rejects),
        },
        models={"causal_lm": resolved.describe() if resolved else {"name": str(args.model)}},
        outputs={"report": str(args.output)},
        timer=timer,
    )
    manifest_path = write_manifest(args.output, manifest)
    print(report.to_markdown())
    print(f"report -> {args.output}; manifest -> {manifest_path} ({timer.elapsed:.1f} s)")
    rejects_note = report_rejects(rs, args.output)
    if rejects_note:
        print(rejects_note)
    return 0
