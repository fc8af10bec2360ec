"""Sample triage on the Error-Uncertainty (EU) plane: quadrants, bisection on alpha, fill-up to K.

Each sample has an error (PPL over response tokens) and an uncertainty (mean predictive entropy).
With quantile thresholds at level alpha,

* Q2 (valuable misconception) = ``PPL > q_PPL(1 - alpha)`` and ``Ent <= q_Ent(alpha)`` -> kept;
* Q4 (calibration)            = ``PPL <= q_PPL(alpha)`` and ``Ent > q_Ent(1 - alpha)`` -> kept;
* every other sample is dropped: Q1 (harmful noise, high PPL and high Ent) or Q3 (redundant, low
  PPL and low Ent).

alpha is found by bisection on ``[alpha_min, alpha_max]`` so that ``|Q2 u Q4| / B`` approaches
``sample_ratio``. The kept set is then made exactly ``K = max(1, round(B * sample_ratio))`` by the
``fill`` rule (:data:`~dataprune.qtuning.config.FILLS`). The default ``"uniform"`` works on
quantile-rank axes: after the corners it draws uniformly from every sample off the Q1 (noise) side
and takes the Q1 side last (:func:`uniform_priority`); ``"flat"`` is the same draw without the
corners' head start; ``"margin"`` also never keeps a sample on
the Q1 side ahead of one that is not, but orders the rest by distance from the Q1 corner, so it
prefers the easiest samples (:func:`margin_priority`); ``"paper"`` is the authors' fill-up by the
largest ``|ppl_n - ent_n|`` after min-max scaling (``"rank"``: on quantile ranks), which
favours high-PPL samples when the PPL axis has a long tail. Filled-up samples are labelled Q2 when
their (scaled) PPL is at least their entropy, else Q4; a surplus of corner samples (possible when
the bisection overshoots) is trimmed from the lowest priority. Dropped samples are labelled Q1 when
their PPL and entropy quantile ranks sum above 1 (closer to the high-error, high-uncertainty
corner; ties go to the larger PPL rank) and Q3 otherwise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.qtuning.config import QTuningConfig
from dataprune.qtuning.groups import group_codes

logger = logging.getLogger(__name__)

__all__ = [
    "Q1",
    "Q2",
    "Q3",
    "Q4",
    "QUADRANT_NAMES",
    "SELECTION_NAMES",
    "SampleTriage",
    "corner_masks",
    "margin_priority",
    "quantile_thresholds",
    "triage_samples",
    "uniform_priority",
    "within_group_ranks",
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

    @property
    def kept_indices(self) -> np.ndarray:
        """Indices of kept samples, ascending."""
        return np.flatnonzero(self.kept)

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


def quantile_thresholds(
    perplexity: np.ndarray, entropy: np.ndarray, alpha: float
) -> dict[str, float]:
    """Quantile thresholds at level ``alpha`` (numpy's linear interpolation).

    Returns
    -------
    dict
        ``ppl_hi``, ``ppl_lo``, ``ent_lo``, ``ent_hi``.
    """
    a = float(min(max(alpha, 0.0), 1.0))
    return {
        "ppl_hi": float(np.quantile(perplexity, 1.0 - a)),
        "ppl_lo": float(np.quantile(perplexity, a)),
        "ent_lo": float(np.quantile(entropy, a)),
        "ent_hi": float(np.quantile(entropy, 1.0 - a)),
    }


def corner_masks(
    perplexity: np.ndarray, entropy: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Q2 and Q4 corner masks at quantile level ``alpha``.

    Returns
    -------
    q2, q4 : ndarray of shape (n_samples,), bool
        ``Q2 = PPL > q_PPL(1 - alpha) & Ent <= q_Ent(alpha)``;
        ``Q4 = PPL <= q_PPL(alpha) & Ent > q_Ent(1 - alpha)``.
    thresholds : dict
        As :func:`quantile_thresholds`.
    """
    t = quantile_thresholds(perplexity, entropy, alpha)
    q2 = (perplexity > t["ppl_hi"]) & (entropy <= t["ent_lo"])
    q4 = (perplexity <= t["ppl_lo"]) & (entropy > t["ent_hi"])
    return q2, q4, t


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(x)), float(np.max(x))
    if hi - lo < 1e-12 * max(1.0, abs(hi)):
        return np.zeros_like(x, dtype=np.float64)
    return (x - lo) / (hi - lo)


