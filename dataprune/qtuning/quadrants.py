"""Sample triage on the Error-Uncertainty (EU) plane: quadrants, bisection on alpha, fill-up to K.

Each sample has an error (PPL over response tokens) and an uncertainty (mean predictive entropy).
With quantile thresholds at level alpha,

* Q2 (valuable misconception) = ``PPL > q_PPL(1 - alpha)`` and ``Ent <= q_Ent(alpha)`` -> kept;
* Q4 (calibration)            = ``PPL <= q_PPL(alpha)`` and ``Ent > q_Ent(1 - alpha)`` -> kept;
* every other sample is dropped: Q1 (harmful noise, high PPL and high Ent) or Q3 (redundant, low
  PPL and low Ent).

alpha is found by bisection on ``[alpha_min, alpha_max]`` so that ``|Q2 u Q4| / B`` approaches
``sample_ratio``. The kept set is then made exactly ``K = max(1, round(B * sample_ratio))`` by the
``fill`` rule (:data:`~dataprune.qtuning.config.FILLS`). The default ``"random"`` ignores the
plane: one seeded draw from every sample the noise rules leave in (the development outcome pool
chose it, see :class:`~dataprune.qtuning.config.QTuningConfig`). ``"uniform"`` works on
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
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.qtuning.config import QTuningConfig
from dataprune.qtuning.fill import fill_order, margin_priority, order_desc, uniform_priority
from dataprune.qtuning.groups import (
    group_codes,
    quantile_ranks,
    split_budget,
    within_group_ranks,
)
from dataprune.qtuning.sample_triage import (
    ABRUPT_END,
    CORNER,
    DUPLICATE,
    FILL_UP,
    Q1,
    Q2,
    Q3,
    Q4,
    TRIMMED,
    SampleTriage,
)

logger = logging.getLogger(__name__)

__all__ = [
    "corner_masks",
    "margin_priority",
    "quantile_thresholds",
    "triage_samples",
    "uniform_priority",
    "within_group_ranks",
]


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


def triage_samples(
    perplexity: Any,
    entropy: Any,
    config: QTuningConfig | None = None,
    *,
    exclude: Any = None,
    noise: Any = None,
    groups: Any = None,
    random_state: int | np.random.Generator | None = None,
    allow_all_flagged: bool = False,
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
        triaged on its own scale. With ``config.group_budget="share"`` (the default) ``K`` is
        split over the groups in proportion to their sizes
        (:func:`~dataprune.qtuning.groups.split_budget`; a group with fewer un-flagged samples
        than its part keeps them all and the others share the rest) and each group is triaged
        on its own: ``alpha`` is then ``nan``, ``thresholds`` empty, and each group's alpha,
        ``K`` and corner count are in ``by_group``. ``"pooled"`` triages all groups together on
        those ranks with one ``K`` (thresholds in rank units); a group whose PPL and entropy
        agree less fills more corners and can get more than its share. Each group's kept count
        is in ``by_group``.
    random_state : int, Generator or None
        Breaks exact ties in the fill-up / trimming order; ``None`` breaks them by index.
    allow_all_flagged : bool, default=False
        When every sample is in ``exclude`` or ``noise``: ``False`` raises
        :class:`~dataprune.errors.DataValidationError` (a whole dataset of noise is a data or
        configuration error; with ``group_budget="share"`` each group keeps its part as below);
        ``True`` keeps ``K`` of them in the order used whenever fewer
        than ``K`` others exist (duplicates, then noise, each in index order). The dynamic loss
        (:func:`dataprune.qtuning.loss.qtuning_loss`) passes ``True``: a small micro-batch can
        be all noise by chance, and training must not stop there.

    Returns
    -------
    SampleTriage
    """
    cfg = config if config is not None else QTuningConfig()
    ppl, ent = _check_inputs(perplexity, entropy)
    k = cfg.n_keep(len(ppl))
    ex, nz = (_flags(x, name, ppl.shape) for x, name in ((exclude, "exclude"), (noise, "noise")))
    if groups is None:
        return _triage_flagged(ppl, ent, cfg, ex, nz, k, random_state, allow_all_flagged)
    codes = group_codes(groups, len(ppl))
    ppl, ent = within_group_ranks(ppl, codes), within_group_ranks(ent, codes)
    # plain Python labels (JSON-able in the summary), in order of first appearance
    labels = [g.item() if isinstance(g, np.generic) else g for g in dict.fromkeys(groups)]
    if cfg.group_budget == "share" and codes.max() > 0:
        return _triage_by_group(ppl, ent, cfg, ex, nz, k, codes, labels, random_state)
    out = _triage_flagged(ppl, ent, cfg, ex, nz, k, random_state, allow_all_flagged)
    corner = np.isin(out.selection, (CORNER, TRIMMED))
    out.by_group = [
        {"group": lab, "n_samples": int(np.sum(codes == g)), "n_keep": int(out.kept[codes == g].sum()),
         "alpha": out.alpha, "n_corner": int(corner[codes == g].sum())}
        for g, lab in enumerate(labels)
    ]  # fmt: skip
    return out


