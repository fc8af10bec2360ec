"""Validation of :func:`dataprune.rag.train.train_pruner`'s runs: metrics over a threshold sweep,
the collapse rule, and the default threshold calibrated to ``TrainConfig.target_compression``."""

from __future__ import annotations

import logging
from typing import Any

from dataprune.errors import DataPruneError, DataValidationError
from dataprune.rag.config import TrainConfig

logger = logging.getLogger(__name__)

__all__ = [
    "EVAL_THRESHOLDS",
    "TrainingCollapsedError",
    "calibrate_default",
    "collapse_kind",
    "evaluate_examples",
    "metrics_at",
]

EVAL_THRESHOLDS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)


class TrainingCollapsedError(DataPruneError, RuntimeError):
    """The trained keep-head predicts (almost) the same decision for every sentence."""


def evaluate_examples(
    model: Any,
    tokenizer: Any,
    examples: list[Any],
    *,
    thresholds: tuple[float, ...] = EVAL_THRESHOLDS,
    aggregations: tuple[str, ...] = ("mean_prob",),
    batch_size: int = 32,
    show_progress_bar: bool | None = False,
) -> dict[str, Any]:
    """Score labelled examples once and report metrics over a threshold sweep."""
    from dataprune.rag.evaluation import pruning_metrics, sentence_average_precision
    from dataprune.rag.inference import score_pairs
    from dataprune.rag.selection import select_sentences

    was_training = model.training
    model.eval()
    scores = score_pairs(
        model,
        tokenizer,
        [e.query for e in examples],
        [e.passage for e in examples],
        max_length=model.config.max_length,
        max_query_tokens=model.config.max_query_tokens,
        batch_size=batch_size,
        sentences=[e.sentences for e in examples],
        show_progress_bar=show_progress_bar,
    )
    model.train(was_training)
    tc = [s.sentence_n_tokens for s in scores]
    ps = [s.passage_score for s in scores]
    out: dict[str, Any] = {
        "sentence_ap": sentence_average_precision(examples, [s.sentence_scores for s in scores]),
        "curves": {},
    }
    for agg in aggregations:
        rows = []
        for t in thresholds:
            masks = [select_sentences(s, threshold=t, aggregation=agg) for s in scores]
            m = pruning_metrics(examples, masks, token_counts=tc, passage_scores=ps)
            rows.append({"threshold": t, **m})
        out["curves"][agg] = rows
    return out


def collapse_kind(metrics: dict[str, Any]) -> str | None:
    """``"drop-everything"`` / ``"keep-everything"`` / ``None`` at the default threshold 0.1."""
    row = next(r for r in metrics["curves"]["mean_prob"] if r["threshold"] == 0.1)
    if row["kept_sentence_rate"] < 0.01 or (
        row["recall"] == row["recall"] and row["recall"] < 0.05
    ):
        return "drop-everything"
    if row["compression"] < 0.02:
        return "keep-everything"
    return None


def metrics_at(metrics: dict[str, Any], t: float = 0.1) -> dict[str, Any]:
    """The ``"mean_prob"`` row of :func:`evaluate_examples`' sweep at threshold ``t``."""
    return next(r for r in metrics["curves"]["mean_prob"] if r["threshold"] == t)


def calibrate_default(model: Any, tokenizer: Any, val_ex: list[Any], config: TrainConfig) -> Any:
    """The default threshold for ``config.target_compression`` on the validation passages that
    hold evidence (``None`` without a target)."""
    if config.target_compression is None:
        return None
    from dataprune.rag.calibrate import calibrate_threshold
    from dataprune.rag.pruner import ContextPruner

    bearing = [e for e in val_ex if e.has_answer]
    if not bearing:
        raise DataValidationError(
            "target_compression needs validation passages that hold evidence; there are none"
        )
    pruner = ContextPruner(
        model,
        tokenizer,
        max_length=model.config.max_length,
        max_query_tokens=model.config.max_query_tokens,
        precision="float32",
    )
    was = model.training
    model.eval()
    cal = calibrate_threshold(
        pruner,
        [e.query for e in bearing],
        [[e.passage] for e in bearing],
        [[e.labels] for e in bearing],
        target_compression=config.target_compression,
        on="answer_bearing",
    )
    model.train(was)
    logger.info(
        "default threshold %.3f: compression %.3f, recall %.3f on %d validation passages with "
        "evidence (target compression %.2f)",
        cal.threshold,
        cal.compression,
        cal.recall,
        cal.n_passages,
        config.target_compression,
    )
    return cal
