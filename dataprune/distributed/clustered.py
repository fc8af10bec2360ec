"""Clustering-based selection split into per-block and per-cluster tasks, on any engine.

Every method here runs in three stages; only the middle ones are distributed:

1. **k-means over a sample** (driver): :func:`~dataprune.selection.clustering.
   train_spherical_centroids` on at most ``256 * n_clusters`` seeded rows (faiss).
2. **assignment** (one task per block of 65,536 rows): nearest centre of every row.
3. **per-cluster work** (one task per cluster, fed only that cluster's rows, so a task's memory is
   bounded by its cluster): SemDeDup's duplicate scan; facility location on the cluster's kNN graph.
4. **merge** (driver, O(n_samples) numbers, no embeddings): the budget fill / global order.

Identical selection, precisely: for the same embeddings (bit for bit), budget, options and
``random_state``, every engine returns the same ``selected_indices_`` (same order), ``scores_`` and
fitted attributes, because both engines call the same task functions on the same inputs (same
blocks, same clusters, same member order, same per-cluster seeds) and merge on the driver. For
``prototypes`` and ``semdedup`` the result is moreover exactly that of the in-process
:class:`~dataprune.selection.Prototypes` / :class:`~dataprune.selection.SemDeDup` (the stages are
theirs, cut at the loop boundaries); ``tests/distributed`` checks both. Facility location over a
global kNN graph cannot be cut per cluster, so :class:`ClusteredFacilityLocation` is its own method
(``cluster_facility_location``): the budget is split over clusters in proportion to their sizes
(largest remainder, ties to the lower cluster id), facility location runs inside every cluster,
and the picks are merged by gain.

Prototypes needs no per-cluster task: its score is the assignment similarity itself, so after the
distributed assignment the driver only sorts ``n_samples`` floats.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError, UnknownOptionError
from dataprune.selection.base import BaseSelector, _ranking, resolve_budget
from dataprune.selection.clustering import (
    KMeansResult,
    assign_to_centroids,
    default_n_clusters,
    train_spherical_centroids,
)

logger = logging.getLogger(__name__)

__all__ = [
    "ENGINE_METHODS",
    "ClusteredFacilityLocation",
    "cluster_rows",
    "fit_with_engine",
    "split_budget",
]

ASSIGN_BLOCK = 65536  # rows per assignment task (== spherical_kmeans's search block)


# -- stage 1 + 2: k-means over a sample, distributed assignment --------------------------------
def _assign_block(block: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return assign_to_centroids(block, centroids, block_size=max(1, len(block)))


def cluster_rows(
    X: np.ndarray,
    n_clusters: int,
    *,
    random_state: int | None,
    n_iter: int = 20,
    engine: Any = "local",
    show_progress_bar: bool | None = None,
) -> KMeansResult:
    """:func:`~dataprune.selection.clustering.spherical_kmeans` with the assignment on ``engine``.

    Same result as ``spherical_kmeans(X, n_clusters, n_iter=n_iter, random_state=random_state)``;
    ``X`` may be a memory map (only the training sample and one block per task are read).

    Parameters
    ----------
    X : ndarray of shape (n_samples, dim)
        L2-normalised embeddings.
    n_clusters : int
    random_state : int, optional
    n_iter : int, default=20
    engine : str or Engine, default="local"

    Returns
    -------
    KMeansResult
    """
    from dataprune.distributed.engines import get_engine

    eng = get_engine(engine)
    centroids = train_spherical_centroids(X, n_clusters, n_iter=n_iter, random_state=random_state)
    n = X.shape[0]
    bounds = [(lo, min(n, lo + ASSIGN_BLOCK)) for lo in range(0, n, ASSIGN_BLOCK)]
    parts = eng.map(
        _assign_block,
        ((np.ascontiguousarray(X[lo:hi], dtype=np.float32), centroids) for lo, hi in bounds),
        desc="k-means assignment",
        total=len(bounds),
        show_progress_bar=show_progress_bar,
    )
    labels = np.concatenate([p[0] for p in parts])
    sims = np.concatenate([p[1] for p in parts])
    return KMeansResult(centroids, labels, sims)


def _members(labels: np.ndarray, n_clusters: int) -> list[np.ndarray]:
    """Row ids of every cluster, ascending (as SemDeDup groups them)."""
    from dataprune.selection.semdedup import _group

    return _group(labels, n_clusters)


def split_budget(sizes: np.ndarray, k: int) -> np.ndarray:
    """Split ``k`` over clusters in proportion to ``sizes`` (largest remainder, exact integers).

    Cluster ``c`` gets ``floor(k * sizes[c] / n)`` plus one for the ``k - sum(floors)`` largest
    remainders (ties: lower cluster id). Never more than ``sizes[c]``; the quotas sum to ``k``.

    Returns
    -------
    ndarray of shape (n_clusters,), int64
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    n = int(sizes.sum())
    if not 0 <= k <= n:
        raise DataValidationError(f"budget {k} is outside [0, {n}]")
    if n == 0:
        return np.zeros_like(sizes)
    num = sizes * int(k)
    quota = num // n
    rem = num % n
    left = int(k - quota.sum())
    order = np.lexsort((np.arange(len(sizes)), -rem))
    quota[order[:left]] += 1
    return quota


