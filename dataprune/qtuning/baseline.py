"""A random subset to train against, coupled to a triage's draw: did the pruning help?

With ``fill="random"`` (the default) static triage keeps a uniform draw of ``K`` samples from
those its noise rules leave in (dedup, abrupt end, IFD), stratified by group when
``group_budget="share"`` splits ``K`` over ``groups``. Whether that beats random training is best
answered on your own held-out data, and two *independent* random draws differ by about as much
as removing a few percent of noise changes held-out loss (``benchmarks/results/qtuning_outcome.md``
reports both). :func:`coupled_random_subset` draws the comparison subset with common random
numbers: a uniform random ``K``-subset of the whole pool, exactly as random as any other, that
shares every sample with the triage's kept set except where a random subset holds flagged samples,
those taking the places (positions in the training order) of kept samples. The difference
between the two trainings is then what the rules removed, not the luck of the draw.

Why it is uniform: ``m ~ Hypergeometric(n_flagged, n_clean, K)`` is the number of flagged samples
in a uniform ``K``-subset of the pool; given ``m``, a uniform ``m``-subset of the flagged samples
with a uniform ``(K - m)``-subset of the kept ones (themselves a uniform draw from the clean
samples) is a uniform ``K``-subset holding ``m`` flagged samples. With groups, each group's count
is drawn first (multivariate hypergeometric), then the same within each group, adding clean
samples the triage did not keep when a group needs more than it kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dataprune.errors import DataValidationError

__all__ = ["coupled_random_subset", "random_baseline"]


def coupled_random_subset(
    kept: Any,
    flagged: Any,
    *,
    groups: Any = None,
    random_state: int | np.random.Generator | None = None,
) -> np.ndarray:
    """A uniform random subset of the pool, of ``len(kept)`` samples, coupled to ``kept``.

    Parameters
    ----------
    kept : array-like of int, shape (K,)
        The triage's kept sample indices, in the order training visits them (for example
        ``QTuningTriage.kept_indices_``). Must be a uniform draw from the samples not flagged
        (within each group when ``groups`` is given), as ``fill="random"`` keeps them.
    flagged : array-like of bool, shape (n_samples,)
        The samples the noise rules left out (never in ``kept``).
    groups : array-like of shape (n_samples,), optional
        Group labels when ``K`` was split over groups (``group_budget="share"``): the draw is then
        coupled group by group; the returned subset is still uniform over the whole pool.
    random_state : int, numpy Generator or None
        Seeds the draw. An int seeds a stream of its own (``default_rng([random_state, 1])``),
        independent of the triage's fill-up draw even when both use the same int: the coupling
        is uniform only if the two draws are independent.

    Returns
    -------
    ndarray of int64, shape (K,)
        Position ``j`` holds ``kept[j]`` where the two subsets agree, else the sample that takes
        its place. As a set: a uniform random ``K``-subset of ``range(n_samples)``.

    Raises
    ------
    DataValidationError
        When ``kept`` repeats a sample, holds a flagged one or one outside the pool, or
        ``groups`` has the wrong length.
    """
    flag = np.asarray(flagged, dtype=bool)
    if flag.ndim != 1:
        raise DataValidationError(f"flagged must be one flag per sample, got shape {flag.shape}")
    n = len(flag)
    k_arr = np.asarray(kept, dtype=np.int64).reshape(-1)
    if len(k_arr) and (k_arr.min() < 0 or k_arr.max() >= n):
        raise DataValidationError(f"kept holds an index outside the pool of {n} samples")
    if len(np.unique(k_arr)) != len(k_arr):
        raise DataValidationError("kept repeats a sample; expected distinct indices")
    if flag[k_arr].any():
        bad = int(k_arr[flag[k_arr]][0])
        raise DataValidationError(f"kept holds sample {bad}, which is flagged; expected none")
    codes = None
    if groups is not None:
        from dataprune.qtuning.groups import group_codes

        codes = group_codes(groups, n)
    if isinstance(random_state, np.random.Generator):
        rng = random_state
    elif random_state is None:
        rng = np.random.default_rng()
    else:  # a stream of its own: independent of a triage seeded with the same int
        rng = np.random.default_rng([int(random_state), 1])
    return _compute_coupled_random_subset(k_arr, flag, codes, rng)


def _compute_coupled_random_subset(
    kept: np.ndarray, flag: np.ndarray, codes: np.ndarray | None, rng: np.random.Generator
) -> np.ndarray:
    k = len(kept)
    order = kept.copy()
    if codes is None:
        bad = np.flatnonzero(flag)
        m = int(rng.hypergeometric(len(bad), len(flag) - len(bad), k)) if len(bad) and k else 0
        places = rng.choice(k, m, replace=False)
        order[places] = rng.choice(bad, m, replace=False)
        return order
    sizes = np.bincount(codes)
    counts = rng.multivariate_hypergeometric(sizes, k)  # group counts of a uniform K-subset
    in_kept = np.zeros(len(flag), dtype=bool)
    in_kept[kept] = True
    freed: list[np.ndarray] = []
    incoming: list[np.ndarray] = []
    for g, r in enumerate(counts):
        pos = np.flatnonzero(codes[kept] == g)  # this group's places in the kept order
        bad = np.flatnonzero((codes == g) & flag)
        n_clean = int(sizes[g]) - len(bad)
        m = int(rng.hypergeometric(len(bad), n_clean, r)) if len(bad) and r else 0
        c = int(r) - m
        if c <= len(pos):
            stay = rng.choice(len(pos), c, replace=False)
            freed.append(np.delete(pos, stay))
            extra = np.zeros(0, dtype=np.int64)
        else:
            rest = np.flatnonzero((codes == g) & ~flag & ~in_kept)
            extra = rng.choice(rest, c - len(pos), replace=False)
        incoming += [rng.choice(bad, m, replace=False), extra]
    places = np.concatenate(freed) if freed else np.zeros(0, dtype=np.int64)
    new = np.concatenate(incoming).astype(np.int64)
    order[places] = rng.permutation(new)
    return order


def random_baseline(
    triage: Any, groups: Any = None, random_state: int | np.random.Generator | None = None
) -> np.ndarray:
    """:func:`coupled_random_subset` for a fitted :class:`~dataprune.qtuning.QTuningTriage`.

    Parameters
    ----------
    triage : QTuningTriage
        Fitted with ``fill="random"``.
    groups : array-like of shape (n_samples,), optional
        The ``groups`` passed to ``fit`` (used when its ``group_budget`` is ``"share"``).
    random_state : int, numpy Generator or None

    Returns
    -------
    ndarray of int64, shape (K,)
        Aligned with ``triage.kept_indices_`` (see :func:`coupled_random_subset`).

    Raises
    ------
    DataValidationError
        When the triage's fill is not ``"random"`` (its kept set is then not a uniform draw, and
        no random subset can be coupled to it this way).
    """
    from dataprune.estimator import check_fitted
    from dataprune.qtuning.config import QTuningConfig

    check_fitted(triage, "result_")
    cfg = triage.config if triage.config is not None else QTuningConfig()
    if cfg.fill != "random":
        raise DataValidationError(
            f"random_baseline needs a triage fitted with fill='random', got fill={cfg.fill!r}: "
            "its kept set is not a uniform draw from what the noise rules leave in"
        )
    flagged = triage.result_.samples.flagged
    stratified = groups is not None and cfg.group_budget == "share"
    return coupled_random_subset(
        triage.kept_indices_,
        flagged,
        groups=groups if stratified else None,
        random_state=random_state,
    )
