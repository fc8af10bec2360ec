"""Passage-aware sentence scores: weigh each passage by its relevance relative to the best one.

The keep head scores a sentence from its own passage and the query alone. When a query comes with
several retrieved passages, the ranking head's passage scores say which of them matter; a
sentence of a passage the ranker puts far below the query's best passage is less likely to be
evidence than its own score says. Before selection, each passage's token keep-probabilities are
multiplied by

    (passage_score / max passage_score of the query's passages) ** passage_weight

so the best passage keeps its scores, the others are scaled down by how far they rank below it,
and a query with a single passage is left unchanged (single-passage calls prune exactly as
without the weight). ``passage_weight=0`` turns it off. No further forward pass: it reuses the
passage scores every scoring already returns.

Off by default. ``benchmarks/rag_pruning.py`` sweeps it on multi-hop questions with all their
passages: on the development questions (validation questions of the files the pruner trained
on, where its ranking head is at its best) a weight of 2 raises the recall reached at 60%
compression, but on the held-out MuSiQue questions every weight swept lowers it
(``benchmarks/results/rag_pruning.md``). Turn it on for a ranker you have checked on your own
questions, and calibrate the threshold with the same weight
(:func:`~dataprune.rag.calibrate_threshold`): weighted probabilities are smaller.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from dataprune.errors import DataValidationError

if TYPE_CHECKING:  # the CLI reads the default while building its parser: no numpy there
    from dataprune.rag.inference import PassageScores

__all__ = ["DEFAULT_PASSAGE_WEIGHT", "check_passage_weight", "weight_by_passage"]

#: Exponent of the relative passage score (see the module docstring); 0: off.
DEFAULT_PASSAGE_WEIGHT = 0.0


def check_passage_weight(passage_weight: object) -> float:
    """``passage_weight`` as a float; one-line error unless it is a finite number ``>= 0``."""
    if (
        isinstance(passage_weight, bool)
        or not isinstance(passage_weight, (int, float))
        or not math.isfinite(passage_weight)
        or passage_weight < 0
    ):
        raise DataValidationError(
            f"passage_weight must be a finite number >= 0 (0 = off), got {passage_weight!r}"
        )
    return float(passage_weight)


def weight_by_passage(
    scores: Sequence[PassageScores], passage_weight: float = DEFAULT_PASSAGE_WEIGHT
) -> list[PassageScores]:
    """Scale each passage's token keep-probabilities by its relative passage score.

    Parameters
    ----------
    scores : sequence of PassageScores
        Shape ``(n_passages,)``: the scores of ONE query's passages.
    passage_weight : float, default=DEFAULT_PASSAGE_WEIGHT
        Exponent ``>= 0`` of ``passage_score / max(passage_score)``; 0 returns the scores as
        they are.

    Returns
    -------
    list of PassageScores
        Shape ``(n_passages,)``, new objects (the inputs are not modified); token
        probabilities stay in [0, 1] and never rise (higher = keep). ``passage_score`` is
        unchanged.
    """
    import numpy as np

    w = check_passage_weight(passage_weight)
    scores = list(scores)
    if w == 0.0 or len(scores) < 2:
        return scores
    ps = np.array([s.passage_score for s in scores], dtype=np.float64)
    best = float(ps.max())
    if not best > 0.0:
        return scores
    factor = np.clip(ps / best, 0.0, 1.0) ** w
    return [
        replace(s, token_probs=[(p * np.float32(f)).astype(np.float32) for p in s.token_probs])
        if f < 1.0
        else s
        for s, f in zip(scores, factor)
    ]
