"""Semantic deduplication (SemDeDup, Abbas et al. 2023) with an exact output budget."""

from __future__ import annotations

import logging

import numpy as np

from dataprune.dedup.components import duplicate_components
from dataprune.errors import DataValidationError
from dataprune.selection.base import BaseSelector

logger = logging.getLogger(__name__)

__all__ = ["SemDeDup"]

_BLOCK_ELEMENTS = 1 << 25  # similarity entries computed at once (128 MiB of float32)


class SemDeDup(BaseSelector):
    """Remove semantic near-duplicates inside k-means clusters, then fill the budget.

    Inside each cluster the members are ordered (``keep="hard"``: farthest from the centre first,
    which is the member SemDeDup keeps; ``"easy"``: nearest first; ``"random"``). A member is a
    duplicate when its cosine similarity to any earlier member exceeds ``1 - eps``. The budget is
    then filled from the non-duplicates (``fill="random"``: uniformly, so the kept set is a random
    sample of the deduplicated data; ``fill="unique"``: least redundant first). When fewer
    non-duplicates exist than the budget, duplicates are added least redundant first.

    Parameters
    ----------
    n_samples, fraction : int or float
        Budget (exactly one).
    random_state : int, optional
        Seed for k-means and the fill.
    eps : float, default=0.05
        Duplicate threshold: similarity > ``1 - eps``.
    n_clusters : int, optional
        k-means clusters (default ``round(sqrt(n_samples))``, at most 1000). Duplicates in
        different clusters are not compared, as in the paper.
    keep : {"hard", "easy", "random"}, default="hard"
        Which member of a duplicate group survives.
    fill : {"random", "unique"}, default="random"
        How the budget is taken from the non-duplicates.
    n_iter : int, default=20
        k-means iterations.

    Fitted attributes (besides the base ones)
    -----------------------------------------
    max_similarity_ : ndarray of shape (n_samples,), float32
        Highest similarity to an earlier member of the same cluster (-1 for the first).
    duplicate_of_ : ndarray of shape (n_samples,), int64
        The most similar earlier member for duplicates, -1 otherwise.
    is_duplicate_ : ndarray of shape (n_samples,), bool
    duplicate_groups_ : list of list of int
        Each group's surviving member first, then its duplicates (ascending); largest first.
    labels_ : ndarray of shape (n_samples,), int64
        Cluster of every record.
    scores_ : ndarray of shape (n_samples,)
        ``-max_similarity_`` (higher = more unique = keep).
    """

    def __init__(
        self,
        *,
        n_samples: int | None = None,
        fraction: float | None = None,
        random_state: int | None = None,
        eps: float = 0.05,
        n_clusters: int | None = None,
        keep: str = "hard",
        fill: str = "random",
        n_iter: int = 20,
        show_progress_bar: bool | None = None,
    ) -> None:
        super().__init__(n_samples=n_samples, fraction=fraction, random_state=random_state)
        self.eps = eps
        self.n_clusters = n_clusters
        self.keep = keep
        self.fill = fill
        self.n_iter = n_iter
        self.show_progress_bar = show_progress_bar

    def _check_params(self) -> None:
        if self.keep not in ("hard", "easy", "random"):
            raise DataValidationError(f"keep must be 'hard', 'easy' or 'random', got {self.keep!r}")
        if self.fill not in ("random", "unique"):
            raise DataValidationError(f"fill must be 'random' or 'unique', got {self.fill!r}")
        if not 0.0 <= float(self.eps) <= 2.0:
            raise DataValidationError(f"eps must be in [0, 2], got {self.eps!r}")

    def _select(self, X, y, k, rng):
        return self._select_on(X, k, rng, engine="local")

    def _select_on(self, X, k, rng, engine):
        """The selection with the k-means assignment and the per-cluster duplicate scans on
        ``engine`` (``"local"``: in-process; :func:`dataprune.distributed.fit_with_engine` passes
        its engine). Every engine gives the same result."""
        from dataprune.distributed.clustered import cluster_for
        from dataprune.distributed.engines import get_engine

        n = X.shape[0]
        km = cluster_for(self, X, rng, engine)
        max_sim = np.full(n, -1.0, dtype=np.float32)
        dup_of = np.full(n, -1, dtype=np.int64)
        tie = rng.random(n)
        scans = []
        for members in _group(km.labels, km.n_clusters):
            if len(members) < 2:
                continue
            if self.keep == "hard":
                key = km.similarity[members]  # low similarity to the centre = far = first
            elif self.keep == "easy":
                key = -km.similarity[members]
            else:
                key = tie[members]
            scans.append(members[np.lexsort((members, key))])
        results = get_engine(engine).map(
            scan_cluster,
            ((np.asarray(X[ordered], dtype=np.float32),) for ordered in scans),
            desc="SemDeDup clusters",
            total=len(scans),
            show_progress_bar=self.show_progress_bar,
        )
        for ordered, (ms, dup) in zip(scans, results):
            max_sim[ordered] = ms
            dup_of[ordered] = np.where(dup >= 0, ordered[np.clip(dup, 0, None)], -1)
        threshold = 1.0 - float(self.eps)
        is_dup = max_sim > threshold
        dup_of[~is_dup] = -1
        redundancy = max_sim.astype(np.float64)
        unique_first = np.lexsort((np.arange(n), redundancy))  # least redundant first
        pool_order = unique_first[~is_dup[unique_first]]
        dups_order = unique_first[is_dup[unique_first]]
        if len(pool_order) >= k and self.fill == "random":
            chosen = rng.choice(pool_order, size=k, replace=False)
        else:
            chosen = np.concatenate([pool_order, dups_order])[:k]
            if len(pool_order) < k:
                logger.info(
                    "SemDeDup: %d non-duplicates for a budget of %d; adding %d duplicates",
                    len(pool_order),
                    k,
                    k - len(pool_order),
                )
        self.max_similarity_ = max_sim
        self.duplicate_of_ = dup_of
        self.is_duplicate_ = is_dup
        self.duplicate_groups_ = _groups(n, dup_of)
        self.labels_ = km.labels
        self.n_duplicates_ = int(is_dup.sum())
        return chosen, -redundancy


