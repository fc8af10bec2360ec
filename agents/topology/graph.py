"""Graph algorithms on boolean adjacency matrices (networkx underneath).

Every function takes plain ``numpy`` adjacencies (``A[i, j]`` true = edge ``i -> j``) and returns
agent *positions*, so :class:`~dataprune.agents.topology.core.Topology` can map them to names.
Orderings are deterministic: nodes are visited in position order and each node's successors in
ascending position (the graph is built row by row from the matrix).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError

__all__ = ["acyclic_from_scores", "digraph", "find_cycle", "level_indices"]

logger = logging.getLogger(__name__)


def digraph(adjacency: np.ndarray) -> Any:
    """A ``networkx.DiGraph`` of a boolean adjacency.

    Parameters
    ----------
    adjacency : ndarray of bool, shape (n_agents, n_agents)
        ``adjacency[i, j]`` true = edge ``i -> j``.

    Returns
    -------
    networkx.DiGraph
        Nodes ``0 .. n_agents - 1`` in order; each node's out-edges inserted in ascending order.
    """
    import networkx as nx

    A = np.asarray(adjacency, dtype=bool)
    G = nx.DiGraph()
    G.add_nodes_from(range(A.shape[0]))
    ii, jj = np.nonzero(A)
    G.add_edges_from(zip(ii.tolist(), jj.tolist()))
    return G


def find_cycle(adjacency: np.ndarray) -> list[int] | None:
    """A directed cycle ``[i0, i1, ..., i0]`` in a boolean adjacency, or ``None`` if acyclic.

    The search is a depth-first search from position 0 upwards, successors in ascending order;
    the cycle returned is the first one that search closes.

    Parameters
    ----------
    adjacency : ndarray of bool, shape (n_agents, n_agents)

    Returns
    -------
    list of int or None
        Positions along the cycle, first position repeated at the end.
    """
    import networkx as nx

    G = digraph(adjacency)
    if nx.is_directed_acyclic_graph(G):  # the common case, much cheaper than find_cycle
        return None
    edges = nx.find_cycle(G)
    return [u for u, _ in edges] + [edges[-1][1]]


def acyclic_from_scores(
    scores: np.ndarray, candidates: np.ndarray
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Keep candidate edges greedily by descending score, skipping any that would close a cycle.

    Tie-breaking is explicit: equal scores are taken in row-major ``(i, j)`` order. The result is
    the maximal acyclic subset reachable by this greedy order (strong edges win over weak ones).

    Parameters
    ----------
    scores : ndarray of shape (n_agents, n_agents)
        Edge scores (probabilities); higher = keep first.
    candidates : ndarray of bool, shape (n_agents, n_agents)
        Edges that passed the threshold.

    Returns
    -------
    adjacency : ndarray of bool, shape (n_agents, n_agents)
    dropped : list of (i, j)
        Candidate edges removed to break cycles.
    """
    import networkx as nx

    S = np.asarray(scores, dtype=np.float64)
    C = np.asarray(candidates, dtype=bool).copy()
    np.fill_diagonal(C, False)
    n = C.shape[0]
    A = np.zeros((n, n), dtype=bool)
    G = digraph(A)
    ii, jj = np.nonzero(C)
    order = np.lexsort((jj, ii, -S[ii, jj]))
    dropped: list[tuple[int, int]] = []
    for k in order:
        i, j = int(ii[k]), int(jj[k])
        if nx.has_path(G, j, i):
            dropped.append((i, j))
        else:
            A[i, j] = True
            G.add_edge(i, j)
    if dropped:
        logger.debug("dropped %d candidate edge(s) that would close a cycle", len(dropped))
    return A, dropped


def level_indices(adjacency: np.ndarray, active: np.ndarray) -> list[list[int]]:
    """Active positions grouped into longest-path layers, each layer in ascending position.

    Level 0 holds the active nodes with no active predecessor; a node's level is one more than
    its deepest active predecessor's.

    Parameters
    ----------
    adjacency : ndarray of bool, shape (n_agents, n_agents)
    active : ndarray of bool, shape (n_agents,)

    Returns
    -------
    list of list of int

    Raises
    ------
    DataValidationError
        If the active sub-graph has a cycle.
    """
    import networkx as nx

    act = np.asarray(active, dtype=bool)
    G = digraph(np.asarray(adjacency, dtype=bool) & act[:, None] & act[None, :])
    G.remove_nodes_from(np.flatnonzero(~act).tolist())
    try:
        return [sorted(gen) for gen in nx.topological_generations(G)]
    except nx.NetworkXUnfeasible:  # pragma: no cover - the constructor rejects cycles
        raise DataValidationError("the active sub-graph has a cycle") from None
