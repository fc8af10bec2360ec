"""Token triage inside Q2 samples: neighbour-aware scores and the token budget.

For the response tokens of a sample with per-token NLL ``nll_i`` and ``ppl_i = exp(nll_i)``::

    s_i = (1 - lambda) * ppl_i + lambda * (ppl_{i-1} + ppl_{i+1}) / 2

A missing neighbour (sequence edge, or a position that carries no loss) is replaced by the token's
own value (edge replication). Q2 samples keep ``max(1, round(token_ratio * L))`` tokens (or a
batch-level budget); ``drop="high"`` prunes the highest scores, ``drop="low"`` the lowest. Q4 samples
keep every token. Ties are broken by position (earlier tokens are kept first), so results are
deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.qtuning.config import QTuningConfig
from dataprune.qtuning.sample_triage import SampleTriage

__all__ = ["neighbor_token_scores", "token_keep_masks"]

# exp() of larger NLLs overflows float64; tokens that surprising all rank as "maximal".
_MAX_NLL = 700.0


def neighbor_token_scores(
    nll: Any, neighbor_lambda: float = 0.5, *, positions: Any | None = None
) -> np.ndarray:
    """Neighbour-aware token scores of one sample (higher = more surprising in context).

    Parameters
    ----------
    nll : array-like of shape (n_tokens,)
        Per-token negative log-likelihood of the response tokens, in order.
    neighbor_lambda : float, default=0.5
        Weight of the neighbours.
    positions : array-like of shape (n_tokens,), optional
        Sequence positions of the tokens. Two tokens are neighbours only when their positions
        differ by 1 (a gap = masked neighbour, replaced by the token's own value). Default:
        contiguous.

    Returns
    -------
    ndarray of shape (n_tokens,), float64
    """
    x = np.asarray(nll, dtype=np.float64)
    if x.ndim != 1:
        raise DataValidationError(f"nll must be 1-D, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise DataValidationError("nll contains non-finite values; expected finite numbers")
    if not 0.0 <= neighbor_lambda <= 1.0:
        raise DataValidationError(f"neighbor_lambda must be in [0, 1], got {neighbor_lambda}")
    p = np.exp(np.minimum(x, _MAX_NLL))
    if len(p) == 0:
        return p
    left = np.empty_like(p)
    right = np.empty_like(p)
    left[0] = p[0]
    left[1:] = p[:-1]
    right[-1] = p[-1]
    right[:-1] = p[1:]
    if positions is not None:
        pos = np.asarray(positions)
        if pos.shape != x.shape:
            raise DataValidationError(
                f"positions has shape {pos.shape}, expected {x.shape} (one per token)"
            )
        adjacent = np.diff(pos) == 1
        left[1:] = np.where(adjacent, p[:-1], p[1:])
        right[:-1] = np.where(adjacent, p[1:], p[:-1])
    return (1.0 - neighbor_lambda) * p + neighbor_lambda * (left + right) / 2.0


def _keep_order(scores: np.ndarray, drop: str) -> np.ndarray:
    """Token indices in the order they are kept (first = kept first)."""
    key = scores if drop == "high" else -scores
    return np.argsort(key, kind="stable")


def token_keep_masks(
    nll: Sequence[Any],
    triage: SampleTriage,
    config: QTuningConfig | None = None,
    *,
    positions: Sequence[Any] | None = None,
) -> list[np.ndarray]:
    """Which response tokens carry loss, for every sample.

    Parameters
    ----------
    nll : sequence of array-like, length n_samples
        Per-token NLL of each sample's response tokens.
    triage : SampleTriage
        The sample decision (:func:`~dataprune.qtuning.quadrants.triage_samples`).
    config : QTuningConfig, optional
        ``token_ratio``, ``neighbor_lambda``, ``drop`` and ``token_budget`` are used.
    positions : sequence of array-like, optional
        Sequence positions per token (see :func:`neighbor_token_scores`).

    Returns
    -------
    list of ndarray of bool, each of shape (n_tokens_i,)
        All False for dropped samples, all True for kept Q4 samples, and the token budget for kept
        Q2 samples (at least one True).
    """
    cfg = config if config is not None else QTuningConfig()
    if len(nll) != len(triage.kept):
        raise DataValidationError(
            f"got token NLLs for {len(nll)} samples but a triage of {len(triage.kept)}"
        )
    masks: list[np.ndarray] = []
    q2 = triage.q2
    q2_scores: dict[int, np.ndarray] = {}
    for i, x in enumerate(nll):
        arr = np.asarray(x)
        if arr.ndim != 1:
            raise DataValidationError(f"token NLLs must be 1-D, got shape {arr.shape}", record=i)
        if triage.kept[i] and len(arr) == 0:
            raise DataValidationError("a kept sample has no response token", record=i)
        if not triage.kept[i]:
            masks.append(np.zeros(len(arr), dtype=bool))
        elif not q2[i]:
            masks.append(np.ones(len(arr), dtype=bool))
        else:
            pos = None if positions is None else positions[i]
            q2_scores[i] = neighbor_token_scores(arr, cfg.neighbor_lambda, positions=pos)
            masks.append(np.zeros(len(arr), dtype=bool))
    if not q2_scores:
        return masks
    if cfg.token_budget == "sample":
        for i, s in q2_scores.items():
            n_keep = min(len(s), max(1, round(cfg.token_ratio * len(s))))
            masks[i][_keep_order(s, cfg.drop)[:n_keep]] = True
        return masks
    # batch-level budget: one best token per sample is reserved, the rest compete across samples
    total = sum(len(s) for s in q2_scores.values())
    budget = max(len(q2_scores), min(total, round(cfg.token_ratio * total)))
    cand_sample, cand_token, cand_score = [], [], []
    for i, s in q2_scores.items():
        order = _keep_order(s, cfg.drop)
        masks[i][order[0]] = True
        rest = order[1:]
        cand_sample.append(np.full(len(rest), i))
        cand_token.append(rest)
        cand_score.append(s[rest])
    remaining = budget - len(q2_scores)
    if remaining > 0:
        cs = np.concatenate(cand_sample)
        ct = np.concatenate(cand_token)
        sc = np.concatenate(cand_score)
        key = sc if cfg.drop == "high" else -sc
        pick = np.lexsort((ct, cs, key))[:remaining]
        for i, t in zip(cs[pick], ct[pick]):
            masks[int(i)][int(t)] = True
    return masks
