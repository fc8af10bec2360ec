"""Near-duplicate records by embedding: pairs above a cosine threshold among each record's
neighbours (:func:`dataprune.neighbors.knn_graph`) and the groups they connect."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dataprune.dedup.components import duplicate_components
from dataprune.errors import DataValidationError
from dataprune.neighbors import knn_graph

__all__ = ["DuplicatePair", "duplicate_groups", "near_duplicate_pairs"]


@dataclass(frozen=True)
class DuplicatePair:
    """Two records whose embeddings have cosine similarity >= the threshold (``i < j``)."""

    i: int
    j: int
    similarity: float


def near_duplicate_pairs(
    X: np.ndarray,
    *,
    threshold: float = 0.95,
    k: int = 10,
    show_progress_bar: bool | None = None,
) -> list[DuplicatePair]:
    """Pairs of rows with cosine similarity >= ``threshold`` among each row's ``k`` neighbours.

    Parameters
    ----------
    X : ndarray of shape (n_samples, dim)
        L2-normalised embeddings.
    threshold : float, default=0.95
        Minimum cosine similarity.
    k : int, default=10
        Neighbours examined per row.

    Returns
    -------
    list of DuplicatePair
        Sorted by decreasing similarity, each unordered pair once.
    """
    if not -1.0 <= threshold <= 1.0:
        raise DataValidationError(f"threshold must be in [-1, 1], got {threshold}")
    sims, idx = knn_graph(X, k, show_progress_bar=show_progress_bar)
    pairs: dict[tuple[int, int], float] = {}
    rows, cols = np.nonzero(sims >= threshold)
    for r, c in zip(rows.tolist(), cols.tolist()):
        j = int(idx[r, c])
        if j < 0:
            continue
        key = (min(r, j), max(r, j))
        pairs[key] = max(pairs.get(key, -1.0), float(sims[r, c]))
    return sorted(
        (DuplicatePair(i, j, s) for (i, j), s in pairs.items()),
        key=lambda p: (-p.similarity, p.i, p.j),
    )


def duplicate_groups(n_samples: int, pairs: list[DuplicatePair]) -> list[list[int]]:
    """Connected components (size >= 2) of the duplicate-pair graph, each sorted, largest first."""
    return duplicate_components(n_samples, [p.i for p in pairs], [p.j for p in pairs])