def _triage_flagged(
    ppl: np.ndarray,
    ent: np.ndarray,
    cfg: QTuningConfig,
    ex: np.ndarray,
    nz: np.ndarray,
    k: int,
    random_state: int | np.random.Generator | None,
    allow_all_flagged: bool = False,
) -> SampleTriage:
    """Triage with ``k`` kept, duplicates (``ex``) and noise (``nz``) left out while others remain
    (``allow_all_flagged``: a group of flagged samples only keeps ``k`` of them, else an error)."""
    if not (ex | nz).any():
        return _compute_sample_triage(ppl, ent, cfg, random_state, k)
    inc = np.flatnonzero(~(ex | nz))
    if len(inc) == 0 and not allow_all_flagged:
        raise DataValidationError(
            "every sample is excluded or flagged as noise; expected at least one to triage"
        )
    sub = (
        _compute_sample_triage(ppl[inc], ent[inc], cfg, random_state, min(k, len(inc)))
        if len(inc)
        else None
    )
    return _expand(sub, inc, ex & ~nz, nz, ppl, ent, k)


def _triage_by_group(
    ppl: np.ndarray,
    ent: np.ndarray,
    cfg: QTuningConfig,
    ex: np.ndarray,
    nz: np.ndarray,
    k: int,
    codes: np.ndarray,
    labels: list[Any],
    random_state: int | np.random.Generator | None,
) -> SampleTriage:
    """``group_budget="share"``: ``K`` split by group size, each group triaged on its own."""
    n_groups = int(codes.max()) + 1
    sizes = np.bincount(codes, minlength=n_groups)
    clean = np.bincount(codes[~(ex | nz)], minlength=n_groups)
    if k <= clean.sum():
        k_g = split_budget(k, sizes, clean)
    else:  # too few un-flagged samples: each group keeps them all, flagged ones make up the rest
        k_g = clean + split_budget(k - int(clean.sum()), sizes - clean, sizes - clean)
    rng = _generator(random_state)  # one stream through the groups
    n = len(ppl)
    quadrant, selection = np.zeros(n, dtype=np.int8), np.zeros(n, dtype=np.int8)
    kept = np.zeros(n, dtype=bool)
    ppl_rank, ent_rank = np.empty(n), np.empty(n)
    history: list[dict[str, float]] = []
    by_group: list[dict[str, Any]] = []
    steps = 0
    for g in range(n_groups):
        idx = np.flatnonzero(codes == g)
        sub = _triage_flagged(ppl[idx], ent[idx], cfg, ex[idx], nz[idx], int(k_g[g]), rng, True)
        quadrant[idx], selection[idx], kept[idx] = sub.quadrant, sub.selection, sub.kept
        ppl_rank[idx], ent_rank[idx] = sub.ppl_rank, sub.ent_rank
        history += [{**h, "group": g} for h in sub.history]
        steps = max(steps, sub.n_bisection_steps)
        by_group.append({"group": labels[g], "n_samples": int(sizes[g]), "n_keep": int(k_g[g]),
                         "alpha": sub.alpha, "n_corner": sub.n_corner})  # fmt: skip
    return SampleTriage(
        quadrant=quadrant,
        kept=kept,
        selection=selection,
        alpha=float("nan"),
        thresholds={},
        n_keep=k,
        n_corner=sum(b["n_corner"] for b in by_group),
        n_bisection_steps=steps,
        ppl_rank=ppl_rank,
        ent_rank=ent_rank,
        history=history,
        by_group=by_group,
    )


