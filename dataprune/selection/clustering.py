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

__all__ = ["KMeansResult", "default_n_clusters", "spherical_kmeans"]


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
    import faiss

    X = np.ascontiguousarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] == 0:
        raise DataValidationError(f"expected a non-empty 2-D array, got shape {X.shape}")
    n, d = X.shape
    if not isinstance(n_clusters, (int, np.integer)) or n_clusters < 1:
        raise DataValidationError(f"n_clusters must be a positive integer, got {n_clusters!r}")
    k = int(min(n_clusters, n))
    seed = int(np.random.default_rng(random_state).integers(0, 2**31 - 1))
    if k == 1:
        c = X.mean(axis=0, keepdims=True)
        centroids = (c / max(float(np.linalg.norm(c)), 1e-12)).astype(np.float32)
    else:
        n_train = min(n, max_points_per_centroid * k)
        if n_train < n:
            rng = np.random.default_rng(seed)
            train = X[np.sort(rng.choice(n, size=n_train, replace=False))]
        else:
            train = X
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
        centroids = np.ascontiguousarray(km.centroids, dtype=np.float32)
    index = faiss.IndexFlatIP(d)
    index.add(centroids)
    labels = np.empty(n, dtype=np.int64)
    sims = np.empty(n, dtype=np.float32)
    for lo in range(0, n, block_size):
        hi = min(n, lo + block_size)
        s, i = index.search(X[lo:hi], 1)
        labels[lo:hi] = i[:, 0]
        sims[lo:hi] = s[:, 0]
    return KMeansResult(centroids, labels, sims)