# -- per-method stages ------------------------------------------------------------------------
def cluster_for(
    selector: Any, X: np.ndarray, rng: np.random.Generator, engine: Any = "local"
) -> KMeansResult:
    """The k-means step of a clustering selector: its ``n_clusters`` (default for ``len(X)``),
    ``n_iter`` and ``show_progress_bar``, seeded from ``rng``, assignment on ``engine``."""
    n = X.shape[0]
    return cluster_rows(
        X,
        selector.n_clusters if selector.n_clusters is not None else default_n_clusters(n),
        n_iter=selector.n_iter,
        random_state=int(rng.integers(0, 2**31 - 1)),
        engine=engine,
        show_progress_bar=getattr(selector, "show_progress_bar", None),
    )


def _prototypes(sel: Any, X: np.ndarray, k: int, rng: np.random.Generator, engine: Any):
    """:class:`~dataprune.selection.Prototypes` with its k-means assignment on ``engine``."""
    sel._check_params()
    return sel._select_on(X, k, rng, engine)


def _semdedup(sel: Any, X: np.ndarray, k: int, rng: np.random.Generator, engine: Any):
    """:class:`~dataprune.selection.SemDeDup` with its assignment and scans on ``engine``."""
    sel._check_params()
    return sel._select_on(X, k, rng, engine)


