"""``dataprune embed``: encode a text field to a float32 ``.npy`` matrix (cached, resumable)."""

from __future__ import annotations

import argparse

from dataprune.cli._common import Subparsers, add_input_args
from dataprune.embedding_defaults import DEFAULT_BATCH_SIZE

ORDER = 10


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "embed",
        help="embed a text field with a sentence encoder (cached, resumable) and save a .npy matrix",
    )
    add_input_args(p, text=True, sft=True)
    p.add_argument(
        "--output", "-o", required=True, help="output .npy file (n_samples x dim float32)"
    )
    p.add_argument(
        "--model", default=None, help="encoder path or hub id (default: all-MiniLM-L6-v2)"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"encoder batch size (default {DEFAULT_BATCH_SIZE})",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from dataprune.atomic import atomic_path
    from dataprune.cli._common import (
        load_validated,
        record_texts,
        report_rejects,
        text_fields_from_args,
    )
    from dataprune.embeddings import embed_texts
    from dataprune.errors import DataValidationError
    from dataprune.manifest import RunTimer, build_manifest, write_manifest
    from dataprune.models import resolve_encoder
    from dataprune.outputs import check_output

    timer = RunTimer()
    if not str(args.output).endswith(".npy"):
        raise DataValidationError("expected an output path ending in .npy", source=args.output)
    if args.batch_size < 1:
        raise DataValidationError(f"--batch-size must be >= 1, got {args.batch_size}")
    fields = text_fields_from_args(args)
    check_output(args.output, inputs=(args.input,))
    rs, fields = load_validated(args, text_fields=fields)
    texts = record_texts(rs.records, fields)
    resolved = resolve_encoder(args.model)
    X = embed_texts(texts, args.model, batch_size=args.batch_size)
    with atomic_path(args.output) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.asarray(X))
    note = report_rejects(rs, args.output)
    manifest = build_manifest(
        command="dataprune embed",
        parameters={"fields": fields, "model": args.model, "batch_size": args.batch_size},
        random_state=None,
        inputs={rs.source: rs.content_hash},
        counts={"n_input": rs.n_input, "n_output": len(rs), "n_rejected": len(rs.rejects)},
        models={"encoder": resolved.describe()},
        outputs={
            "embeddings": str(args.output),
            "row_index": "input record positions in 'kept_indices'",
        },
        timer=timer,
        extra={"kept_indices": rs.indices if rs.rejects else "all"},
    )
    write_manifest(args.output, manifest)
    print(f"wrote {args.output}: {X.shape[0]} x {X.shape[1]} float32 ({timer.elapsed:.1f} s)")
    if note:
        print(note)
    return 0
