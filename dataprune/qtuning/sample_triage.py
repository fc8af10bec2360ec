"""The result of a sample triage: quadrant and selection labels, and :class:`SampleTriage`.

:func:`~dataprune.qtuning.quadrants.triage_samples` makes it; the token pruning
(:mod:`dataprune.qtuning.tokens`), the noise rules (:mod:`dataprune.qtuning.noise`), the plots and
the reports read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "ABRUPT_END",
    "CORNER",
    "DROPPED",
    "DUPLICATE",
    "FILL_UP",
    "MISALIGNED",
    "Q1",
    "Q2",
    "Q3",
    "Q4",
    "QUADRANT_NAMES",
    "SELECTION_NAMES",
    "TRIMMED",
    "SampleTriage",
]

Q1, Q2, Q3, Q4 = 1, 2, 3, 4
QUADRANT_NAMES = {
    Q1: "Q1 harmful noise",
    Q2: "Q2 valuable misconception",
    Q3: "Q3 redundant",
    Q4: "Q4 calibration",
}
#: How a sample got its fate: 0 dropped, 1 kept by the quantile corners, 2 added by the fill-up,
#: 3 in a corner but trimmed to reach exactly K, 4 left out as a duplicate of another sample,
#: 5 left out for an abrupt end (``QTuningConfig.abrupt_end``), 6 left out as misaligned
#: (``QTuningConfig.max_ifd``).
DROPPED, CORNER, FILL_UP, TRIMMED, DUPLICATE, ABRUPT_END, MISALIGNED = 0, 1, 2, 3, 4, 5, 6
SELECTION_NAMES = {
    DROPPED: "dropped",
    CORNER: "corner",
    FILL_UP: "fill-up",
    TRIMMED: "trimmed",
    DUPLICATE: "duplicate",
    ABRUPT_END: "abrupt end",
    MISALIGNED: "misaligned",
}


@dataclass
class SampleTriage:
    """The sample-level decision for one batch (or a whole dataset in static mode).

    Attributes
    ----------
    quadrant : ndarray of shape (n_samples,), int8
        1..4 for Q1..Q4. Kept samples are Q2 or Q4; dropped samples Q1 or Q3.
    kept : ndarray of shape (n_samples,), bool
        Exactly ``n_keep`` True values.
    selection : ndarray of shape (n_samples,), int8
        See ``SELECTION_NAMES``.
    alpha : float
        Quantile level whose corners were used (``nan`` when the bisection was skipped).
    thresholds : dict
        ``ppl_hi = q_PPL(1 - alpha)``, ``ppl_lo = q_PPL(alpha)``, ``ent_lo = q_Ent(alpha)``,
        ``ent_hi = q_Ent(1 - alpha)``.
    n_keep : int
        K.
    n_corner : int
        ``|Q2 u Q4|`` at ``alpha`` before fill-up / trimming.
    n_bisection_steps : int
        Bisection steps run.
    ppl_rank, ent_rank : ndarray of shape (n_samples,)
        Quantile ranks in (0, 1) (average ranks for ties), used to label dropped samples.
    history : list of dict
        One entry per bisection step (``alpha``, ``n_corner``, ``fraction``; ``group`` when
        triaged per group).
    by_group : list of dict or None
        With ``groups``: ``group`` (the label), ``n_samples``, ``n_keep`` (kept from the
        group), ``alpha`` (the group's own with ``group_budget="share"``, else the shared one)
        and ``n_corner`` (the group's corner samples), in order of first appearance.
    """

    quadrant: np.ndarray
    kept: np.ndarray
    selection: np.ndarray
    alpha: float
    thresholds: dict[str, float]
    n_keep: int
    n_corner: int
    n_bisection_steps: int
    ppl_rank: np.ndarray
    ent_rank: np.ndarray
    history: list[dict[str, float]] = field(default_factory=list)
    by_group: list[dict[str, Any]] | None = None

    @property
    def kept_indices(self) -> np.ndarray:
        """Indices of kept samples, ascending."""
        return np.flatnonzero(self.kept)

    @property
    def flagged(self) -> np.ndarray:
        """Boolean mask of shape ``(n_samples,)``: samples a noise rule left out (duplicate,
        abrupt end, misaligned). Never kept: when K needs them, they fill in as ``FILL_UP``."""
        return np.isin(self.selection, (DUPLICATE, ABRUPT_END, MISALIGNED))

    @property
    def q2(self) -> np.ndarray:
        """Boolean mask of kept Q2 samples (token-pruned)."""
        return self.kept & (self.quadrant == Q2)

    @property
    def q4(self) -> np.ndarray:
        """Boolean mask of kept Q4 samples (kept whole)."""
        return self.kept & (self.quadrant == Q4)

    def counts(self) -> dict[str, int]:
        """Samples per quadrant plus fill-up / trimmed counts."""
        out = {f"Q{q}": int(np.sum(self.quadrant == q)) for q in (Q1, Q2, Q3, Q4)}
        out["kept"] = int(self.kept.sum())
        out["fill_up"] = int(np.sum(self.selection == FILL_UP))
        out["trimmed"] = int(np.sum(self.selection == TRIMMED))
        out["duplicate"] = int(np.sum(self.selection == DUPLICATE))
        out["abrupt_end"] = int(np.sum(self.selection == ABRUPT_END))
        out["misaligned"] = int(np.sum(self.selection == MISALIGNED))
        return out
