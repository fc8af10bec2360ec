"""Proxy-classifier scores for labelled data: EL2N and GraNd averaged over seeds, and
out-of-fold probabilities for confident learning.

A small head (:class:`ProxyConfig`) is trained on cached sentence embeddings for a few epochs, once
per seed; each run's probabilities give EL2N, and its penultimate features give last-layer GraNd.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.progress import progress
from dataprune.scores._validation import encode_labels
from dataprune.scores.el2n import _compute_el2n
from dataprune.scores.grand import _compute_grand
from dataprune.scores.proxy.config import ProxyConfig
from dataprune.scores.proxy.train import FittedProxy, fit_proxy

logger = logging.getLogger(__name__)

__all__ = ["FittedProxy", "ProxyConfig", "ProxyScores", "cross_val_probs", "proxy_scores"]


@dataclass
class ProxyScores:
    """Scores from ``n_runs`` independently seeded proxy heads.

    Attributes
    ----------
    el2n : ndarray of shape (n_samples,)
        EL2N averaged over runs; higher = harder.
    grand : ndarray of shape (n_samples,)
        Last-layer GraNd averaged over runs; higher = harder.
    el2n_runs, grand_runs : ndarray of shape (n_runs, n_samples)
        Per-run scores.
    probs : ndarray of shape (n_samples, n_classes)
        Mean predicted probabilities (in-sample).
    labels : ndarray of shape (n_samples,), int64
        Encoded labels.
    classes : ndarray of shape (n_classes,)
        Class of each code.
    """

    el2n: np.ndarray
    grand: np.ndarray
    el2n_runs: np.ndarray
    grand_runs: np.ndarray
    probs: np.ndarray
    labels: np.ndarray
    classes: np.ndarray
    config: ProxyConfig = field(default_factory=ProxyConfig)

    @property
    def n_runs(self) -> int:
        return int(self.el2n_runs.shape[0])


def _check_embeddings(X: Any) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0:
        raise DataValidationError(f"expected embeddings of shape (n_samples, dim), got {X.shape}")
    if not np.all(np.isfinite(X)):
        raise DataValidationError("embeddings contain NaN or infinite values")
    return X


def _seeds(random_state: int | None, n: int) -> list[int]:
    ss = np.random.SeedSequence(random_state)
    return [int(c.generate_state(1)[0]) for c in ss.spawn(n)]


def proxy_scores(
    X: Any,
    labels: Any,
    *,
    n_runs: int = 5,
    config: ProxyConfig | dict[str, Any] | None = None,
    random_state: int | None = None,
    show_progress_bar: bool | None = None,
) -> ProxyScores:
    """Train ``n_runs`` proxy heads on ``(X, labels)`` and score every training record.

    Parameters
    ----------
    X : array-like of shape (n_samples, dim)
        Embeddings (e.g. from :func:`dataprune.embeddings.embed_texts`).
    labels : array-like of shape (n_samples,)
        Class labels of any hashable type.
    n_runs : int, default=5
        Independently seeded runs averaged (Paul et al. average 10; 5 is the usual compromise).
    config : ProxyConfig or dict, optional
        The head and its training schedule.
    random_state : int, optional
        Seed for all runs.

    Returns
    -------
    ProxyScores
    """
    X = _check_embeddings(X)
    if not isinstance(n_runs, int) or n_runs < 1:
        raise DataValidationError(f"n_runs must be a positive integer, got {n_runs!r}")
    cfg = ProxyConfig.from_options(config)
    y, classes = encode_labels(labels, X.shape[0])
    if len(classes) < 2:
        raise DataValidationError(
            f"EL2N/GraNd need at least 2 classes in the labels, got {len(classes)}"
        )
    el2n_runs, grand_runs = [], []
    probs_sum = np.zeros((X.shape[0], len(classes)))
    for seed in progress(
        _seeds(random_state, n_runs),
        show_progress_bar=show_progress_bar,
        desc="Proxy runs",
        unit="run",
    ):
        fitted = fit_proxy(X, y, len(classes), cfg, seed=seed)
        p, h = fitted.predict(X)
        el2n_runs.append(_compute_el2n(p, y))
        grand_runs.append(_compute_grand(p, y, np.einsum("ij,ij->i", h, h)))
        probs_sum += p
    e, g = np.stack(el2n_runs), np.stack(grand_runs)
    return ProxyScores(
        el2n=e.mean(axis=0),
        grand=g.mean(axis=0),
        el2n_runs=e,
        grand_runs=g,
        probs=probs_sum / n_runs,
        labels=y,
        classes=classes,
        config=cfg,
    )


def cross_val_probs(
    X: Any,
    labels: Any,
    *,
    n_folds: int = 5,
    config: ProxyConfig | dict[str, Any] | None = None,
    random_state: int | None = None,
    show_progress_bar: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Out-of-fold predicted probabilities (each record scored by a head that never saw it).

    Returns
    -------
    probs : ndarray of shape (n_samples, n_classes)
    codes : ndarray of shape (n_samples,), int64
        Encoded labels.
    classes : ndarray of shape (n_classes,)
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    X = _check_embeddings(X)
    cfg = ProxyConfig.from_options(config)
    y, classes = encode_labels(labels, X.shape[0])
    if not isinstance(n_folds, int) or n_folds < 2 or n_folds > X.shape[0]:
        raise DataValidationError(f"n_folds must be an integer in [2, n_samples], got {n_folds!r}")
    counts = np.bincount(y, minlength=len(classes))
    seed = _seeds(random_state, 1)[0]
    if counts.min() >= n_folds:
        splitter: Any = StratifiedKFold(n_folds, shuffle=True, random_state=seed % (2**31))
    else:
        logger.info("some classes have fewer than %d records; using unstratified folds", n_folds)
        splitter = KFold(n_folds, shuffle=True, random_state=seed % (2**31))
    probs = np.zeros((X.shape[0], len(classes)))
    folds = list(splitter.split(np.zeros(len(y)), y))
    for f, (tr, te) in enumerate(
        progress(folds, show_progress_bar=show_progress_bar, desc="CV folds", unit="fold")
    ):
        fitted = fit_proxy(X[tr], y[tr], len(classes), cfg, seed=seed + f)
        probs[te] = fitted.predict(X[te])[0]
    return probs, y, classes
