"""From token keep-probabilities to kept sentences (thresholds, aggregation, title rule, budgets).

Aggregations (``aggregation=``), resolved through a :class:`~dataprune.registry.Registry`:

* ``"mean_prob"``: keep a sentence when the mean keep-probability of its tokens is > ``threshold``;
* ``"vote"``: keep it when more than half of its tokens have keep-probability > ``threshold``.

Title rule (``always_select_title=True``): the first sentence is kept exactly when some other
sentence of the passage is kept. Budgets (``max_tokens`` / ``rate``) then drop the
lowest-scoring kept sentences across all passages of one query until the budget holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.rag.inference import PassageScores
from dataprune.registry import Registry

__all__ = ["AGGREGATIONS", "PrunedPassage", "select_passages", "select_sentences"]

AGGREGATIONS: Registry[Callable[[np.ndarray, float], bool]] = Registry("aggregation")


@AGGREGATIONS.register("mean_prob")
def _mean_prob(token_probs: np.ndarray, threshold: float) -> bool:
    return bool(token_probs.size) and float(token_probs.mean()) > threshold


@AGGREGATIONS.register("vote")
def _vote(token_probs: np.ndarray, threshold: float) -> bool:
    return bool(token_probs.size) and float((token_probs > threshold).mean()) > 0.5


@dataclass
class PrunedPassage:
    """One passage after pruning.

    Attributes
    ----------
    text : str
        Pruned text: kept sentences in original order (consecutive kept sentences keep their
        original separator, gaps are joined by a space). ``""`` when nothing is kept.
    kept_sentences : list of int
        Indices of kept sentences (ascending).
    sentences : list of str
        All sentences of the original passage.
    sentence_scores : list of float
        Mean token keep-probability per sentence (higher = keep), shape ``(n_sentences,)``.
    passage_score : float
        Relevance of the passage to the query in [0, 1] (higher = more relevant; rerank by it).
    compression_chars : float
        Share of the passage's characters removed, in [0, 1] (0 for an empty passage).
    compression_tokens : float
        Share of the passage's tokens (pruner tokenizer) removed, in [0, 1].
    n_chars, n_tokens : int
        Size of the original passage.
    n_windows : int
        Model windows the passage needed (> 1 for long passages).
    """

    text: str
    kept_sentences: list[int]
    sentences: list[str]
    sentence_scores: list[float]
    passage_score: float
    compression_chars: float
    compression_tokens: float
    n_chars: int
    n_tokens: int
    n_windows: int = 1
    extra: dict = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        """True when every sentence was pruned."""
        return not self.kept_sentences

    def to_dict(self) -> dict:
        return {
            "pruned_text": self.text,
            "kept_sentences": self.kept_sentences,
            "sentence_scores": [round(float(s), 6) for s in self.sentence_scores],
            "passage_score": round(float(self.passage_score), 6),
            "compression_chars": round(float(self.compression_chars), 6),
            "compression_tokens": round(float(self.compression_tokens), 6),
            "n_sentences": len(self.sentences),
        }


def check_threshold(threshold: float) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise DataValidationError(f"threshold must be a number, got {type(threshold).__name__}")
    if not 0.0 <= float(threshold) <= 1.0:
        raise DataValidationError(f"threshold must be in [0, 1], got {threshold}")
    return float(threshold)


def select_sentences(
    scores: PassageScores,
    *,
    threshold: float = 0.1,
    aggregation: str = "mean_prob",
    always_select_title: bool = False,
) -> np.ndarray:
    """Boolean keep mask of shape ``(n_sentences,)`` for one passage."""
    rule = AGGREGATIONS.get(aggregation)
    t = check_threshold(threshold)
    keep = np.array([rule(p, t) for p in scores.token_probs], dtype=bool)
    if always_select_title and keep.size:
        keep[0] = bool(keep[1:].any())
    return keep


def _budget(
    masks: list[np.ndarray],
    scores: list[PassageScores],
    *,
    max_tokens: int | None,
    rate: float | None,
) -> None:
    """Drop the lowest-scoring kept sentences (all passages of one query) to meet the budget."""
    total = sum(int(s.sentence_n_tokens.sum()) for s in scores)
    limits = []
    if max_tokens is not None:
        limits.append(max_tokens)
    if rate is not None:
        limits.append(int(np.floor(rate * total)))
    if not limits:
        return
    limit = min(limits)
    kept = [
        (float(sc.sentence_scores[j]) * 1.0, p, j)
        for p, (m, sc) in enumerate(zip(masks, scores))
        for j in np.flatnonzero(m)
    ]
    used = sum(int(scores[p].sentence_n_tokens[j]) for _, p, j in kept)
    for _, p, j in sorted(kept, key=lambda x: (x[0], -x[1], -x[2])):
        if used <= limit:
            break
        masks[p][j] = False
        used -= int(scores[p].sentence_n_tokens[j])


def render(
    text: str, scores: PassageScores, keep: np.ndarray, *, extra: dict | None = None
) -> PrunedPassage:
    """Build the :class:`PrunedPassage` for a keep mask."""
    sents = scores.sentences
    kept = [int(j) for j in np.flatnonzero(keep)]
    pieces: list[str] = []
    prev = None
    for j in kept:
        s = sents[j]
        if prev is not None:
            pieces.append(text[sents[prev].end : s.start] if j == prev + 1 else " ")
        pieces.append(s.text)
        prev = j
    pruned = "".join(pieces)
    n_chars = len(text)
    kept_chars = sum(sents[j].end - sents[j].start for j in kept)
    total_chars = sum(s.end - s.start for s in sents)
    n_tok = int(scores.sentence_n_tokens.sum())
    kept_tok = int(scores.sentence_n_tokens[kept].sum()) if kept else 0
    return PrunedPassage(
        text=pruned,
        kept_sentences=kept,
        sentences=[s.text for s in sents],
        sentence_scores=[float(x) for x in scores.sentence_scores],
        passage_score=scores.passage_score,
        compression_chars=1.0 - kept_chars / total_chars if total_chars else 0.0,
        compression_tokens=1.0 - kept_tok / n_tok if n_tok else 0.0,
        n_chars=n_chars,
        n_tokens=n_tok,
        n_windows=scores.n_windows,
        extra=dict(extra or {}),
    )


def select_passages(
    passages: Sequence[str],
    scores: Sequence[PassageScores],
    *,
    threshold: float = 0.1,
    aggregation: str = "mean_prob",
    always_select_title: bool = False,
    max_tokens: int | None = None,
    rate: float | None = None,
) -> list[PrunedPassage]:
    """Prune the passages of ONE query from their scores."""
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or int(max_tokens) != max_tokens or max_tokens < 0
    ):
        raise DataValidationError(f"max_tokens must be a non-negative integer, got {max_tokens!r}")
    if rate is not None and not (isinstance(rate, (int, float)) and 0.0 <= rate <= 1.0):
        raise DataValidationError(f"rate must be in [0, 1], got {rate!r}")
    masks = [
        select_sentences(
            s, threshold=threshold, aggregation=aggregation, always_select_title=always_select_title
        )
        for s in scores
    ]
    _budget(masks, list(scores), max_tokens=max_tokens, rate=rate)
    if always_select_title and (max_tokens is not None or rate is not None):
        for m in masks:
            if m.size:
                m[0] = m[0] and bool(m[1:].any())
    return [render(t, s, m) for t, s, m in zip(passages, scores, masks)]
