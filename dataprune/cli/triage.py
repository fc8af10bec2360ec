"""``dataprune triage``: Q-Tuning triage of SFT samples and tokens with a causal LM (static mode)."""

from __future__ import annotations

import argparse

from dataprune.cli._common import Subparsers, add_dtype_arg, add_input_args, model_dtype
from dataprune.cli.config_options import add_config_options, config_from_args
from dataprune.qtuning.config import (
    DROP_POLICIES,
    ENTROPY_SPANS,
    FILLS,
    GROUP_BUDGETS,
    TOKEN_BUDGETS,
    QTuningConfig,
)

ORDER = 40


def _ratio(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0.0 < v <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}")
    return v


def _nats_or_none(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0 or 'none', got {text!r}") from None
    if not v > 0.0:
        raise argparse.ArgumentTypeError(f"expected a number > 0 or 'none', got {text!r}")
    return v


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "triage",
        help="Q-Tuning: keep the SFT samples and tokens that teach (EU-plane triage with a causal LM)",
        description=(
            "Score every prompt/response pair with a causal LM (PPL and predictive entropy of the "
            "response), keep exactly round(n * sample-ratio) samples from the Q2 (high error, low "
            "uncertainty) and Q4 (low error, high uncertainty) corners, and mask tokens of Q2 "
            "samples. Writes OUTPUT (kept records with input_ids and labels, -100 where pruned, "
            "and a readable qtuning_view), OUTPUT.scores.parquet (every input sample with its "
            "quadrant), OUTPUT.eu_plane.png and OUTPUT.manifest.json."
        ),
    )
    add_input_args(p, text=False, sft=True)
    p.add_argument(
        "--output", "-o", required=True, help="kept records (.jsonl, .jsonl.gz, .json or .parquet)"
    )
    # Q-Tuning's parameters: defaults, help and choices from QTuningConfig (one source)
    add_config_options(
        p,
        QTuningConfig,
        fields=(
            "sample_ratio",
            "token_ratio",
            "neighbor_lambda",
            "drop",
            "entropy_span",
            "token_budget",
            "fill",
            "group_budget",
            "abrupt_end",
            "max_ifd",
            "max_steps",
            "tol",
        ),
        flags={"neighbor_lambda": "--lambda"},
        choices={
            "drop": DROP_POLICIES.names(),
            "entropy_span": ENTROPY_SPANS.names(),
            "token_budget": TOKEN_BUDGETS.names(),
            "fill": FILLS.names(),
            "group_budget": GROUP_BUDGETS.names(),
        },
        types={
            "sample_ratio": _ratio,
            "token_ratio": _ratio,
            "abrupt_end": _nats_or_none,
            "max_ifd": _nats_or_none,
        },
    )
    p.add_argument(
        "--model",
        default=None,
        help="causal LM path or hub id (default: SmolLM2-135M-Instruct, offline)",
    )
    add_dtype_arg(p, what="the scores are computed in float32 from its logits")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-length", type=int, default=1024, help="token window per sample")
    p.add_argument(
        "--no-chat-template",
        action="store_true",
        help="do not apply the tokenizer's chat template (prompt + response + EOS)",
    )
    p.add_argument(
        "--source-field",
        default=None,
        metavar="FIELD",
        help="record field naming each pair's source (dataset, file): each source is triaged "
        "on its own PPL/entropy scale (PPL and entropy ranked within it); --group-budget says "
        "how the kept samples are shared between sources",
    )
    p.add_argument(
        "--random-state",
        type=int,
        default=0,
        help="seeds the uniform, flat and random fill-up draws (and breaks exact ties)",
    )
    p.add_argument(
        "--shard-size",
        type=int,
        default=512,
        help="samples per resumable scoring shard (cached in OUTPUT.scores-cache/ until done)",
    )
    p.add_argument(
        "--keep-cache", action="store_true", help="keep OUTPUT.scores-cache/ after success"
    )
    p.add_argument(
        "--compile-stats",
        action="store_true",
        help="fuse the NLL/entropy statistics with torch.compile (faster on large inputs; "
        "compiles once, needs a C++ compiler)",
    )
    p.add_argument("--no-plot", action="store_true", help="do not write OUTPUT.eu_plane.png")
    p.add_argument(
        "--random-baseline",
        metavar="PATH",
        help="also write a random subset of the same size to train against (needs --fill "
        "random, the default): a uniform random subset of the input that shares the kept "
        "samples except where a random subset holds flagged ones, so the difference between "
        "the two trainings is what the noise rules removed (dataprune.qtuning.random_baseline)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import shutil
    from pathlib import Path

    from dataprune.cli._common import (
        field_sources,
        load_validated,
        report_rejects,
        text_fields_from_args,
    )
    from dataprune.errors import DataValidationError
    from dataprune.io import Rejected, detect_format
    from dataprune.manifest import RunTimer, build_manifest
    from dataprune.models import check_device, load_causal_lm
    from dataprune.outputs import check_output
    from dataprune.qtuning.config import QTuningConfig
    from dataprune.qtuning.report import alpha_text, write_triage
    from dataprune.qtuning.static import QTuningTriage

    timer = RunTimer()
    for name in ("batch_size", "max_length", "shard_size", "max_steps"):
        v = getattr(args, name)
        if v < (2 if name == "max_length" else 1):
            flag = "--" + name.replace("_", "-")
            raise DataValidationError(
                f"{flag} must be >= {2 if name == 'max_length' else 1}, got {v}"
            )
    check_device(args.device)
    fields = text_fields_from_args(args)
    if len(fields) != 2:
        raise DataValidationError("triage needs --prompt-field and --response-field")
    prompt_field, response_field = fields
    out = check_output(args.output, inputs=(args.input,))
    if detect_format(out) == "csv":
        raise DataValidationError(
            "CSV cannot hold token-level labels; use .jsonl, .json or .parquet", source=str(out)
        )
    config = config_from_args(QTuningConfig, args)  # DataValidationError naming the field
    baseline_out = None
    if args.random_baseline:
        if config.fill != "random":
            raise DataValidationError(
                f"--random-baseline needs --fill random, got --fill {config.fill}: only a "
                "random fill keeps a uniform draw a random subset can be coupled to"
            )
        baseline_out = check_output(args.random_baseline, inputs=(args.input,))
        if baseline_out.resolve() == out.resolve():
            raise DataValidationError("--random-baseline must differ from --output")
    rs, fields = load_validated(args, text_fields=fields)
    # empty responses cannot be scored: stop or skip them like any other bad record
    keep_pos = []
    for pos, rec in enumerate(rs.records):
        if rec[response_field].strip():
            keep_pos.append(pos)
            continue
        msg = "empty response; expected text to score"
        if args.on_bad_record == "error":
            raise DataValidationError(
                msg,
                source=rs.source,
                record=rs.indices[pos],
                field=response_field,
                line=rs.line_of(pos),
            )
        rs.rejects.append(
            Rejected(
                f"field {response_field!r}: {msg}",
                index=rs.indices[pos],
                line=rs.line_of(pos),
                raw=rec,
            )
        )
    if not keep_pos:
        raise DataValidationError("no record has a non-empty response", source=rs.source)
    sources = field_sources(rs, args.source_field) if args.source_field else None
    records = [rs.records[i] for i in keep_pos]
    indices = [rs.indices[i] for i in keep_pos]

    model, tok = load_causal_lm(args.model, dtype=args.dtype, device=args.device)
    resolved = model.dataprune_source
    cache = Path(f"{out}.scores-cache")
    triage = QTuningTriage(
        config,
        model=model,
        tokenizer=tok,
        batch_size=args.batch_size,
        max_length=args.max_length,
        use_chat_template=False if args.no_chat_template else None,
        cache_dir=cache,
        random_state=args.random_state,
        compile_stats=args.compile_stats,
    ).fit(
        [r[prompt_field] for r in records],
        [r[response_field] for r in records],
        groups=None if sources is None else [sources[i] for i in keep_pos],
    )
    result = triage.result_
    note = report_rejects(rs, out)
    summary = result.summary()
    manifest = build_manifest(
        command="dataprune triage",
        parameters={
            "prompt_field": prompt_field,
            "response_field": response_field,
            "source_field": args.source_field,
            **config.to_dict(),
            "model": args.model,
            "dtype": model_dtype(model),
            "batch_size": args.batch_size,
            "max_length": args.max_length,
            "chat_template": not args.no_chat_template,
            "compile_stats": args.compile_stats,
            "random_baseline": args.random_baseline,
        },
        random_state=args.random_state,
        inputs={rs.source: rs.content_hash},
        counts={
            "n_input": rs.n_input,
            "n_scored": len(records),
            "n_output": len(result.kept_indices),
            "n_rejected": len(rs.rejects),
            **{f"n_{k}": v for k, v in summary["quadrants"].items()},
            **{f"n_{k}": v for k, v in summary["tokens"].items()},
            "n_truncated": int(result.meta.get("n_truncated", 0)),
        },
        models={"causal_lm": resolved.describe()},
        timer=timer,
        extra={
            "labels": "labels are -100 on prompt tokens and on pruned response tokens",
            "row_index": "'qtuning_index' / scores 'index' = record position in the input",
        },
    )
    if baseline_out is not None:
        from dataprune.qtuning.baseline import random_baseline
        from dataprune.qtuning.report import write_random_baseline

        subset = random_baseline(
            triage,
            groups=None if sources is None else [sources[i] for i in keep_pos],
            random_state=args.random_state,
        )
        write_random_baseline(baseline_out, records, result, subset, input_indices=indices)
        kept_set = set(result.kept_indices.tolist())
        manifest["counts"]["n_random_baseline_swapped"] = sum(i not in kept_set for i in subset)
        manifest["outputs"] = {"random_baseline": str(baseline_out)}
    paths = write_triage(
        out,
        records,
        result,
        tok,
        input_indices=indices,
        plot=not args.no_plot,
        manifest=manifest,
    )
    if not args.keep_cache:
        shutil.rmtree(cache, ignore_errors=True)
    q = summary["quadrants"]
    t = summary["tokens"]
    fill = result.config.fill
    print(
        f"wrote {paths['kept']}: kept {q['kept']} of {len(records)} samples "
        f"(Q2 {sum(result.samples.q2)}, Q4 {sum(result.samples.q4)}; {q['fill_up']} by the "
        f"fill={fill} fill-up, {alpha_text(result.samples)}) and "
        f"{t['kept_tokens']} of {t['response_tokens_in_kept_samples']} response tokens in them "
        f"({timer.elapsed:.1f} s)"
    )
    flagged = q["duplicate"] + q["abrupt_end"] + q["misaligned"]
    print(
        f"left out by the noise rules: {flagged} ({q['duplicate']} duplicates, "
        f"{q['abrupt_end']} abrupt ends, {q['misaligned']} misaligned); "
        f"{len(records) - q['kept'] - flagged} more dropped"
        + (" by the fill=random draw" if fill == "random" else "")
        + f" (nearer Q1: {q['Q1'] - q['abrupt_end'] - q['misaligned']}, nearer Q3: "
        f"{q['Q3'] - q['duplicate']})"
    )
    print(
        f"scores -> {paths['scores']}" + (f"; plot -> {paths['plot']}" if "plot" in paths else "")
    )
    if baseline_out is not None:
        print(
            f"random baseline -> {baseline_out}: {len(subset)} samples, "
            f"{manifest['counts']['n_random_baseline_swapped']} of them in place of kept ones"
        )
    if note:
        print(note)
    return 0
