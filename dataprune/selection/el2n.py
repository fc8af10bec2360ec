"""EL2N / GraNd selection on labelled data (scores from proxy heads trained on embeddings)."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.selection.base import BaseSelector
from dataprune.selection.baselines import ScoreSelector

logger = logging.getLogger(__name__)

__all__ = ["EL2NSelector", "label_issues_of_proxy", "warn_keep_hard_label_issues"]

# Warn when at least this share of the kept records are flagged as likely label issues.
LABEL_ISSUE_WARN_SHARE = 0.05


class EL2NSelector(BaseSelector):
    """Keep the hardest records by EL2N or GraNd, optionally after skipping the very hardest.

    ``fit(X, y)``: ``X`` are embeddings (n_samples, dim), ``y`` the labels. ``n_runs`` proxy heads
    (:class:`~dataprune.scores.proxy.ProxyConfig`) are trained for a few epochs each and the scores
    averaged (Paul et al. 2021). ``offset`` skips that fraction of the hardest records first: with
    noisy labels the highest-EL2N records are mostly mislabelled.

    Label-noise check: after scoring, confident learning
    (:func:`~dataprune.scores.find_label_issues`) runs on the proxy heads' mean probabilities (no
    extra training) and flags the records whose given label the heads confidently contradict. With
    ``keep="hard"``, when flagged records make up at least ``LABEL_ISSUE_WARN_SHARE`` (5%) of the
    kept ones, a warning gives the counts and recommends ``offset=`` (the flagged share) or a
    ``confident_learning`` stage first. The rule looks at the kept records because that is what
    the trap costs: at a small budget a few percent of flagged records can fill the selection. The
    probabilities are in-sample (early in training, as EL2N is), so heads that memorise the labels
    under-count the issues; on tasks the heads learn poorly, ambiguous records are counted too.

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
    is_label_issue_ : ndarray of shape (n_samples,), bool
        Likely label errors by confident learning on ``proxy_scores_.probs``.
    n_label_issues_ : int
        Flagged records; ``n_label_issues_ / n_samples_seen_`` estimates the label-noise share.
    n_label_issues_kept_ : int
        Flagged records among the kept ones.
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
        self._check_label_issues(ps, ranker.selected_indices_)
        return ranker.selected_indices_, ranker.scores_

    def _check_label_issues(self, ps: Any, selected: np.ndarray) -> None:
        """Flag likely label errors and warn when keep-hard would keep many of them."""
        issues = label_issues_of_proxy(ps)
        self.is_label_issue_ = issues
        self.n_label_issues_ = int(issues.sum())
        self.n_label_issues_kept_ = warn_keep_hard_label_issues(
            issues, selected, keep=self.keep, offset=float(self.offset), score=self.score
        )


def label_issues_of_proxy(ps: Any) -> np.ndarray:
    """Confident-learning flags on a :class:`~dataprune.scores.ProxyScores`' mean probabilities.

    Returns
    -------
    ndarray of shape (n_samples,), bool
    """
    from dataprune.scores.label_issues import _compute_label_issues

    n = len(ps.labels)
    return _compute_label_issues(ps.probs, ps.labels) if n >= 2 else np.zeros(n, dtype=bool)


def warn_keep_hard_label_issues(
    issues: np.ndarray, selected: np.ndarray, *, keep: str, offset: float, score: str
) -> int:
    """Log the keep-hard warning when flagged records are >= ``LABEL_ISSUE_WARN_SHARE`` of the
    kept ones; return how many kept records are flagged."""
    n = len(issues)
    k = len(selected)
    n_kept = int(issues[selected].sum()) if k else 0
    if keep != "hard" or n_kept < max(1, math.ceil(LABEL_ISSUE_WARN_SHARE * k)):
        return n_kept
    share = int(issues.sum()) / n
    if share > offset:
        advice = (
            f"Skip them with offset={min(0.99, math.ceil(100 * share) / 100):.2f} (the "
            "flagged share), or drop label issues first (method 'confident_learning')"
        )
    else:  # the offset already skips as many records, but not these
        advice = "Drop label issues first (method 'confident_learning')"
    logger.warning(
        "%s keep='hard'%s: %d of %d records (%.1f%%) look mislabelled (confident learning "
        "on the proxy heads' probabilities) and %d of the %d kept records (%.1f%%) are "
        "among them; under label noise the hardest records are mostly the mislabelled "
        "ones. %s",
        "EL2N" if score == "el2n" else "GraNd",
        f" with offset={offset}" if offset else "",
        int(issues.sum()),
        n,
        100 * share,
        n_kept,
        k,
        100 * n_kept / k,
        advice,
    )
    return n_kept