def _generator(random_state: int | np.random.Generator | None) -> np.random.Generator | None:
    """``None`` stays ``None`` (ties by index); an int seeds a new generator."""
    if random_state is None or isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


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
    """Quantile rank of each ``x`` within ``ref`` (same (0, 1) scale as :func:`quantile_ranks`)."""
    sr = np.sort(ref)
    lo, hi = np.searchsorted(sr, x, side="left"), np.searchsorted(sr, x, side="right")
    return np.clip(((lo + hi) / 2.0 + 0.5) / len(sr), 0.0, 1.0)


def _expand(
    sub: SampleTriage | None,
    inc: np.ndarray,
    ex: np.ndarray,
    nz: np.ndarray,
    ppl: np.ndarray,
    ent: np.ndarray,
    k: int,
) -> SampleTriage:
    """Map a triage of the included samples back to every sample (excluded: Q3, duplicate;
    noise: Q1, abrupt end). ``sub=None``: nothing included (ranks among the flagged)."""
    n = len(ppl)
    quadrant = np.where(nz, Q1, Q3).astype(np.int8)
    selection = np.where(nz, ABRUPT_END, DUPLICATE).astype(np.int8)
    kept = np.zeros(n, dtype=bool)
    ppl_rank, ent_rank = np.empty(n), np.empty(n)
    exi = np.concatenate([np.flatnonzero(ex), np.flatnonzero(nz)])
    ref = inc if sub is not None else exi
    if sub is not None:
        quadrant[inc], selection[inc], kept[inc] = sub.quadrant, sub.selection, sub.kept
        ppl_rank[inc], ent_rank[inc] = sub.ppl_rank, sub.ent_rank
    ppl_rank[exi] = _rank_against(ppl[exi], ppl[ref])
    ent_rank[exi] = _rank_against(ent[exi], ent[ref])
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
        alpha=float("nan") if sub is None else sub.alpha,
        thresholds={} if sub is None else sub.thresholds,
        n_keep=k,
        n_corner=0 if sub is None else sub.n_corner,
        n_bisection_steps=0 if sub is None else sub.n_bisection_steps,
        ppl_rank=ppl_rank,
        ent_rank=ent_rank,
        history=[] if sub is None else sub.history,
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
    ppl_rank, ent_rank = quantile_ranks(ppl), quantile_ranks(ent)
    rng = _generator(random_state)
    kept = q2 | q4
    corner = kept.copy()
    order = fill_order(cfg.fill, ppl, ent, ppl_rank, ent_rank, corner, rng)
    priority, fill_u, fill_v = order.priority, order.u, order.v
    if order.from_empty:
        kept[:] = False
    n_start = int(kept.sum())
    if n_start < k:
        rest = order_desc(priority, np.flatnonzero(~kept), rng)[: k - n_start]
        kept[rest] = True
        fill = rest[~corner[rest]]  # (a corner sample drawn by "flat" stays a corner sample)
        selection[fill] = FILL_UP
        quadrant[fill] = np.where(fill_u[fill] >= fill_v[fill], Q2, Q4)
    elif n_start > k:
        kept[order_desc(priority, np.flatnonzero(kept), rng)[k:]] = False
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
