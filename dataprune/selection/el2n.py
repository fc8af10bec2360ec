"""EL2N / GraNd selection on labelled data (scores from proxy heads trained on embeddings)."""

from __future__ import annotations

import logging
from typing import Any

from dataprune.errors import DataValidationError
from dataprune.selection.base import BaseSelector
from dataprune.selection.baselines import ScoreSelector

logger = logging.getLogger(__name__)

__all__ = ["EL2NSelector"]


class EL2NSelector(BaseSelector):
    """Keep the hardest records by EL2N or GraNd, optionally after skipping the very hardest.

    ``fit(X, y)``: ``X`` are embeddings (n_samples, dim), ``y`` the labels. ``n_runs`` proxy heads
    (:class:`~dataprune.scores.proxy.ProxyConfig`) are trained for a few epochs each and the scores
    averaged (Paul et al. 2021). ``offset`` skips that fraction of the hardest records first: with
    noisy labels the highest-EL2N records are mostly mislabelled.

    Parameters
    ----------
    n_samples, fraction : int or float
        Budget (exactly one).
    random_state : int, optional
        Seed for the proxy runs.
    score : {"el2n", "grand"}, default="el2n"
        Which score ranks the records.
    keep : {"hard", "easy"}, default="hard"
        Keep the highest or lowest scores.
    offset : float, default=0.0
        Fraction of all records skipped from the ``keep`` end (see :class:`ScoreSelector`).
    n_runs : int, default=5
        Proxy runs averaged.
    proxy : ProxyConfig or dict, optional
        Proxy head and schedule.

    Fitted attributes (besides the base ones)
    -----------------------------------------
    el2n_, grand_ : ndarray of shape (n_samples,)
        Averaged scores (higher = harder).
    proxy_scores_ : ProxyScores
    """

    def __init__(
        self,
        *,
        n_samples: int | None = None,
        fraction: float | None = None,
        random_state: int | None = None,
        score: str = "el2n",
        keep: str = "hard",
        offset: float = 0.0,
        n_runs: int = 5,
        proxy: Any = None,
        show_progress_bar: bool | None = None,
    ) -> None:
        super().__init__(n_samples=n_samples, fraction=fraction, random_state=random_state)
        self.score = score
        self.keep = keep
        self.offset = offset
        self.n_runs = n_runs
        self.proxy = proxy
        self.show_progress_bar = show_progress_bar

    def _check_params(self) -> None:
        if self.score not in ("el2n", "grand"):
            raise DataValidationError(f"score must be 'el2n' or 'grand', got {self.score!r}")
        if self.keep not in ("hard", "easy"):
            raise DataValidationError(f"keep must be 'hard' or 'easy', got {self.keep!r}")

    def _select(self, X, y, k, rng):
        from dataprune.scores.proxy import proxy_scores

        if y is None:
            raise DataValidationError(
                "EL2N/GraNd selection needs labels (y / label_field); for unlabelled SFT data "
                "use the LM form (dataprune.scores.lm_scores)"
            )
        ps = proxy_scores(
            X,
            y,
            n_runs=self.n_runs,
            config=self.proxy,
            random_state=int(rng.integers(0, 2**31 - 1)),
            show_progress_bar=self.show_progress_bar,
        )
        self.el2n_ = ps.el2n
        self.grand_ = ps.grand
        self.proxy_scores_ = ps
        values = ps.el2n if self.score == "el2n" else ps.grand
        ranker = ScoreSelector(
            n_samples=k, keep="high" if self.keep == "hard" else "low", offset=self.offset
        )
        ranker.fit(values)
        self.n_offset_ = ranker.n_offset_
        return ranker.selected_indices_, ranker.scores_