def _ranks(x: np.ndarray) -> np.ndarray:
    # average ranks, scaled to (0, 1)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(len(x), dtype=np.float64)
    sx = x[order]
    # average over tie groups
    bounds = np.flatnonzero(np.diff(sx) != 0) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(x)]):
        if hi - lo > 1:
            ranks[order[lo:hi]] = (lo + hi - 1) / 2.0
    return (ranks + 0.5) / len(x)


def within_group_ranks(x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Average quantile rank of each value within its group, scaled to (0, 1).

    Parameters
    ----------
    x : ndarray of shape (n_samples,)
    codes : ndarray of shape (n_samples,), int
        Group codes (:func:`dataprune.qtuning.groups.group_codes`).

    Returns
    -------
    ndarray of shape (n_samples,)
        ``(rank + 0.5) / n_group``, ties averaged (higher = higher within the group).
    """
    out = np.empty(len(x), dtype=np.float64)
    for g in np.unique(codes):
        idx = np.flatnonzero(codes == g)
        out[idx] = _ranks(x[idx])
    return out


def _order_desc(score: np.ndarray, candidates: np.ndarray, rng: np.random.Generator | None):
    """Candidates sorted by score, largest first; ties by index, or randomly when ``rng``."""
    if rng is None:
        tiebreak = candidates.astype(np.float64)
    else:
        tiebreak = rng.permutation(len(candidates)).astype(np.float64)
    return candidates[np.lexsort((tiebreak, -score[candidates]))]


def _check_inputs(perplexity: Any, entropy: Any) -> tuple[np.ndarray, np.ndarray]:
    ppl = np.asarray(perplexity, dtype=np.float64)
    ent = np.asarray(entropy, dtype=np.float64)
    if ppl.ndim != 1 or ent.ndim != 1:
        raise DataValidationError(
            f"perplexity and entropy must be 1-D arrays, got shapes {ppl.shape} and {ent.shape}"
        )
    if len(ppl) != len(ent):
        raise DataValidationError(
            f"got {len(ppl)} perplexities but {len(ent)} entropies; expected equal lengths"
        )
    if len(ppl) == 0:
        raise DataValidationError("no samples to triage; expected at least one")
    for name, x in (("perplexity", ppl), ("entropy", ent)):
        bad = np.flatnonzero(~np.isfinite(x))
        if len(bad):
            raise DataValidationError(
                f"{name} is not finite (got {x[bad[0]]}); expected finite numbers",
                record=int(bad[0]),
            )
    return ppl, ent


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
    gen = rng if rng is not None else np.random.default_rng(0)
    q1_side = (u > 0.5) & (v > 0.5)
    draw = 1.0 + gen.random(len(u)) * 0.999
    d = np.hypot(1.0 - u, 1.0 - v)
    return np.where(corner, 3.0 + d / 2.0, np.where(q1_side, d / 2.0, draw))


def triage_samples(
    perplexity: Any,
    entropy: Any,
    config: QTuningConfig | None = None,
    *,
    exclude: Any = None,
    noise: Any = None,
    groups: Any = None,
    random_state: int | np.random.Generator | None = None,
) -> SampleTriage:
    """Assign EU-plane quadrants and keep exactly ``K`` samples.

    Parameters
    ----------
    perplexity : array-like of shape (n_samples,)
        Per-sample PPL over response tokens (higher = larger error).
    entropy : array-like of shape (n_samples,)
        Per-sample mean predictive entropy (higher = more uncertain).
    config : QTuningConfig, optional
        ``sample_ratio``, ``fill``, ``max_steps``, ``tol``, ``alpha_min``, ``alpha_max`` are
        used.
    exclude : array-like of shape (n_samples,), bool, optional
        Samples kept out of the triage (duplicates of another sample): they get quadrant Q3
        (redundant) and selection ``"duplicate"``, the plane's quantiles and ranks are computed
        without them, and ``K`` is still ``config.n_keep(n_samples)``, so the others fill their
        places. They are kept only when fewer than ``K`` others exist (in index order).
    noise : array-like of shape (n_samples,), bool, optional
        Samples known to be noise (an abrupt end, ``QTuningConfig.abrupt_end``): left out like
        ``exclude`` but with quadrant Q1 and selection ``"abrupt end"``, and taken after the
        excluded duplicates when fewer than ``K`` others exist.
    groups : array-like of shape (n_samples,), optional
        Source label per sample (:mod:`dataprune.qtuning.groups`): PPL and entropy are replaced
        by their quantile ranks within the sample's group before the triage, so each group is
        triaged on its own scale. ``K`` is not split by group: a group whose PPL and entropy
        agree less has more samples in the corners and can get more than its share. The
        thresholds are then in rank units.
    random_state : int, Generator or None
        Breaks exact ties in the fill-up / trimming order; ``None`` breaks them by index.

    Returns
    -------
    SampleTriage
    """
    cfg = config if config is not None else QTuningConfig()
    ppl, ent = _check_inputs(perplexity, entropy)
    if groups is not None:
        codes = group_codes(groups, len(ppl))
        ppl, ent = within_group_ranks(ppl, codes), within_group_ranks(ent, codes)
    k = cfg.n_keep(len(ppl))
    ex, nz = (_flags(x, name, ppl.shape) for x, name in ((exclude, "exclude"), (noise, "noise")))
    if not (ex | nz).any():
        return _compute_sample_triage(ppl, ent, cfg, random_state, k)
    inc = np.flatnonzero(~(ex | nz))
    if len(inc) == 0:
        raise DataValidationError(
            "every sample is excluded or flagged as noise; expected at least one to triage"
        )
    sub = _compute_sample_triage(ppl[inc], ent[inc], cfg, random_state, min(k, len(inc)))
    return _expand(sub, inc, ex & ~nz, nz, ppl, ent, k)


def _flags(x: Any, name: str, shape: tuple[int, ...]) -> np.ndarray:
    if x is None:
        return np.zeros(shape, dtype=bool)
    out = np.asarray(x, dtype=bool)
    if out.shape != shape:
        raise DataValidationError(
            f"{name} has shape {out.shape}; expected one flag per sample, shape {shape}"
        )
    return out


def _rank_against(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Quantile rank of each ``x`` within ``ref`` (same (0, 1) scale as :func:`_ranks`)."""
    sr = np.sort(ref)
    lo, hi = np.searchsorted(sr, x, side="left"), np.searchsorted(sr, x, side="right")
    return np.clip(((lo + hi) / 2.0 + 0.5) / len(sr), 0.0, 1.0)


def _expand(
    sub: SampleTriage,
    inc: np.ndarray,
    ex: np.ndarray,
    nz: np.ndarray,
    ppl: np.ndarray,
    ent: np.ndarray,
    k: int,
) -> SampleTriage:
    """Map a triage of the included samples back to every sample (excluded: Q3, duplicate;
    noise: Q1, abrupt end)."""
    n = len(ppl)
    quadrant = np.where(nz, Q1, Q3).astype(np.int8)
    selection = np.where(nz, ABRUPT_END, DUPLICATE).astype(np.int8)
    kept = np.zeros(n, dtype=bool)
    quadrant[inc], selection[inc], kept[inc] = sub.quadrant, sub.selection, sub.kept
    ppl_rank, ent_rank = np.empty(n), np.empty(n)
    ppl_rank[inc], ent_rank[inc] = sub.ppl_rank, sub.ent_rank
    exi = np.concatenate([np.flatnonzero(ex), np.flatnonzero(nz)])
    ppl_rank[exi] = _rank_against(ppl[exi], ppl[inc])
    ent_rank[exi] = _rank_against(ent[exi], ent[inc])
    short = k - int(kept.sum())
    if short > 0:  # fewer than K to triage: duplicates, then noise, fill in, each in index order
        add = exi[:short]
        kept[add] = True
        selection[add] = FILL_UP
        quadrant[add] = np.where(ppl_rank[add] >= ent_rank[add], Q2, Q4)
    return SampleTriage(
        quadrant=quadrant,
        kept=kept,
        selection=selection,
        alpha=sub.alpha,
        thresholds=sub.thresholds,
        n_keep=k,
        n_corner=sub.n_corner,
        n_bisection_steps=sub.n_bisection_steps,
        ppl_rank=ppl_rank,
        ent_rank=ent_rank,
        history=sub.history,
    )


def _compute_sample_triage(
    ppl: np.ndarray,
    ent: np.ndarray,
    cfg: QTuningConfig,
    random_state: int | np.random.Generator | None,
    k: int,
) -> SampleTriage:
    n = len(ppl)
    target = cfg.sample_ratio if k == cfg.n_keep(n) else k / n
    lo, hi = cfg.alpha_min, cfg.alpha_max
    best: tuple[Any, ...] | None = None
    history: list[dict[str, float]] = []
    steps = 0
    for steps in range(1, cfg.max_steps + 1):  # noqa: B007 (steps is reported)
        alpha = (lo + hi) / 2.0
        q2, q4, t = corner_masks(ppl, ent, alpha)
        count = int(q2.sum() + q4.sum())
        frac = count / n
        history.append({"alpha": alpha, "n_corner": count, "fraction": frac})
        # closest count to K wins; on equal distance prefer the one that needs a fill-up (<= K)
        key = (abs(count - k), count > k)
        if best is None or key < best[0]:
            best = (key, alpha, q2, q4, t, count)
        if abs(frac - target) < cfg.tol:
            break
        if frac < target:
            lo = alpha
        else:
            hi = alpha
    assert best is not None
    _, alpha, q2, q4, thresholds, n_corner = best

    quadrant = np.zeros(n, dtype=np.int8)
    quadrant[q2] = Q2
    quadrant[q4] = Q4
    selection = np.zeros(n, dtype=np.int8)
    selection[q2 | q4] = CORNER
    ppl_rank, ent_rank = _ranks(ppl), _ranks(ent)
    rng = (
        None
        if random_state is None
        else (
            random_state
            if isinstance(random_state, np.random.Generator)
            else np.random.default_rng(random_state)
        )
    )
    kept = q2 | q4
    corner = kept.copy()
    if cfg.fill == "flat":  # the corners get no head start: the fill-up starts from nothing
        priority = uniform_priority(ppl_rank, ent_rank, np.zeros(n, dtype=bool), rng)
        fill_u, fill_v = ppl_rank, ent_rank
        kept[:] = False
    elif cfg.fill == "margin":
        priority = margin_priority(ppl_rank, ent_rank, kept)
        fill_u, fill_v = ppl_rank, ent_rank
    elif cfg.fill == "uniform":
        priority = uniform_priority(ppl_rank, ent_rank, kept, rng)
        fill_u, fill_v = ppl_rank, ent_rank
    else:
        if cfg.fill == "rank":
            fill_u, fill_v = ppl_rank, ent_rank
        else:
            fill_u, fill_v = _minmax(ppl), _minmax(ent)
        priority = np.abs(fill_u - fill_v)
    n_start = int(kept.sum())
    if n_start < k:
        rest = _order_desc(priority, np.flatnonzero(~kept), rng)[: k - n_start]
        kept[rest] = True
        fill = rest[~corner[rest]]  # (a corner sample drawn by "flat" stays a corner sample)
        selection[fill] = FILL_UP
        quadrant[fill] = np.where(fill_u[fill] >= fill_v[fill], Q2, Q4)
    elif n_start > k:
        kept[_order_desc(priority, np.flatnonzero(kept), rng)[k:]] = False
    selection[corner & ~kept] = TRIMMED
    dropped = ~kept
    s = ppl_rank + ent_rank
    high = (s > 1.0 + 1e-12) | ((np.abs(s - 1.0) <= 1e-12) & (ppl_rank >= ent_rank))
    quadrant[dropped] = np.where(high[dropped], Q1, Q3)
    if n_corner != k:
        logger.debug(
            "bisection reached %d of K=%d samples at alpha=%.4f; %s %d",
            n_corner,
            k,
            alpha,
            "filled up" if n_corner < k else "trimmed",
            abs(k - n_corner),
        )
    return SampleTriage(
        quadrant=quadrant,
        kept=kept,
        selection=selection,
        alpha=float(alpha),
        thresholds=thresholds,
        n_keep=k,
        n_corner=n_corner,
        n_bisection_steps=steps,
        ppl_rank=ppl_rank,
        ent_rank=ent_rank,
        history=history,
    )
