"""Noise rules of the sample triage: abrupt ends and misaligned pairs, flagged before the plane.

Samples flagged here are left out of the EU-plane triage (:func:`~dataprune.qtuning.triage_samples`'s
``noise``), end in Q1 and let the others fill their places: an abrupt end (the end-of-turn token
is surprising after the response, as after a cut mid-sentence; ``QTuningConfig.abrupt_end``) and
a misaligned pair (the prompt does not help predict the response, IFD >= ``max_ifd``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dataprune.qtuning.groups import group_codes, group_medians
from dataprune.qtuning.sample_triage import ABRUPT_END, MISALIGNED, SampleTriage

__all__ = ["abrupt_end_mask", "add_misaligned", "name_misaligned"]


def abrupt_end_mask(end_nll: Any, margin: float, groups: Any = None) -> np.ndarray:
    """Samples whose end-of-turn NLL exceeds the median by more than ``margin`` nats.

    Parameters
    ----------
    end_nll : array-like of shape (n_samples,)
        End-of-turn token NLL per sample (:func:`dataprune.lm_scoring.end_token_nll`; NaN where
        the response holds no end token).
    margin : float
        Nats above the median over the non-NaN samples (``QTuningConfig.abrupt_end``).
    groups : array-like of shape (n_samples,), optional
        Group label per sample: each sample is compared with its own group's median.

    Returns
    -------
    ndarray of shape (n_samples,), bool
        True = an abrupt end (left out as noise); never True for NaN.
    """
    x = np.asarray(end_nll, dtype=np.float64)
    ok = ~np.isnan(x)
    out = np.zeros(x.shape, dtype=bool)
    if groups is not None:
        med = group_medians(x, group_codes(groups, len(x)))
        out[ok] = x[ok] > med[ok] + margin
    elif ok.any():
        out[ok] = x[ok] > float(np.median(x[ok])) + margin
    return out


def add_misaligned(
    ifd: Any, max_ifd: float, noise: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Flag misaligned samples (``ifd >= max_ifd``; NaN never) as noise too.

    Returns
    -------
    misaligned : ndarray of shape (n_samples,), bool
        Newly flagged samples (those not already in ``noise``, e.g. for an abrupt end).
    noise : ndarray of shape (n_samples,), bool
        ``noise`` or ``misaligned``: what :func:`triage_samples` takes as ``noise``.
    """
    with np.errstate(invalid="ignore"):
        misaligned = np.asarray(ifd, dtype=np.float64) >= max_ifd
    if noise is None:
        return misaligned, misaligned
    return misaligned & ~noise, noise | misaligned


def name_misaligned(samples: SampleTriage, misaligned: np.ndarray | None) -> SampleTriage:
    """Label the misaligned samples ``"misaligned"`` instead of the shared noise label
    ``"abrupt end"`` (in place; returns ``samples``)."""
    if misaligned is not None:
        samples.selection[misaligned & (samples.selection == ABRUPT_END)] = MISALIGNED
    return samples
