"""Choose a keep threshold for a target compression on your own passages.

>>> from dataprune.rag import ContextPruner, calibrate_threshold
>>> pruner = ContextPruner.from_pretrained("default")
>>> cal = calibrate_threshold(pruner, queries, passages, labels, target_compression=0.5)
>>> pruner.prune_batch(queries, passages, threshold=cal.threshold)

The passages are scored once (:meth:`~dataprune.rag.ContextPruner.score`); thresholds are then
swept over the cached scores with the selection code :meth:`~dataprune.rag.ContextPruner.prune`
uses, so the sweep costs no further forward pass. Both built-in aggregations keep fewer sentences
as the threshold rises, so compression never falls as the threshold rises, and the sweep is a
binary search.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.rag.inference import PassageScores
from dataprune.rag.passage_weight import (
    DEFAULT_PASSAGE_WEIGHT,
    check_passage_weight,
    weight_by_passage,
)
from dataprune.rag.selection import AGGREGATIONS, select_passages
from dataprune.rag.sentences import split_sentences

if TYPE_CHECKING:
    from dataprune.rag.pruner import ContextPruner

logger = logging.getLogger(__name__)

__all__ = ["ThresholdCalibration", "calibrate_threshold"]

_ON = ("answer_bearing", "all")


@dataclass(frozen=True)
class ThresholdCalibration:
    """Result of :func:`calibrate_threshold`.

    Attributes
    ----------
    threshold : float
        The smallest threshold (of the searched ones) whose mean compression reaches the target.
    compression : float
        Mean share of characters removed per passage at ``threshold`` (over the calibration
        passages; higher = more removed), ``>= target_compression``.
    recall : float or None
        Share of the calibration passages' label-1 sentences kept at ``threshold``; ``None``
        without labels.
    n_passages : int
        Passages the compression is averaged over.
    target_compression : float
        The requested target.
    """

    threshold: float
    compression: float
    recall: float | None
    n_passages: int
    target_compression: float


def _check_labels(passages: list[list[str]], labels: Any) -> list[list[np.ndarray]]:
    if isinstance(labels, str) or not isinstance(labels, Sequence) or len(labels) != len(passages):
        raise DataValidationError(
            f"labels: expected a list of {len(passages)} lists (one per query, like passages)"
        )
    out: list[list[np.ndarray]] = []
    for i, (ps, ls) in enumerate(zip(passages, labels)):
        if isinstance(ls, str) or not isinstance(ls, Sequence) or len(ls) != len(ps):
            raise DataValidationError(
                f"labels[{i}]: expected a list of {len(ps)} label lists (one per passage)"
            )
        row = []
        for j, (p, lab) in enumerate(zip(ps, ls)):
            n = len(split_sentences(p))
            arr = np.asarray(lab)
            if arr.ndim != 1 or arr.shape[0] != n:
                raise DataValidationError(
                    f"labels[{i}][{j}]: expected {n} labels of 0/1 (one per sentence of "
                    f"split_sentences(passage)), got shape {arr.shape}"
                )
            if n and not np.isin(arr, (0, 1)).all():
                raise DataValidationError(f"labels[{i}][{j}]: expected only 0 and 1 labels")
            row.append(arr.astype(bool))
        out.append(row)
    return out


def calibrate_threshold(
    pruner: ContextPruner,
    queries: str | Sequence[str],
    passages: Sequence[str] | Sequence[Sequence[str]],
    labels: Sequence[Any] | None = None,
    *,
    target_compression: float,
    on: str = "answer_bearing",
    aggregation: str = "mean_prob",
    always_select_title: bool = False,
    passage_weight: float = DEFAULT_PASSAGE_WEIGHT,
    step: float | None = 0.005,
) -> ThresholdCalibration:
    """The smallest threshold at which the mean character compression reaches a target.

    Parameters
    ----------
    pruner : ContextPruner
    queries : str or sequence of str
        Shape ``(n_queries,)``; one string for a single query.
    passages : sequence of sequence of str
        ``passages[i]`` are the passages of ``queries[i]`` (with a single query string: its
        list of passages).
    labels : nested sequence of 0/1, optional
        ``labels[i][j]`` has one 0/1 label per sentence of ``split_sentences(passages[i][j])``
        (1 = holds the answer / evidence). With a single query string: ``labels[j]``.
    target_compression : float
        Share of characters to remove, in [0, 1] (higher = prune harder).
    on : {"answer_bearing", "all"}, default="answer_bearing"
        Average over the passages whose labels hold a 1 (needs ``labels``), or over all
        passages. Passages without sentences (nothing to remove) are left out either way.
    aggregation : {"mean_prob", "vote"}, default="mean_prob"
    always_select_title : bool, default=False
        As in :meth:`~dataprune.rag.ContextPruner.prune`.
    passage_weight : float, default=DEFAULT_PASSAGE_WEIGHT
        As in :meth:`~dataprune.rag.ContextPruner.prune`: applied over each query's passages,
        so calibrate with the value you will prune with.
    step : float or None, default=0.005
        Search the multiples of ``step`` in [0, 1]; ``None`` searches the exact breakpoints
        (every sentence score and token probability), giving the smallest threshold exactly.

    Returns
    -------
    ThresholdCalibration
        ``threshold``, the compression and (with labels) the recall reached there, and the
        number of passages averaged over.

    Raises
    ------
    DataValidationError
        For mismatched shapes, labels that are not 0/1, ``on="answer_bearing"`` without labels
        or without any answer-bearing passage, or a target outside [0, 1].
    """
    if isinstance(target_compression, bool) or not isinstance(target_compression, (int, float)):
        raise DataValidationError(
            f"target_compression: expected a number in [0, 1], got {type(target_compression).__name__}"
        )
    if not 0.0 <= float(target_compression) <= 1.0:
        raise DataValidationError(
            f"target_compression: expected a number in [0, 1], got {target_compression}"
        )
    if on not in _ON:
        raise DataValidationError(f"on: expected 'answer_bearing' or 'all', got {on!r}")
    if step is not None and not (isinstance(step, (int, float)) and 0.0 < step <= 1.0):
        raise DataValidationError(f"step: expected a number in (0, 1] or None, got {step!r}")
    AGGREGATIONS.get(aggregation)
    passage_weight = check_passage_weight(passage_weight)
    if isinstance(queries, str):
        queries, passages = [queries], [passages]  # type: ignore[list-item]
        labels = None if labels is None else [labels]
    queries, passages = pruner._check_batch(queries, passages)
    if labels is None and on == "answer_bearing":
        raise DataValidationError(
            "labels: on='answer_bearing' needs per-sentence labels; pass labels or on='all'"
        )
    labs = None if labels is None else _check_labels(passages, labels)
    if on == "answer_bearing" and not any(lab.any() for row in labs for lab in row):
        raise DataValidationError(
            "labels: no answer-bearing passages (labels with a 1) to calibrate on"
        )

    scores = pruner.score(queries, passages)
    texts: list[str] = []
    chosen: list[PassageScores] = []
    chosen_labels: list[np.ndarray] = []
    for i, (ps, sc) in enumerate(zip(passages, scores)):
        # weighted within the query (all its passages), before its passages are pooled
        for j, (p, s) in enumerate(zip(ps, weight_by_passage(sc, passage_weight))):
            lab = None if labs is None else labs[i][j]
            if not s.sentences or (on == "answer_bearing" and not lab.any()):
                continue
            texts.append(p)
            chosen.append(s)
            if lab is not None:
                chosen_labels.append(lab)
    if not chosen:
        what = "answer-bearing passages (labels with a 1)" if on == "answer_bearing" else "passages"
        raise DataValidationError(f"passages: no {what} with sentences to calibrate on")
    n_pos = int(sum(lab.sum() for lab in chosen_labels))

    def measure(t: float) -> tuple[float, float | None]:
        out = select_passages(
            texts,
            chosen,
            threshold=t,
            aggregation=aggregation,
            always_select_title=always_select_title,
            passage_weight=0.0,  # already weighted per query above
        )
        comp = float(np.mean([r.compression_chars for r in out]))
        if labs is None or not n_pos:
            return comp, None
        hit = sum(int(lab[r.kept_sentences].sum()) for r, lab in zip(out, chosen_labels))
        return comp, hit / n_pos

    if step is None:
        cands = {0.0, 1.0}
        for s in chosen:
            cands.update(float(x) for x in s.sentence_scores)
            for p in s.token_probs:
                cands.update(float(x) for x in p)
        grid = sorted(c for c in cands if 0.0 <= c <= 1.0)
    else:
        n = int(np.floor(1.0 / step + 1e-9))
        grid = sorted({round(min(1.0, k * step), 10) for k in range(n + 1)} | {1.0})
    target = float(target_compression)
    lo, hi = 0, len(grid) - 1
    top = measure(grid[hi])[0]
    if top < target:
        raise DataValidationError(
            f"target_compression: {target} is not reachable; at threshold 1.0 the mean "
            f"compression is {top:.4f}"
        )
    while lo < hi:  # the first grid point whose compression reaches the target
        mid = (lo + hi) // 2
        if measure(grid[mid])[0] >= target:
            hi = mid
        else:
            lo = mid + 1
    comp, recall = measure(grid[lo])
    logger.info(
        "calibrated threshold %.4f: compression %.4f (target %.4f) over %d passages",
        grid[lo],
        comp,
        target,
        len(chosen),
    )
    return ThresholdCalibration(
        threshold=float(grid[lo]),
        compression=comp,
        recall=recall,
        n_passages=len(chosen),
        target_compression=target,
    )