def _group(labels: np.ndarray, n_clusters: int) -> list[np.ndarray]:
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_clusters + 1))
    return [order[bounds[c] : bounds[c + 1]] for c in range(n_clusters)]


def _scan_cluster(X: np.ndarray, ordered: np.ndarray, max_sim: np.ndarray, dup_of: np.ndarray):
    """For each member, its highest similarity to any earlier member (blockwise, O(block * m))."""
    m = len(ordered)
    block = max(1, min(m, _BLOCK_ELEMENTS // m))
    E = X[ordered]
    for lo in range(1, m, block):
        hi = min(m, lo + block)
        S = E[lo:hi] @ E[:hi].T  # (hi-lo, hi)
        rows = np.arange(lo, hi)
        S[np.arange(hi)[None, :] >= rows[:, None]] = -np.inf
        j = np.argmax(S, axis=1)
        max_sim[ordered[lo:hi]] = S[np.arange(hi - lo), j]
        dup_of[ordered[lo:hi]] = ordered[j]


def scan_cluster(E: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One cluster's duplicate scan (``E``: its rows in scan order, shape (m, dim)): each row's
    max similarity to an earlier member and that member's position (-1 for none)."""
    m = len(E)
    max_sim = np.full(m, -1.0, dtype=np.float32)
    dup = np.full(m, -1, dtype=np.int64)
    _scan_cluster(E, np.arange(m), max_sim, dup)
    return max_sim, dup


def _groups(n: int, dup_of: np.ndarray) -> list[list[int]]:
    """Connected components of the duplicate -> earlier-member edges, survivor first."""
    dups = np.flatnonzero(dup_of >= 0)
    out = []
    for group in duplicate_components(n, dups, dup_of[dups]):
        survivor = [i for i in group if dup_of[i] < 0]  # exactly one per group (a tree)
        out.append(survivor + [i for i in group if dup_of[i] >= 0])
    return sorted(out, key=lambda g: (-len(g), g[0]))
