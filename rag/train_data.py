"""Training data and the checkpoint card of :func:`dataprune.rag.train.train_pruner`.

:func:`prepare_training_data` splits SQuAD v2 by article and builds the train / validation /
held-out examples; :func:`window_targets` turns examples into labelled token windows;
:func:`build_card` writes down everything that reproduces and describes a run.
"""

from __future__ import annotations

import hashlib
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dataprune.rag.config import TrainConfig

__all__ = ["TrainingData", "build_card", "file_sha256", "prepare_training_data", "window_targets"]


@dataclass
class TrainingData:
    """The article split and the examples built from it.

    Attributes
    ----------
    data_file : Path
        The SQuAD v2 JSON file read.
    split : ArticleSplit
        Train / validation / test article titles.
    train, val, test : list of PruningExample
        Examples (query, passage, sentence labels) of each part.
    kinds : dict
        Training examples per kind (answerable, negatives, unanswerable, bridge).
    parts : list of MixturePart
        The evidence sets mixed in (``TrainConfig.evidence_sets``), with their own counts.
    n_squad_train : int
        SQuAD training pairs (0 with ``include_squad=False``).
    """

    data_file: Path
    split: Any
    train: list[Any]
    val: list[Any]
    test: list[Any]
    kinds: dict[str, int]
    parts: list[Any] = field(default_factory=list)
    n_squad_train: int = 0


