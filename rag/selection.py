"""From token keep-probabilities to kept sentences (thresholds, aggregation, title rule, budgets).

Aggregations (``aggregation=``), resolved through a :class:`~dataprune.registry.Registry`:

* ``"mean_prob"``: keep a sentence when the mean keep-probability of its tokens is > ``threshold``;
* ``"vote"``: keep it when more than half of its tokens have keep-probability > ``threshold``.

Title rule (``always_select_title=True``): the first sentence is kept exactly when some other
sentence of the passage is kept. Budgets (``max_tokens`` / ``rate``) then drop the
lowest-scoring kept sentences across all passages of one query until the budget holds.

Keep patterns (``keep_patterns``, see :mod:`dataprune.rag.patterns`): a sentence containing a
match is kept whatever its score; it counts as kept for the title rule, and budgets drop only
sentences that are not forced (when the forced ones alone exceed the budget, the result exceeds
it and this is logged at INFO).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.rag.inference import PassageScores
from dataprune.rag.passage_weight import DEFAULT_PASSAGE_WEIGHT, weight_by_passage
from dataprune.rag.patterns import compile_keep_patterns, forced_mask
from dataprune.registry import Registry

logger = logging.getLogger(__name__)

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
    extra : dict
        Further information (e.g. ``"second_pass"`` and ``"extended_query"`` after a multi-hop
        second pass).
    forced_sentences : list of int
        Indices of kept sentences kept only because they match a keep pattern (the threshold,
        or a budget, would have dropped them); ascending, a subset of ``kept_sentences``.
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
    forced_sentences: list[int] = field(default_factory=list)

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
            "forced_sentences": self.forced_sentences,
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
    protected: list[np.ndarray] | None = None,
) -> list[np.ndarray]:
    """Drop the lowest-scoring kept sentences (all passages of one query) to meet the budget.

    Sentences marked in ``protected`` (keep-pattern matches) are never dropped. Returns, per
    passage, a mask of the protected sentences the budget would otherwise have dropped.
    """
    saved = [np.zeros(m.shape, dtype=bool) for m in masks]
    total = sum(int(s.sentence_n_tokens.sum()) for s in scores)
    limits = []
    if max_tokens is not None:
        limits.append(max_tokens)
    if rate is not None:
        limits.append(int(np.floor(rate * total)))
    if not limits:
        return saved
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
        if protected is not None and protected[p][j]:
            saved[p][j] = True
            continue
        masks[p][j] = False
        used -= int(scores[p].sentence_n_tokens[j])
    if used > limit:
        logger.info(
            "sentences forced by keep_patterns hold %d tokens, over the budget of %d tokens; "
            "they are kept and the budget is exceeded",
            used,
            limit,
        )
    return saved


def render(
    text: str,
    scores: PassageScores,
    keep: np.ndarray,
    *,
    extra: dict | None = None,
    forced: np.ndarray | None = None,
) -> PrunedPassage:
    """Build the :class:`PrunedPassage` for a keep mask.

    ``forced`` (shape ``(n_sentences,)``) marks the kept sentences that only a keep pattern kept.
    """
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
        forced_sentences=[] if forced is None else [int(j) for j in np.flatnonzero(forced & keep)],
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
    keep_patterns: Sequence[str | re.Pattern[str]] | None = None,
    passage_weight: float = DEFAULT_PASSAGE_WEIGHT,
) -> list[PrunedPassage]:
    """Prune the passages of ONE query from their scores.

    Parameters
    ----------
    passages : sequence of str
        Shape ``(n_passages,)``.
    scores : sequence of PassageScores
        Shape ``(n_passages,)``; ``scores[j]`` are the scores of ``passages[j]``.
    threshold, aggregation, always_select_title, max_tokens, rate
        See :meth:`dataprune.rag.ContextPruner.prune`.
    keep_patterns : sequence of str or re.Pattern, optional
        Sentences containing a match (:func:`re.search`) are always kept, and count as kept for
        the title rule; budgets drop only the other sentences.
    passage_weight : float, default=DEFAULT_PASSAGE_WEIGHT
        Exponent of each passage's score relative to the query's best passage, which scales its
        token keep-probabilities before everything else (:mod:`dataprune.rag.passage_weight`;
        0 = off; no effect with a single passage). ``sentence_scores`` of the results are the
        weighted ones.

    Returns
    -------
    list of PrunedPassage
        Shape ``(n_passages,)``, in input order.
    """
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or int(max_tokens) != max_tokens or max_tokens < 0
    ):
        raise DataValidationError(f"max_tokens must be a non-negative integer, got {max_tokens!r}")
    if rate is not None and not (isinstance(rate, (int, float)) and 0.0 <= rate <= 1.0):
        raise DataValidationError(f"rate must be in [0, 1], got {rate!r}")
    patterns = compile_keep_patterns(keep_patterns)
    scores = weight_by_passage(scores, passage_weight)
    masks = [
        select_sentences(
            s, threshold=threshold, aggregation=aggregation, always_select_title=always_select_title
        )
        for s in scores
    ]
    if not patterns:
        _budget(masks, list(scores), max_tokens=max_tokens, rate=rate)
        if always_select_title and (max_tokens is not None or rate is not None):
            for m in masks:
                if m.size:
                    m[0] = m[0] and bool(m[1:].any())
        return [render(t, s, m) for t, s, m in zip(passages, scores, masks)]
    forced = [forced_mask(s.sentences, patterns) for s in scores]
    by_score = [m.copy() for m in masks]
    for m, f in zip(masks, forced):
        m |= f
        if always_select_title and m.size:
            m[0] = bool(f[0]) or bool(m[1:].any())
    saved = _budget(masks, list(scores), max_tokens=max_tokens, rate=rate, protected=forced)
    if always_select_title and (max_tokens is not None or rate is not None):
        for m, f in zip(masks, forced):
            if m.size:
                m[0] = bool(f[0]) or (m[0] and bool(m[1:].any()))
    return [
        render(t, s, m, forced=f & ~(b & ~sv))
        for t, s, m, f, b, sv in zip(passages, scores, masks, forced, by_score, saved)
    ]
