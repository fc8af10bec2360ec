"""Fill-up orders: how the kept set reaches exactly ``K`` after the quantile corners.

Each rule (:data:`~dataprune.qtuning.config.FILLS`) gives every sample a priority (larger = kept
earlier). Samples outside the corners are added in decreasing priority while the corners hold
fewer than ``K``; a surplus of corner samples is trimmed from the lowest priority. All rules but
``"paper"`` work on quantile-rank axes ``(u, v)`` (PPL rank, entropy rank) in (0, 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FillOrder", "fill_order", "margin_priority", "uniform_priority"]


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(x)), float(np.max(x))
    if hi - lo < 1e-12 * max(1.0, abs(hi)):
        return np.zeros_like(x, dtype=np.float64)
    return (x - lo) / (hi - lo)


def order_desc(
    score: np.ndarray, candidates: np.ndarray, rng: np.random.Generator | None
) -> np.ndarray:
    """Candidates sorted by score, largest first; ties by index, or randomly when ``rng``."""
    if rng is None:
        tiebreak = candidates.astype(np.float64)
    else:
        tiebreak = rng.permutation(len(candidates)).astype(np.float64)
    return candidates[np.lexsort((tiebreak, -score[candidates]))]


def margin_priority(u: np.ndarray, v: np.ndarray, corner: np.ndarray) -> np.ndarray:
    """Keep-first order of the ``"margin"`` fill-up (larger = kept earlier).

    Parameters
    ----------
    u, v : ndarray of shape (n_samples,)
        PPL and entropy quantile ranks in (0, 1).
    corner : ndarray of shape (n_samples,), bool
        Samples in the Q2 / Q4 corners at the bisected alpha.

    Returns
    -------
    ndarray of shape (n_samples,)
        ``group + d / 2`` with ``d`` the Euclidean distance to the Q1 corner ``(1, 1)`` (at most
        ``sqrt(2)``, so groups never interleave) and ``group`` 3 for the corners, 2 for the other
        samples nearer the Q2 or Q4 corner than the Q1 and Q3 corners (``u > 1/2`` xor
        ``v > 1/2``), 1 for the rest of the Q3 side (both ranks ``<= 1/2``) and 0 for the Q1 side
        (both ranks ``> 1/2``).
    """
    hi_u, hi_v = u > 0.5, v > 0.5
    group = np.where(corner, 3, np.where(hi_u ^ hi_v, 2, np.where(hi_u & hi_v, 0, 1)))
    d = np.hypot(1.0 - u, 1.0 - v)
    return group.astype(np.float64) + d / 2.0


def uniform_priority(
    u: np.ndarray, v: np.ndarray, corner: np.ndarray, rng: np.random.Generator | None
) -> np.ndarray:
    """Keep-first order of the ``"uniform"`` fill-up (larger = kept earlier).

    Parameters
    ----------
    u, v : ndarray of shape (n_samples,)
        PPL and entropy quantile ranks in (0, 1).
    corner : ndarray of shape (n_samples,), bool
        Samples in the Q2 / Q4 corners at the bisected alpha.
    rng : Generator or None
        Draws the order off the Q1 side; ``None`` uses a generator seeded with 0, so the
        result is still a function of the inputs.

    Returns
    -------
    ndarray of shape (n_samples,)
        ``3 + d / 2`` for the corners (a surplus is trimmed nearest the Q1 corner first);
        ``1 + w`` with ``w`` uniform in [0, 1) for every other sample off the Q1 side (not both
        ranks ``> 1/2``); ``d / 2`` on the Q1 side, ``d`` the distance to the Q1 corner
        ``(1, 1)`` (so the Q1 side comes last, farthest from its corner first). With ``corner``
        all False this is the ``"flat"`` order.
    """
    gen = _generator(rng)
    q1_side = (u > 0.5) & (v > 0.5)
    draw = 1.0 + gen.random(len(u)) * 0.999
    d = np.hypot(1.0 - u, 1.0 - v)
    return np.where(corner, 3.0 + d / 2.0, np.where(q1_side, d / 2.0, draw))


def _generator(rng: np.random.Generator | None) -> np.random.Generator:
    """The seeded draws' generator: ``rng``, or one seeded with 0 (same draw on every call)."""
    return rng if rng is not None else np.random.default_rng(0)


@dataclass
class FillOrder:
    """A fill rule applied to one batch.

    Attributes
    ----------
    priority : ndarray of shape (n_samples,)
        Larger = kept earlier (filled up first, trimmed last).
    u, v : ndarray of shape (n_samples,)
        The axes a filled-up sample is labelled on: Q2 when ``u >= v``, else Q4.
    from_empty : bool
        The fill-up starts from no kept sample (``"flat"``, ``"random"``: the corners get no head start).
    """

    priority: np.ndarray
    u: np.ndarray
    v: np.ndarray
    from_empty: bool = False


def fill_order(
    fill: str,
    ppl: np.ndarray,
    ent: np.ndarray,
    ppl_rank: np.ndarray,
    ent_rank: np.ndarray,
    corner: np.ndarray,
    rng: np.random.Generator | None,
) -> FillOrder:
    """The priority of the fill rule ``fill`` (a validated :data:`FILLS` name).

    Parameters
    ----------
    fill : str
    ppl, ent : ndarray of shape (n_samples,)
        Scores (``"paper"`` min-max scales them).
    ppl_rank, ent_rank : ndarray of shape (n_samples,)
        Their quantile ranks in (0, 1).
    corner : ndarray of shape (n_samples,), bool
        Q2 / Q4 corner samples at the bisected alpha.
    rng : Generator or None
        Seeded draws of ``"uniform"`` / ``"flat"`` / ``"random"``.

    Returns
    -------
    FillOrder
    """
    if fill == "random":
        return FillOrder(_generator(rng).random(len(ppl)), ppl_rank, ent_rank, from_empty=True)
    if fill == "flat":
        no_corner = np.zeros(len(ppl), dtype=bool)
        return FillOrder(uniform_priority(ppl_rank, ent_rank, no_corner, rng), ppl_rank, ent_rank,
                         from_empty=True)  # fmt: skip
    if fill == "margin":
        return FillOrder(margin_priority(ppl_rank, ent_rank, corner), ppl_rank, ent_rank)
    if fill == "uniform":
        return FillOrder(uniform_priority(ppl_rank, ent_rank, corner, rng), ppl_rank, ent_rank)
    u, v = (ppl_rank, ent_rank) if fill == "rank" else (_minmax(ppl), _minmax(ent))
    return FillOrder(np.abs(u - v), u, v)