def file_sha256(path: Path) -> str:
    """SHA-256 of a file (recorded in the card for the training data)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def window_targets(examples: list[Any], tokenizer: Any, config: TrainConfig) -> list[dict]:
    """Training windows (query + passage tokens) with per-token sentence labels (-100: none)."""
    from dataprune.rag.windows import encode_pairs

    _pairs, windows = encode_pairs(
        tokenizer,
        [e.query for e in examples],
        [e.passage for e in examples],
        max_length=config.pruner.max_length,
        max_query_tokens=config.pruner.max_query_tokens,
        sentences=[e.sentences for e in examples],
    )
    items = []
    for w in windows:
        labels = examples[w.pair].labels
        sent = np.asarray(w.sentence_of_token, dtype=np.int64)
        y = np.where(sent >= 0, np.asarray(labels, dtype=np.int64)[np.maximum(sent, 0)], -100)
        if not len(labels):
            y = np.full_like(sent, -100)
        items.append(
            {
                "ids": np.asarray(w.input_ids, dtype=np.int64),
                "types": np.asarray(w.token_type_ids, dtype=np.int64),
                "sent": sent,
                "seg": np.asarray(w.segment_ids(), dtype=np.int64),
                "em": np.asarray(w.exact_match or [0] * len(w), dtype=np.float32),
                "y": y,
                "rank": float((y == 1).any()),
            }
        )
    return items


def prepare_training_data(config: TrainConfig) -> TrainingData:
    """Split ``config.data`` by article and build the examples (deterministic given the seed)."""
    from dataprune.rag.labels import _squad_file, build_examples, load_squad_v2, split_articles
    from dataprune.rag.train_mixture import evidence_training_examples

    rs = config.random_state
    data = load_squad_v2(config.data)
    data_file = _squad_file(config.data)
    split = split_articles(
        [a["title"] for a in data],
        n_test=config.n_test_articles,
        n_val=config.n_val_articles,
        random_state=rs,
    )
    train_ex = build_examples(
        data,
        split.train,
        negatives_per_question=config.negatives_per_question,
        unanswerable_share=config.unanswerable_share,
        random_state=rs,
    )
    val_ex = (
        build_examples(
            data,
            split.val,
            negatives_per_question=1,
            negative_kinds=("hard_negative",),
            random_state=rs,
        )
        if split.val
        else []
    )
    test_ex = build_examples(
        data,
        split.test,
        negatives_per_question=1,
        negative_kinds=("hard_negative",),
        random_state=rs,
    )
    if config.max_train_pairs is not None and len(train_ex) > config.max_train_pairs:
        pick = np.random.default_rng(rs + 1).choice(
            len(train_ex), config.max_train_pairs, replace=False
        )
        train_ex = [train_ex[i] for i in sorted(pick)]
    if len(val_ex) > config.n_val_passages:
        pick = np.random.default_rng(rs).choice(len(val_ex), config.n_val_passages, replace=False)
        val_ex = [val_ex[i] for i in sorted(pick)]
    if not config.include_squad:
        train_ex = []
    n_squad = len(train_ex)
    parts = evidence_training_examples(config) if config.evidence_sets else []
    for part in parts:
        train_ex = train_ex + part.train
        val_ex = val_ex + part.val
    kinds = {k: sum(e.kind == k for e in train_ex) for k in sorted({e.kind for e in train_ex})}
    return TrainingData(data_file, split, train_ex, val_ex, test_ex, kinds, parts, n_squad)


def build_card(
    config: TrainConfig,
    out: Path,
    td: TrainingData,
    *,
    command: str | None,
    n_windows: int,
    steps: int,
    best_step: int,
    prior: float,
    n_frozen: int,
    mask_name: str,
    history: list[dict[str, Any]],
    held_out: dict[str, Any],
    backbone: dict[str, Any],
    wall_s: float,
    calibration: Any = None,
) -> dict[str, Any]:
    """The checkpoint's ``card.json``: recipe, data, split, validation history, held-out curves."""
    import torch
    import transformers

    default = 0.1 if calibration is None else float(calibration.threshold)
    sets = (["SQuAD v2 (CC BY-SA 4.0)"] if config.include_squad else []) + [
        f"{p.name} ({p.licence})" for p in td.parts
    ]
    return {
        "name": out.name,
        "description": "Provence-style context pruner (token keep-head + ranking head, "
        f"keep_head={config.pruner.keep_head!r}) fine-tuned from "
        f"{config.pruner.backbone} on sentence labels of {', '.join(sets)}; embeddings frozen.",
        "training_sets": sets,
        "command": command,
        "train_config": config.to_dict(),
        "data": {
            "path": config.data,
            "file": td.data_file.name,
            "sha256": file_sha256(td.data_file),
            "split_by": "article",
            "split": td.split.to_dict(),
            "n_train_pairs": len(td.train),
            "n_squad_train_pairs": td.n_squad_train,
            "evidence_sets": [p.to_dict() for p in td.parts],
            "train_pairs_by_kind": td.kinds,
            "n_train_windows": n_windows,
            "n_val_passages": len(td.val),
            "n_test_passages": len(td.test),
            "test_passages_by_kind": {
                k: sum(e.kind == k for e in td.test) for k in sorted({e.kind for e in td.test})
            },
            "labels": "sentence overlapping a gold answer span = 1; unanswerable questions and "
            "negatives (question + BM25-nearest other paragraph of the same article without the "
            "answer; in training also a random paragraph of another article) = all 0",
        },
        "steps": steps,
        "schedule_steps": config.max_steps,
        "best_step": best_step,
        "seed": config.random_state,
        "token_positive_prior": prior,
        "frozen_layers_cached": n_frozen,
        "frozen_layers_attention_mask": mask_name if n_frozen else None,
        "validation_history": history,
        "held_out": {
            "sentence_ap": held_out["sentence_ap"],
            "curves": held_out["curves"],
            "default_threshold": default,
            "at_default": next(
                r for r in held_out["curves"]["mean_prob"] if r["threshold"] == default
            ),
            "default_threshold_source": "calibrated on the validation passages that hold "
            f"evidence to a mean character compression of {config.target_compression}"
            if calibration is not None
            else "fixed (Provence's 0.1)",
            "calibration": None
            if calibration is None
            else {
                "threshold": calibration.threshold,
                "validation_compression": round(float(calibration.compression), 4),
                "validation_recall": None
                if calibration.recall is None
                else round(float(calibration.recall), 4),
                "n_validation_passages": calibration.n_passages,
            },
        },
        "backbone": backbone,
        "wall_time_s": round(wall_s, 1),
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "python": platform.python_version(),
        },
        "trained_on": f"{platform.machine()} CPU, {torch.get_num_threads()} threads",
    }
