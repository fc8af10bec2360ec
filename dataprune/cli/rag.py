"""``dataprune rag``: train a Provence-style context pruner and prune retrieved passages.

* ``dataprune rag train --data ../shared/data/squad_v2 --output DIR``: SQuAD v2 sentence labels,
  article-level split, training, held-out evaluation, compact checkpoint + card.
* ``dataprune rag prune --query Q --input passages.jsonl --output OUT``: prune every passage
  of a file for one query (or per-record queries with ``--query-field``).
* ``dataprune rag evaluate --input labelled.jsonl``: whether the pruner keeps your evidence better
  than BM25 / embedding filters at the same compression (:mod:`dataprune.cli.rag_evaluate`).
"""

from __future__ import annotations

import argparse
from typing import Any

from dataprune.cli._common import (
    Subparsers,
    add_input_args,
    non_negative_float,
    non_negative_int,
    positive_int,
)
from dataprune.cli.config_options import add_config_options

ORDER = 50

# `rag train` options, in the order the recorded command lists them: (config, field, flag).
# Defaults and help come from TrainConfig / PrunerConfig (one source).
_TRAIN_OPTIONS = (
    ("train", "max_steps", "--steps"),
    ("train", "batch_size", None),
    ("train", "lr", None),
    ("train", "head_lr", None),
    ("train", "pos_weight", None),
    ("train", "rank_loss_weight", None),
    ("pruner", "trainable_layers", None),
    ("pruner", "keep_head", None),
    ("pruner", "max_length", None),
    ("train", "max_train_pairs", None),
    ("train", "unanswerable_share", None),
    ("train", "negatives_per_question", None),
    ("train", "random_state", "--seed"),
    ("train", "n_test_articles", None),
    ("train", "n_val_articles", None),
    ("train", "eval_every", None),
    ("train", "precision", None),
    ("train", "evidence_sets", None),
    ("train", "evidence_data", None),
    ("train", "include_squad", None),
    ("train", "evidence_val_share", None),
    ("train", "distractors_per_question", None),
    ("train", "bridge_examples", None),
    ("train", "max_pairs_per_set", None),
    ("train", "target_compression", None),
    ("train", "allow_restricted_licences", None),
)


def _flag(field: str, flag: str | None) -> str:
    return flag or "--" + field.replace("_", "-")


def register(sub: Subparsers) -> None:
    from dataprune.rag.passage_weight import DEFAULT_PASSAGE_WEIGHT

    p = sub.add_parser(
        "rag",
        help="RAG context pruning: train a Provence-style pruner, prune retrieved passages",
        description="Provence-style RAG context pruning.",
    )
    rsub = p.add_subparsers(dest="rag_command", metavar="RAG_COMMAND")
    p.set_defaults(run=_missing_sub(p))

    t = rsub.add_parser(
        "train",
        help="train a pruner on SQuAD v2 sentence labels and evaluate on held-out articles",
    )
    t.add_argument("--data", required=True, help="SQuAD v2 JSON file or folder holding one")
    # --evidence-sets takes comma-separated names of dataprune.rag.corpora.EVIDENCE_SETS
    t.add_argument("--output", "-o", required=True, help="checkpoint folder to write")
    from dataprune.rag.config import KEEP_HEADS, PrunerConfig, TrainConfig

    t.add_argument(
        "--stop-after-steps",
        type=int,
        default=None,
        help="stop after this many steps of the --steps schedule (CPU budget; resumable)",
    )
    for cfg, field, flag in _TRAIN_OPTIONS:
        add_config_options(
            t,
            TrainConfig if cfg == "train" else PrunerConfig,
            fields=(field,),
            flags={field: _flag(field, flag)},
            choices={"keep_head": KEEP_HEADS, "precision": ("bfloat16", "float32")},
        )
    t.add_argument(
        "--backbone", default=None, help="encoder path or hub id (default: all-MiniLM-L6-v2)"
    )
    t.add_argument(
        "--no-resume", action="store_true", help="start over even if OUTPUT has a training state"
    )
    t.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a non-empty OUTPUT that holds no pruner checkpoint or training state",
    )
    t.set_defaults(run=run_train)

    r = rsub.add_parser(
        "prune",
        help="prune the passages of a JSONL/JSON/parquet/CSV file for a query",
    )
    q = r.add_mutually_exclusive_group(required=True)
    q.add_argument("--query", help="the query every passage is pruned for")
    q.add_argument("--query-field", help="field holding each record's own query")
    add_input_args(
        r,
        text=False,
        flags=("--input", "-i"),
        split=False,
        input_help="passages file (one record per passage)",
    )
    r.add_argument("--output", "-o", required=True, help="output file (format from its suffix)")
    r.add_argument("--text-field", default="text", help="field holding the passage (default: text)")
    r.add_argument(
        "--model", default="default", help="'default' (shipped pruner), checkpoint folder or hub id"
    )
    r.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow a remote-code hub model (e.g. naver/provence-reranker-debertav3-v1) to run "
        "its own Python code; needs --revision",
    )
    r.add_argument("--revision", default=None, help="hub revision (commit hash) of a hub --model")
    r.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="keep threshold in [0, 1] (default: the checkpoint's own default threshold, 0.1 "
        "when its card names none)",
    )
    r.add_argument("--aggregation", choices=("mean_prob", "vote"), default="mean_prob")
    r.add_argument(
        "--always-select-title",
        action="store_true",
        help="treat each passage's first sentence as a title: kept iff another sentence is kept",
    )
    r.add_argument(
        "--max-tokens", type=non_negative_int, default=None, help="token budget per query"
    )
    r.add_argument(
        "--keep-pattern",
        action="append",
        dest="keep_patterns",
        default=None,
        metavar="REGEX",
        help="always keep a sentence containing a match of REGEX, whatever its score or the "
        "budget (repeatable)",
    )
    r.add_argument(
        "--keep-preset",
        action="append",
        dest="keep_presets",
        default=None,
        choices=("numbers", "dates", "urls", "ids"),
        help="a ready-made keep pattern (dataprune.rag.KEEP_PATTERNS; repeatable)",
    )
    r.add_argument(
        "--passage-weight",
        type=non_negative_float,
        default=DEFAULT_PASSAGE_WEIGHT,
        help="scale each passage's keep-probabilities by (passage score / the query's best "
        "passage score) ** this before selection; 0 = off; no effect on a single passage "
        f"(default {DEFAULT_PASSAGE_WEIGHT:g})",
    )
    r.add_argument(
        "--second-pass",
        action="store_true",
        help="multi-hop second pass: re-score with the query extended by the best sentences of "
        "the best first-pass passages",
    )
    r.add_argument(
        "--second-pass-passages",
        type=positive_int,
        default=2,
        help="passages whose best sentences extend the query (default 2)",
    )
    r.add_argument(
        "--second-pass-sentences",
        type=positive_int,
        default=1,
        help="sentences taken from each of those passages (default 1)",
    )
    r.add_argument("--drop-empty", action="store_true", help="leave out passages pruned to nothing")
    r.add_argument("--batch-size", type=int, default=32)
    r.set_defaults(run=run_prune)

    from dataprune.cli.rag_evaluate import add_evaluate_parser

    add_evaluate_parser(rsub)


