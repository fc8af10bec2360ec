"""Spherical k-means on normalised embeddings (faiss), shared by prototypes and SemDeDup.

Training uses at most ``max_points_per_centroid * n_clusters`` rows (a seeded sample, as faiss
does); assignment is done block by block, so memory stays O(n_samples) beyond the input.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from dataprune.errors import DataValidationError

logger = logging.getLogger(__name__)

__all__ = [
    "KMeansResult",
    "assign_to_centroids",
    "default_n_clusters",
    "kmeans_seed",
    "spherical_kmeans",
    "train_spherical_centroids",
]


@dataclass
class KMeansResult:
    """Output of :func:`spherical_kmeans`.

    Attributes
    ----------
    centroids : ndarray of shape (n_clusters, dim), float32
        Unit-norm cluster centres.
    labels : ndarray of shape (n_samples,), int64
        Nearest centre of every row.
    similarity : ndarray of shape (n_samples,), float32
        Cosine similarity of every row to its centre.
    """

    centroids: np.ndarray
    labels: np.ndarray
    similarity: np.ndarray

    @property
    def n_clusters(self) -> int:
        return int(self.centroids.shape[0])


def default_n_clusters(n_samples: int) -> int:
    """``round(sqrt(n_samples))`` clipped to [1, 1000] (about sqrt(n) members per cluster)."""
    return int(min(1000, max(1, round(np.sqrt(n_samples)))))


def spherical_kmeans(
    X: np.ndarray,
    n_clusters: int,
    *,
    n_iter: int = 20,
    random_state: int | None = 0,
    max_points_per_centroid: int = 256,
    block_size: int = 65536,
) -> KMeansResult:
    """Cluster L2-normalised rows by cosine similarity.

    Parameters
    ----------
    X : ndarray of shape (n_samples, dim)
        L2-normalised embeddings (converted to float32).
    n_clusters : int
        Number of clusters (clipped to ``n_samples``).
    n_iter : int, default=20
        Lloyd iterations.
    random_state : int, optional
        Seed for the initial centres and the training sample.
    max_points_per_centroid : int, default=256
        Training-sample cap per centre (rows beyond it are only assigned, not trained on).
    block_size : int, default=65536
        Rows assigned per search call.

    Returns
    -------
    KMeansResult
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] == 0:
        raise DataValidationError(f"expected a non-empty 2-D array, got shape {X.shape}")
    centroids = train_spherical_centroids(
        X,
        n_clusters,
        n_iter=n_iter,
        random_state=random_state,
        max_points_per_centroid=max_points_per_centroid,
    )
    labels, sims = assign_to_centroids(X, centroids, block_size=block_size)
    return KMeansResult(centroids, labels, sims)


def kmeans_seed(random_state: int | None) -> int:
    """The faiss seed :func:`spherical_kmeans` derives from ``random_state``."""
    return int(np.random.default_rng(random_state).integers(0, 2**31 - 1))


def train_spherical_centroids(
    X: np.ndarray,
    n_clusters: int,
    *,
    n_iter: int = 20,
    random_state: int | None = 0,
    max_points_per_centroid: int = 256,
) -> np.ndarray:
    """The centres of :func:`spherical_kmeans` (trained on a seeded sample of ``X``).

    Only the sampled rows are read (sorted row indices), so ``X`` may be a memory map larger than
    RAM; with one cluster the centre is the normalised mean of every row.

    Returns
    -------
    ndarray of shape (min(n_clusters, n_samples), dim), float32
        Unit-norm centres.
    """
    import faiss

    if X.ndim != 2 or X.shape[0] == 0:
        raise DataValidationError(f"expected a non-empty 2-D array, got shape {X.shape}")
    n, d = X.shape
    if not isinstance(n_clusters, (int, np.integer)) or n_clusters < 1:
        raise DataValidationError(f"n_clusters must be a positive integer, got {n_clusters!r}")
    k = int(min(n_clusters, n))
    seed = kmeans_seed(random_state)
    if k == 1:
        c = np.asarray(X, dtype=np.float32).mean(axis=0, keepdims=True)
        return (c / max(float(np.linalg.norm(c)), 1e-12)).astype(np.float32)
    n_train = min(n, max_points_per_centroid * k)
    if n_train < n:
        rng = np.random.default_rng(seed)
        train = np.ascontiguousarray(
            X[np.sort(rng.choice(n, size=n_train, replace=False))], dtype=np.float32
        )
    else:
        train = np.ascontiguousarray(X, dtype=np.float32)
    km = faiss.Kmeans(
        d,
        k,
        niter=n_iter,
        seed=seed,
        spherical=True,
        max_points_per_centroid=max(max_points_per_centroid, -(-n_train // k)),
        min_points_per_centroid=1,
        verbose=False,
    )
    km.train(train)
    return np.ascontiguousarray(km.centroids, dtype=np.float32)


def assign_to_centroids(
    X: np.ndarray, centroids: np.ndarray, *, block_size: int = 65536
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre (inner product) of every row, ``block_size`` rows per search call.

    faiss proposes the two best centres; both similarities are then recomputed row by row in
    float64, and the better one wins (ties: lower centre id). faiss's BLAS search rounds
    differently with the thread count; the recomputation makes the result independent of it, so
    a block assigned in a one-CPU worker equals the same block assigned in a multi-threaded driver.

    Returns
    -------
    labels : ndarray of shape (n_samples,), int64
    similarity : ndarray of shape (n_samples,), float32
    """
    import faiss

    n = X.shape[0]
    C = np.ascontiguousarray(centroids, dtype=np.float32)
    index = faiss.IndexFlatIP(C.shape[1])
    index.add(C)
    kk = min(2, C.shape[0])
    C64 = C.astype(np.float64)
    labels = np.empty(n, dtype=np.int64)
    sims = np.empty(n, dtype=np.float32)
    for lo in range(0, n, block_size):
        hi = min(n, lo + block_size)
        B = np.ascontiguousarray(X[lo:hi], dtype=np.float32)
        _, i = index.search(B, kk)
        i = np.where(i < 0, i[:, :1], i)
        exact = np.empty((hi - lo, kk), np.float64)
        for a in range(0, hi - lo, 8192):  # row-wise float64 dot products, 8192 rows at a time
            B64 = B[a : a + 8192].astype(np.float64)
            for c in range(kk):
                exact[a : a + 8192, c] = np.einsum("ij,ij->i", B64, C64[i[a : a + 8192, c]])
        best = np.argmax(exact, axis=1)
        if kk == 2:  # exact tie: the lower centre id
            tie = (exact[:, 0] == exact[:, 1]) & (i[:, 1] < i[:, 0])
            best[tie] = 1
        rows = np.arange(hi - lo)
        labels[lo:hi] = i[rows, best]
        sims[lo:hi] = exact[rows, best].astype(np.float32)
    return labels, sims
