"""``dataprune prune-model``: prune a causal LM (Wanda / magnitude / llm-compressor) from a
calibration set chosen by data pruning, optionally refine the masks (DSnoT), and save the pruned
model."""

from __future__ import annotations

import argparse
import dataclasses

from dataprune.cli._common import (
    Subparsers,
    add_dtype_arg,
    add_input_args,
    key_value_option,
    model_dtype,
    non_negative_float,
    positive_int,
)
from dataprune.cli.config_options import add_config_options, config_from_args
from dataprune.model_pruning.base import MASK_REFINERS
from dataprune.model_pruning.dsnot import OBJECTIVES, SKIPS, DSnoTConfig

ORDER = 60

_METHODS = ("wanda", "magnitude", "llmcompressor-wanda", "llmcompressor-sparsegpt")
_REFINABLE = ("wanda", "magnitude")
# --dsnot-max-cycles ... : DSnoTConfig's fields, defaults and help (one source)
_DSNOT_FLAGS = {
    f.name: "--dsnot-" + f.name.replace("_", "-") for f in dataclasses.fields(DSnoTConfig)
}


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "prune-model",
        help="prune a causal LM's weights (Wanda, magnitude, llm-compressor) from a calibration "
        "set chosen with a selection method; saves the pruned model",
        description=(
            "Build a calibration set from --calibration with --selector, prune the model's decoder "
            "linear layers to --sparsity (or an N:M --pattern) and write OUTPUT/ with the pruned "
            "model (save_pretrained + tokenizer), prune_report.json (per-layer sparsity, time), "
            "calibration.npz (the samples and their provenance) and manifest.json."
        ),
    )
    p.add_argument(
        "--model", default=None, help="causal LM path or hub id (default SmolLM2-135M-Instruct)"
    )
    p.add_argument("--method", default="wanda", choices=_METHODS, help="pruner (default wanda)")
    p.add_argument(
        "--sparsity", type=float, default=None, help="fraction of weights to zero, e.g. 0.5"
    )
    p.add_argument(
        "--pattern", default=None, help="'unstructured' (default) or N:M such as 2:4 or 4:8"
    )
    g = p.add_argument_group("calibration")
    add_input_args(
        g,
        sft=True,
        flags=("--calibration",),
        dest="calibration",
        required=False,
        input_help="JSONL / JSON / parquet / CSV pool of texts, or a hub dataset id",
        rejects="DIR/calibration.rejects.jsonl (those of --eval to DIR/eval.rejects.jsonl)",
    )
    g.add_argument(
        "--selector",
        default="random",
        help="selection method for the calibration samples: random (default), kcenter, "
        "prototypes, facility_location, semdedup, ...",
    )
    g.add_argument(
        "--option",
        "-O",
        action="append",
        type=key_value_option,
        default=[],
        metavar="KEY=VALUE",
        help="selector option, repeatable (e.g. keep=easy for prototypes)",
    )
    g.add_argument("--n-samples", type=int, default=128, help="calibration samples (default 128)")
    g.add_argument("--seq-len", type=int, default=512, help="tokens per sample (default 512)")
    g.add_argument(
        "--chunking",
        choices=("pack", "truncate"),
        default="pack",
        help="pack texts into full seq-len blocks (default) or one truncated sample per text",
    )
    g.add_argument(
        "--encoder", default=None, help="encoder for embedding selectors (default MiniLM)"
    )
    g.add_argument(
        "--space",
        choices=("embeddings", "activations", "input_moments"),
        default="embeddings",
        help="where the selector compares candidates: sentence embeddings (default), the "
        "pruned model's own mean-pooled hidden states, or the per-channel second moments of its "
        "linear layers' inputs (with --selector herding: the pool's Wanda statistics)",
    )
    g.add_argument(
        "--source-field",
        default=None,
        metavar="FIELD",
        help="record field naming each text's source (dataset, file); used by --mix",
    )
    g.add_argument(
        "--mix",
        choices=("none", "balanced", "proportional"),  # = calibration.MIXES (numpy-free here)
        default="none",
        help="balanced: spread --n-samples evenly over the sources, proportional: in proportion "
        "to their candidates; then select in each",
    )
    g.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    w = p.add_argument_group("pruner")
    w.add_argument(
        "--no-sequential",
        action="store_true",
        help="wanda (and --refine): calibrate all layers in one dense pass instead of block by "
        "block",
    )
    w.add_argument("--batch-size", type=int, default=8, help="calibration batch size (default 8)")
    w.add_argument(
        "--refine",
        default=None,
        choices=MASK_REFINERS.names(),
        help="refine the masks after pruning, from the same calibration data (dsnot: DSnoT "
        "prune-and-grow swaps that lower a layer's expected output error, same sparsity and N:M "
        "pattern; only the MLP layers unless --dsnot-skip says otherwise); wanda or magnitude "
        "(which then needs --calibration)",
    )
    d = p.add_argument_group("DSnoT refinement (with --refine dsnot)")
    add_config_options(
        d,
        DSnoTConfig,
        flags=_DSNOT_FLAGS,
        choices={"objective": OBJECTIVES, "skip": SKIPS},
        types={
            "max_cycles": positive_int,
            "update_threshold": non_negative_float,
            "variance_power": non_negative_float,
        },
    )
    add_dtype_arg(
        w, what="used for the forward passes and the saved model (scores are always float32)"
    )
    e = p.add_argument_group("evaluation (optional)")
    e.add_argument("--eval", metavar="INPUT", help="held-out texts: perplexity before and after")
    e.add_argument(
        "--eval-text-field",
        default=None,
        help="text field of --eval (default: --text-field, else text)",
    )
    e.add_argument(
        "--eval-max-tokens", type=int, default=16384, help="token budget (default 16384)"
    )
    e.add_argument("--eval-seq-len", type=int, default=512, help="window (default 512)")
    e.add_argument(
        "--against-random",
        type=int,
        default=0,
        metavar="N",
        help="also prune from N random calibration sets of the same size (the default recipe, "
        "seeds --random-state + 1 ... + N) and report where this run's --eval perplexity falls "
        "among theirs: whether the selection helped on your data (N more prunes; needs --eval)",
    )
    p.add_argument("--output", "-o", required=True, metavar="DIR", help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty DIR")
    p.set_defaults(run=run)


def _validate_args(args: argparse.Namespace) -> None:
    from dataprune.errors import DataValidationError
    from dataprune.model_pruning.patterns import resolve_sparsity

    resolve_sparsity(args.sparsity, args.pattern)
    for name in ("n_samples", "seq_len", "batch_size", "eval_max_tokens", "eval_seq_len"):
        v = getattr(args, name)
        if v < 1:
            raise DataValidationError(f"--{name.replace('_', '-')} must be >= 1, got {v}")
    if args.refine and args.method not in _REFINABLE:
        raise DataValidationError(
            f"--refine works with --method {' or '.join(_REFINABLE)}, not {args.method}"
        )
    dsnot = config_from_args(DSnoTConfig, args)  # validates the --dsnot-* values
    if args.refine != "dsnot" and dsnot != DSnoTConfig():
        raise DataValidationError("the --dsnot-* options need --refine dsnot")
    if _needs_calibration(args) and not args.calibration:
        what = f"--method {args.method}" + (f" --refine {args.refine}" if args.refine else "")
        raise DataValidationError(f"{what} needs --calibration INPUT (a text pool)")
    if args.mix != "none" and not args.source_field:
        raise DataValidationError(
            f"--mix {args.mix} needs --source-field FIELD (each text's source)"
        )
    if args.space != "embeddings" and args.encoder:
        raise DataValidationError(f"--encoder is for --space embeddings, not {args.space}")
    if args.against_random < 0:
        raise DataValidationError(f"--against-random must be >= 0, got {args.against_random}")
    if args.against_random and not args.eval:
        raise DataValidationError("--against-random needs --eval INPUT (the texts to compare on)")
    if args.against_random and not _needs_calibration(args):
        raise DataValidationError(
            f"--against-random compares calibration sets; --method {args.method} uses none"
        )
    if args.calibration:  # --selector and its -O options: names and values, before any loading
        from dataprune.calibration.build import resolve_selector

        resolve_selector(args.selector, args.n_samples, args.random_state, dict(args.option))


def _needs_calibration(args: argparse.Namespace) -> bool:
    return args.method != "magnitude" or args.refine is not None


def _pruner_params(args: argparse.Namespace, tokenizer) -> dict:
    params: dict = {"sparsity": args.sparsity, "pattern": args.pattern}
    if args.method == "wanda" or (args.method == "magnitude" and args.refine):
        params.update(sequential=not args.no_sequential, batch_size=args.batch_size)
    elif args.method.startswith("llmcompressor"):
        params.update(batch_size=args.batch_size, tokenizer=tokenizer)
    if args.refine:
        params.update(refine=args.refine)
        if args.refine == "dsnot":
            params.update(refine_config=config_from_args(DSnoTConfig, args).to_dict())
    return params


def _texts(path: str, args: argparse.Namespace, fields: list[str]):
    from dataprune.cli._common import CLI_TEXT_OPTIONS, record_texts
    from dataprune.io import load_records, resolve_text_fields, validate_fields

    rs = load_records(path, split=args.split, on_bad_record=args.on_bad_record)
    fields = resolve_text_fields(rs, fields, how=CLI_TEXT_OPTIONS)
    rs = validate_fields(rs, text_fields=fields, on_bad_record=args.on_bad_record)
    return rs, record_texts(rs.records, fields)


def run(args: argparse.Namespace) -> int:
    import torch

    from dataprune.atomic import atomic_dir, atomic_write_json
    from dataprune.cli._common import field_sources, text_fields_from_args
    from dataprune.io import write_rejects
    from dataprune.manifest import RunTimer, build_manifest
    from dataprune.model_pruning import get_model_pruner
    from dataprune.model_pruning.perplexity import perplexity
    from dataprune.model_pruning.structure import all_prunable_layers
    from dataprune.models import load_causal_lm
    from dataprune.outputs import check_output

    timer = RunTimer()
    _validate_args(args)
    out = check_output(
        args.output,
        kind="dir",
        inputs=(args.calibration, args.eval, args.model),
        overwrite=args.overwrite,
    )
    calib_rs = texts = None
    if args.calibration:
        fields = text_fields_from_args(args)
        calib_rs, texts = _texts(args.calibration, args, fields)
    eval_texts = eval_rs = None
    if args.eval:
        eval_field = args.eval_text_field or args.text_field
        eval_rs, eval_texts = _texts(args.eval, args, [eval_field] if eval_field else [])

    model, tokenizer = load_causal_lm(args.model, dtype=args.dtype)
    resolved = getattr(model, "dataprune_source", None)
    all_prunable_layers(model)  # fail before any calibration work on a model without linears
    calib = None
    if texts is not None and _needs_calibration(args):
        from dataprune.calibration import build_calibration_set

        sources = None
        if args.source_field:
            sources = field_sources(calib_rs, args.source_field)
        calib = build_calibration_set(
            texts,
            tokenizer,
            n_samples=args.n_samples,
            seq_len=args.seq_len,
            selector=args.selector,
            selector_params=dict(args.option) or None,
            chunking=args.chunking,
            encoder=args.encoder,
            random_state=args.random_state,
            space=args.space,
            model=None if args.space == "embeddings" else model,
            sources=sources,
            mix=args.mix,
        )
    params = _pruner_params(args, tokenizer)
    pruner = get_model_pruner(args.method, **params)

    ppl_before = ppl_after = None
    if eval_texts is not None:
        ppl_before = perplexity(
            model, tokenizer, eval_texts, seq_len=args.eval_seq_len, max_tokens=args.eval_max_tokens
        )
    baseline = None
    if args.against_random:  # before the pruning that is kept: the model comes back dense
        baseline = _random_baseline(args, texts, tokenizer, model, pruner, eval_texts)
    report = pruner.prune(model, calib)
    if eval_texts is not None:
        ppl_after = perplexity(
            model, tokenizer, eval_texts, seq_len=args.eval_seq_len, max_tokens=args.eval_max_tokens
        )

    with atomic_dir(out) as tmp:
        with torch.no_grad():
            model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        report_d = report.to_dict()
        if ppl_before is not None:
            report_d["eval"] = {
                "source": args.eval,
                "dense": ppl_before.to_dict(),
                "pruned": ppl_after.to_dict(),
            }
        if baseline is not None:
            baseline["pruned"] = ppl_after.perplexity
            baseline["lower_than"] = sum(ppl_after.perplexity < x for x in baseline["perplexity"])
            report_d["eval"]["random_calibration"] = baseline
        atomic_write_json(tmp / "prune_report.json", report_d)
        if calib is not None:
            calib.save(tmp / "calibration.npz")
        # every skipped record is kept, with its line and reason (--on-bad-record skip)
        rejected = {
            name: write_rejects(rs.rejects, tmp / name)
            for name, rs in (("calibration", calib_rs), ("eval", eval_rs))
            if rs is not None and rs.rejects
        }
        inputs = {}
        if calib_rs is not None:
            inputs[calib_rs.source] = calib_rs.content_hash
        manifest = build_manifest(
            command="dataprune prune-model",
            parameters={
                "method": args.method,
                "sparsity": args.sparsity,
                "pattern": report.pattern,
                "selector": args.selector,
                "selector_options": dict(args.option),
                "n_samples": args.n_samples,
                "seq_len": args.seq_len,
                "chunking": args.chunking,
                "sequential": not args.no_sequential,
                "dtype": model_dtype(model),
                "refine": args.refine,
                "refine_config": params.get("refine_config"),
                "against_random": args.against_random,
            },
            random_state=args.random_state,
            inputs=inputs,
            counts={
                "n_calibration_pool": 0 if texts is None else len(texts),
                "n_calibration_samples": 0 if calib is None else calib.n_samples,
                "n_rejected": 0 if calib_rs is None else len(calib_rs.rejects),
                "n_eval_rejected": 0 if eval_rs is None else len(eval_rs.rejects),
                "n_pruned_layers": len(report.layers),
            },
            models={"causal_lm": resolved.describe() if resolved else {"name": str(args.model)}},
            outputs={
                "model": str(out),
                "report": str(out / "prune_report.json"),
                **{f"{k}_rejects": str(out / p.name) for k, p in rejected.items()},
            },
            timer=timer,
            extra={"calibration": None if calib is None else calib.provenance},
        )
        atomic_write_json(tmp / "manifest.json", manifest)
    print(report.summary())
    if calib is not None:
        print(
            f"calibration: {calib.n_samples} x {calib.seq_len} tokens chosen by {args.selector} "
            f"from {len(texts)} records"
        )
    if ppl_before is not None:
        print(
            f"perplexity on {args.eval}: dense {ppl_before.perplexity:.2f} -> pruned "
            f"{ppl_after.perplexity:.2f} ({ppl_after.n_tokens} tokens)"
        )
    if baseline is not None:
        print(_baseline_line(baseline))
    for name, path in rejected.items():
        rs = calib_rs if name == "calibration" else eval_rs
        print(f"skipped {len(rs.rejects)} bad {name} records (details in {out / path.name})")
    print(
        f"wrote {out}/ (model, tokenizer, prune_report.json, manifest.json) in {timer.elapsed:.1f} s"
    )
    return 0


def _random_baseline(args, texts, tokenizer, model, pruner, eval_texts) -> dict:
    """Prune from ``--against-random`` random calibration sets (same size, the default recipe)
    and measure ``--eval`` perplexity after each; the model is left dense."""
    from dataprune.calibration import build_calibration_set
    from dataprune.model_pruning import compare_calibration

    seeds = [args.random_state + i for i in range(1, args.against_random + 1)]
    sets = {
        f"random seed {s}": build_calibration_set(
            texts,
            tokenizer,
            n_samples=args.n_samples,
            seq_len=args.seq_len,
            selector="random",
            chunking=args.chunking,
            random_state=s,
        )
        for s in seeds
    }
    table = compare_calibration(
        model,
        pruner,
        sets,
        eval_texts,
        tokenizer=tokenizer,
        seq_len=args.eval_seq_len,
        max_eval_tokens=args.eval_max_tokens,
        include_dense=False,
    )
    return {
        "n": len(seeds),
        "seeds": seeds,
        "perplexity": [table.perplexity(name, "eval") for name in sets],
    }


def _baseline_line(b: dict) -> str:
    """One line: this run's perplexity against the random calibration sets'."""
    import numpy as np

    ppl = np.asarray(b["perplexity"])
    return (
        f"against {b['n']} random calibration set(s) of the same size (seeds "
        f"{', '.join(map(str, b['seeds']))}): perplexity {b['pruned']:.2f} vs random mean "
        f"{ppl.mean():.2f} (min {ppl.min():.2f}, max {ppl.max():.2f}); lower than "
        f"{b['lower_than']} of {b['n']}"
    )