def _facility_location_cluster(
    E: np.ndarray, quota: int, seed: int, n_neighbors: int, similarity: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Facility location inside one cluster (``E``: its rows, ascending row id).

    Returns local positions: selected, gains, scores (gain w.r.t. the cluster's picks; w.r.t. the
    empty set when ``quota`` is 0), coverage, nearest selected. faiss runs on one thread here on
    every engine: its kNN similarities round differently with the thread count.
    """
    import faiss

    prev = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return _facility_location_cluster_1t(E, quota, seed, n_neighbors, similarity)
    finally:
        faiss.omp_set_num_threads(prev)


def _facility_location_cluster_1t(
    E: np.ndarray, quota: int, seed: int, n_neighbors: int, similarity: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from dataprune.selection.facility_location import FacilityLocation

    m = len(E)
    fl = FacilityLocation(
        n_samples=max(1, int(quota)),
        random_state=int(seed),
        n_neighbors=n_neighbors,
        similarity=similarity,
        show_progress_bar=False,
    )
    if quota > 0:
        fl.fit(E)
        return (
            fl.selected_indices_,
            fl.gains_,
            fl.scores_,
            fl.coverage_,
            fl.nearest_selected_,
        )
    from dataprune.neighbors import knn_graph
    from dataprune.selection.facility_location import (
        _all_gains,
        _check_similarity,
        _coverage_csr,
        _normalised_rows,
    )

    _check_similarity(similarity)
    E = _normalised_rows(E)
    sims, idx = knn_graph(E, int(n_neighbors), random_state=int(seed), show_progress_bar=False)
    indptr, indices, data = _coverage_csr(sims, idx, similarity)
    zero = np.zeros(m, np.float64)
    scores = _all_gains(indptr, indices, data, zero)
    empty = np.zeros(0, np.int64)
    return empty, np.zeros(0), scores, zero, np.full(m, -1, np.int64)


def _facility_location(sel: Any, X: np.ndarray, k: int, rng: np.random.Generator, engine: Any):
    from dataprune.distributed.engines import get_engine
    from dataprune.selection.facility_location import _check_similarity, _normalised_rows

    _check_similarity(sel.similarity)
    if isinstance(sel.n_neighbors, bool) or int(sel.n_neighbors) < 1:
        raise DataValidationError(f"n_neighbors must be >= 1, got {sel.n_neighbors}")
    X = _normalised_rows(X)
    n = X.shape[0]
    km = cluster_for(sel, X, rng, engine)
    members = _members(km.labels, km.n_clusters)
    sizes = np.array([len(m) for m in members], dtype=np.int64)
    quota = split_budget(sizes, k)
    seeds = rng.integers(0, 2**31 - 1, size=km.n_clusters)
    todo = [c for c in range(km.n_clusters) if sizes[c] > 0]
    results = get_engine(engine).map(
        _facility_location_cluster,
        (
            (
                np.asarray(X[members[c]], dtype=np.float32),
                int(quota[c]),
                int(seeds[c]),
                int(sel.n_neighbors),
                sel.similarity,
            )
            for c in todo
        ),
        desc="facility location clusters",
        total=len(todo),
        show_progress_bar=sel.show_progress_bar,
    )
    scores = np.zeros(n, np.float64)
    coverage = np.zeros(n, np.float64)
    nearest = np.full(n, -1, np.int64)
    picked, gains = [], []
    for c, (s_loc, g, sc, cov, near) in zip(todo, results):
        ids = members[c]
        picked.append(ids[s_loc])
        gains.append(g)
        scores[ids] = sc
        coverage[ids] = cov
        nearest[ids] = np.where(near >= 0, ids[np.clip(near, 0, None)], -1)
    picked_all = np.concatenate(picked) if picked else np.zeros(0, np.int64)
    gains_all = np.concatenate(gains) if gains else np.zeros(0)
    order = np.lexsort((picked_all, -gains_all))
    sel.gains_ = gains_all[order]
    sel.labels_ = km.labels
    sel.cluster_centers_ = km.centroids
    sel.cluster_budget_ = quota.tolist()
    sel.coverage_ = coverage
    sel.nearest_selected_ = nearest
    sel.objective_ = float(coverage.sum())
    return picked_all[order], scores


class ClusteredFacilityLocation(BaseSelector):
    """Facility location inside k-means clusters, the budget split by cluster size.

    Spherical k-means (faiss, trained on a sample) partitions the embeddings; cluster ``c`` gets
    ``split_budget(sizes, k)[c]`` picks (proportional, largest remainder) and runs the lazy-greedy
    :class:`~dataprune.selection.FacilityLocation` on its own kNN graph; picks are merged by gain.
    Memory per cluster is bounded by the cluster, so clusters run as independent tasks
    (``dataprune select --engine ray``). With ``n_clusters=1`` this is plain facility location.

    Parameters
    ----------
    n_samples, fraction : int or float
        Budget (exactly one).
    random_state : int, optional
        Seed for k-means and the per-cluster kNN indexes.
    n_clusters : int, optional
        Default ``round(sqrt(n_samples))``, at most 1000.
    n_neighbors : int, default=32
        kNN graph degree inside a cluster.
    similarity : {"clip", "shift"}, default="clip"
    n_iter : int, default=20
        k-means iterations.

    Fitted attributes (besides the base ones)
    -----------------------------------------
    gains_ : ndarray of shape (k,), float64
        Gain of each pick inside its cluster, in selection order (descending).
    scores_ : ndarray of shape (n_samples,)
        Picks: their gain; others: the gain they would still add to their cluster (higher = keep).
    labels_ : ndarray of shape (n_samples,), int64
    cluster_budget_ : list of int
        Picks per cluster.
    coverage_ : ndarray of shape (n_samples,)
        Similarity to the best pick of the same cluster (kNN graph).
    nearest_selected_ : ndarray of shape (n_samples,), int64
    objective_ : float
        Sum of ``coverage_``.
    """

    def __init__(
        self,
        *,
        n_samples: int | None = None,
        fraction: float | None = None,
        random_state: int | None = None,
        n_clusters: int | None = None,
        n_neighbors: int = 32,
        similarity: str = "clip",
        n_iter: int = 20,
        show_progress_bar: bool | None = None,
    ) -> None:
        super().__init__(n_samples=n_samples, fraction=fraction, random_state=random_state)
        self.n_clusters = n_clusters
        self.n_neighbors = n_neighbors
        self.similarity = similarity
        self.n_iter = n_iter
        self.show_progress_bar = show_progress_bar

    def _select(self, X, y, k, rng):
        return _facility_location(self, X, k, rng, "local")


def _algorithms() -> dict[type, Any]:
    from dataprune.selection.prototypes import Prototypes
    from dataprune.selection.semdedup import SemDeDup

    return {
        Prototypes: _prototypes,
        SemDeDup: _semdedup,
        ClusteredFacilityLocation: _facility_location,
    }


#: Methods (``dataprune select --method``) that run on every engine: the clustering methods
#: (per-block and per-cluster tasks) and the LM-difficulty methods on SFT records (the LM scores
#: run as a shard pipeline, the ranking on the driver).
ENGINE_METHODS = ("prototypes", "semdedup", "cluster_facility_location", "el2n", "ccs")
CLUSTER_METHODS = ("prototypes", "semdedup", "cluster_facility_location")


def fit_with_engine(selector: BaseSelector, X: Any, y: Any = None, *, engine: Any = "local"):
    """Fit a clustering-based selector with its tasks on ``engine``; returns the selector.

    Same fitted attributes, and for the same inputs and ``random_state`` the same values, as
    ``selector.fit(X, y)`` (see the module docstring).

    Parameters
    ----------
    selector : Prototypes, SemDeDup or ClusteredFacilityLocation
    X : array-like of shape (n_samples, dim)
        L2-normalised embeddings (a memory map is read block by block / cluster by cluster).
    engine : {"local", "ray"} or Engine

    Raises
    ------
    UnknownOptionError
        For a selector that cannot be split into per-cluster tasks.
    """
    from dataprune.distributed.engines import get_engine

    algo = _algorithms().get(type(selector))
    if algo is None:
        raise UnknownOptionError(
            f"{type(selector).__name__} cannot run on a distributed engine; methods that can: "
            f"{', '.join(CLUSTER_METHODS)} (facility_location and kcenter build one global "
            "structure: use cluster_facility_location, or the local engine)"
        )
    eng = get_engine(engine)
    selector._check_params()
    X = selector._validate_data(X)
    n = X.shape[0]
    k = resolve_budget(n, n_samples=selector.n_samples, fraction=selector.fraction)
    rng = np.random.default_rng(selector.random_state)
    selected, scores = algo(selector, X, k, rng, eng)
    selected = np.asarray(selected, dtype=np.int64)
    if selected.shape != (k,) or len(np.unique(selected)) != k:
        raise RuntimeError(
            f"{type(selector).__name__} returned {len(selected)} indices, expected {k} unique"
        )
    selector.selected_indices_ = selected
    selector.scores_ = np.asarray(scores, dtype=np.float64)
    selector.ranking_ = _ranking(n, selected, selector.scores_)
    selector.n_samples_seen_ = n
    selector.engine_ = eng.describe()
    return selector
