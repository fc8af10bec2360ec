"""Connected components of a duplicate graph: the one grouping every dedup method shares."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["component_labels", "duplicate_components"]


def component_labels(n_samples: int, i: Any, j: Any) -> np.ndarray:
    """Connected-component label of every record, the edges ``(i[k], j[k])`` undirected.

    Parameters
    ----------
    n_samples : int
        Number of records (graph nodes ``0 .. n_samples - 1``).
    i, j : array-like of int, shape (n_edges,)
        Edge end points.

    Returns
    -------
    ndarray of shape (n_samples,), int
        Labels ``0 .. n_components - 1`` (scipy's numbering); a record with no edge is a
        component of its own.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    i = np.asarray(i, dtype=np.int64).reshape(-1)
    j = np.asarray(j, dtype=np.int64).reshape(-1)
    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n_samples, n_samples))
    return connected_components(graph, directed=False)[1]


def duplicate_components(n_samples: int, i: Any, j: Any) -> list[list[int]]:
    """The components with at least two records, each sorted ascending, largest first (ties:
    smallest first member)."""
    labels = component_labels(n_samples, i, j)
    sizes = np.bincount(labels, minlength=1)
    members = np.flatnonzero(sizes[labels] > 1)  # ascending
    groups: dict[int, list[int]] = {}
    for a, lab in zip(members.tolist(), labels[members].tolist()):
        groups.setdefault(lab, []).append(a)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))