def _missing_sub(parser: argparse.ArgumentParser):
    def run(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return run


def _train_command(args: argparse.Namespace) -> str:
    parts = ["dataprune rag train", f"--data {args.data}", f"--output {args.output}"]
    for _, field, flag in _TRAIN_OPTIONS:
        value = getattr(args, field)
        name = _flag(field, flag)
        if isinstance(value, bool):
            parts.append(name if value else "--no-" + name[2:])
        elif isinstance(value, (tuple, list)):
            if value:
                parts.append(f"{name} {','.join(value)}")
        elif value is not None:
            parts.append(f"{name} {value}")
    if args.stop_after_steps:
        parts.append(f"--stop-after-steps {args.stop_after_steps}")
    if args.backbone:
        parts.append(f"--backbone {args.backbone}")
    return " ".join(parts)


def train_config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~dataprune.rag.config.TrainConfig` that ``dataprune rag train`` builds."""
    from dataprune.rag.config import PrunerConfig, TrainConfig

    pruner = PrunerConfig(
        **{f: getattr(args, f) for cfg, f, _ in _TRAIN_OPTIONS if cfg == "pruner"},
        **({"backbone": args.backbone} if args.backbone else {}),
    )
    options = {f: getattr(args, f) for cfg, f, _ in _TRAIN_OPTIONS if cfg == "train"}
    options["max_train_pairs"] = options["max_train_pairs"] or None  # 0 = all pairs
    if isinstance(options["evidence_sets"], str):
        options["evidence_sets"] = tuple(
            x.strip() for x in options["evidence_sets"].split(",") if x
        )
    return TrainConfig(
        data=args.data, stop_after_steps=args.stop_after_steps, pruner=pruner, **options
    )


def run_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dataprune.outputs import check_output
    from dataprune.rag.train import CARD_NAME, STATE_NAME, train_pruner

    # a folder of this command's own (a training state or a checkpoint) is resumed / replaced
    own = any((Path(args.output) / name).is_file() for name in (STATE_NAME, CARD_NAME))
    check_output(
        args.output,
        kind="dir",
        inputs=(args.data, args.backbone),
        overwrite=args.overwrite or own,
    )

    config = train_config_from_args(args)
    result = train_pruner(
        config, args.output, command=_train_command(args), resume=not args.no_resume
    )
    at = result.card["held_out"]["at_default"]
    print(
        f"wrote {args.output}: {result.card['checkpoint_bytes'] / 1e6:.1f} MB; held-out articles "
        f"{', '.join(result.card['data']['split']['test'])}: at the default T={at['threshold']:g} "
        f"recall {at['recall']:.3f}, "
        f"compression {at['compression']:.3f}, answer retention {at['answer_retention']:.3f}, "
        f"empty answerable {at['empty_rate_answerable']:.3f} ({result.card['wall_time_s']:.0f} s)"
    )
    return 0


def run_prune(args: argparse.Namespace) -> int:
    from dataprune.cli._common import report_rejects
    from dataprune.errors import DataValidationError
    from dataprune.io import load_records, validate_fields, write_records
    from dataprune.manifest import RunTimer, build_manifest, write_manifest
    from dataprune.outputs import check_output
    from dataprune.rag.grouping import per_query
    from dataprune.rag.pruner import ContextPruner

    timer = RunTimer()
    if args.query is not None and not args.query.strip():
        raise DataValidationError("--query is empty")
    if args.batch_size < 1:
        raise DataValidationError(f"--batch-size must be >= 1, got {args.batch_size}")
    from dataprune.rag.patterns import KEEP_PATTERNS, compile_keep_patterns
    from dataprune.rag.selection import check_threshold

    if args.threshold is not None:
        check_threshold(args.threshold)
    keep_patterns = list(args.keep_patterns or []) + [
        KEEP_PATTERNS[name] for name in dict.fromkeys(args.keep_presets or [])
    ]
    compile_keep_patterns(keep_patterns)
    if args.max_tokens is not None and args.max_tokens < 0:
        raise DataValidationError(f"--max-tokens must be >= 0, got {args.max_tokens}")
    check_output(args.output, inputs=(args.input, args.model))
    fields = [args.text_field] + ([args.query_field] if args.query_field else [])
    rs = load_records(args.input, on_bad_record=args.on_bad_record)
    rs = validate_fields(rs, text_fields=fields, on_bad_record=args.on_bad_record)
    pruner = ContextPruner.from_pretrained(
        args.model,
        batch_size=args.batch_size,
        trust_remote_code=args.trust_remote_code,
        revision=args.revision,
    )
    texts = rs.column(args.text_field)
    options = {
        "threshold": args.threshold,
        "aggregation": args.aggregation,
        "always_select_title": args.always_select_title,
        "max_tokens": args.max_tokens,
        "keep_patterns": keep_patterns or None,
        "passage_weight": args.passage_weight,
        "second_pass": args.second_pass,
        "second_pass_passages": args.second_pass_passages,
        "second_pass_sentences": args.second_pass_sentences,
    }
    if args.query_field:
        queries = rs.column(args.query_field)
        for i, q in enumerate(queries):
            if not q.strip():
                raise DataValidationError(
                    "empty query", source=rs.source, record=rs.indices[i], field=args.query_field
                )
        results = per_query(pruner.prune_batch, queries, texts, **options)
    else:
        results = pruner.prune(args.query, texts, **options)
    out_records = []
    kept_idx = []
    for pos, (rec, res) in enumerate(zip(rs.records, results)):
        if args.drop_empty and res.is_empty:
            continue
        row = {**rec, **res.to_dict()}
        if args.second_pass:
            row["extended_query"] = res.extra.get("extended_query")
        out_records.append(row)
        kept_idx.append(rs.indices[pos])
    write_records(out_records, args.output)
    note = report_rejects(rs, args.output)
    n_chars = sum(r.n_chars for r in results)
    kept_chars = sum(r.n_chars * (1 - r.compression_chars) for r in results)
    n_tok = sum(r.n_tokens for r in results)
    kept_tok = sum(r.n_tokens * (1 - r.compression_tokens) for r in results)
    comp_c = 1 - kept_chars / n_chars if n_chars else 0.0
    comp_t = 1 - kept_tok / n_tok if n_tok else 0.0
    n_empty = sum(r.is_empty for r in results)
    manifest = build_manifest(
        command="dataprune rag prune",
        parameters={
            "query": args.query,
            "query_field": args.query_field,
            "text_field": args.text_field,
            "model": args.model,
            "threshold": (pruner.default_threshold if args.threshold is None else args.threshold),
            "threshold_from_checkpoint": args.threshold is None,
            "aggregation": args.aggregation,
            "always_select_title": args.always_select_title,
            "max_tokens": args.max_tokens,
            "keep_patterns": keep_patterns,
            "passage_weight": args.passage_weight,
            "second_pass": args.second_pass,
            "second_pass_passages": args.second_pass_passages if args.second_pass else None,
            "second_pass_sentences": args.second_pass_sentences if args.second_pass else None,
            "drop_empty": args.drop_empty,
            "precision": pruner.precision_,
        },
        random_state=None,
        inputs={rs.source: rs.content_hash},
        counts={
            "n_input": rs.n_input,
            "n_output": len(out_records),
            "n_rejected": len(rs.rejects),
            "n_emptied": n_empty,
        },
        models={"pruner": pruner.describe()},
        outputs={"passages": str(args.output)},
        timer=timer,
        extra={
            "compression_chars": round(comp_c, 4),
            "compression_tokens": round(comp_t, 4),
            "kept_indices": kept_idx,
        },
    )
    write_manifest(args.output, manifest)
    print(
        f"wrote {args.output}: {len(out_records)} of {len(results)} passages "
        f"({n_empty} pruned to nothing{', dropped' if args.drop_empty else ''}); removed "
        f"{comp_c:.1%} of characters, {comp_t:.1%} of tokens ({timer.elapsed:.1f} s)"
    )
    if note:
        print(note)
    return 0
