"""Self-supervised prototype pruning (Sorscher et al. 2022, "Beyond neural scaling laws")."""

from __future__ import annotations

import logging

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.selection.base import BaseSelector

logger = logging.getLogger(__name__)

__all__ = ["Prototypes"]


class Prototypes(BaseSelector):
    """Keep records by their cosine distance to the nearest k-means prototype.

    Spherical k-means (faiss) on the embeddings; a record's difficulty is ``1 - cos(x, centre)``.
    ``keep="hard"`` keeps the records farthest from their prototype (best with plenty of data),
    ``keep="easy"`` the nearest (best at aggressive pruning, per Sorscher et al.).

    Parameters
    ----------
    n_samples, fraction : int or float
        Budget (exactly one).
    random_state : int, optional
        Seed for k-means.
    keep : {"hard", "easy"}, default="hard"
        Which end of the distance ranking to keep.
    n_clusters : int, optional
        Number of prototypes (default ``round(sqrt(n_samples))``, at most 1000).
    n_iter : int, default=20
        k-means iterations.

    Fitted attributes (besides the base ones)
    -----------------------------------------
    distances_ : ndarray of shape (n_samples,)
        Cosine distance to the nearest prototype (higher = harder).
    labels_ : ndarray of shape (n_samples,), int64
        Cluster of every record.
    cluster_centers_ : ndarray of shape (n_clusters, dim), float32
    scores_ : ndarray of shape (n_samples,)
        ``distances_`` for ``keep="hard"``, ``-distances_`` for ``keep="easy"`` (higher = keep).
    """

    def __init__(
        self,
        *,
        n_samples: int | None = None,
        fraction: float | None = None,
        random_state: int | None = None,
        keep: str = "hard",
        n_clusters: int | None = None,
        n_iter: int = 20,
    ) -> None:
        super().__init__(n_samples=n_samples, fraction=fraction, random_state=random_state)
        self.keep = keep
        self.n_clusters = n_clusters
        self.n_iter = n_iter

    def _check_params(self) -> None:
        if self.keep not in ("hard", "easy"):
            raise DataValidationError(f"keep must be 'hard' or 'easy', got {self.keep!r}")

    def _select(self, X, y, k, rng):
        return self._select_on(X, k, rng, engine="local")

    def _select_on(self, X, k, rng, engine):
        """The selection with the k-means assignment on ``engine`` (``"local"``: in-process;
        :func:`dataprune.distributed.fit_with_engine` passes its engine)."""
        from dataprune.distributed.clustered import cluster_for

        n = X.shape[0]
        km = cluster_for(self, X, rng, engine)
        dist = 1.0 - km.similarity.astype(np.float64)
        score = dist if self.keep == "hard" else -dist
        order = np.lexsort((np.arange(n), -score))
        self.distances_ = dist
        self.labels_ = km.labels
        self.cluster_centers_ = km.centroids
        return order[:k], score
