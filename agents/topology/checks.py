"""Argument checks of the :class:`~dataprune.agents.topology.core.Topology` constructor.

Each function validates one argument, raises :class:`DataValidationError` with a message that
names the agents involved, and returns the normalised array.
"""

from __future__ import annotations

import logging
from collections.abc import Container, Mapping, Sequence
from typing import Any

import numpy as np

from dataprune.agents.spec import AgentSpec, as_agent_specs
from dataprune.agents.topology.graph import find_cycle
from dataprune.errors import DataValidationError, UnknownOptionError

__all__ = [
    "AGGREGATORS",
    "as_matrix",
    "check_active",
    "check_adjacency",
    "check_aggregator",
    "check_decision",
    "check_edge_prob",
    "check_rounds",
    "check_temporal",
    "edge_candidates",
    "readonly",
]

logger = logging.getLogger(__name__)

#: Rule-based aggregators (used when a topology has no decision agent).
AGGREGATORS = ("majority", "sinks", "last")


def as_matrix(x: Any, n: int, what: str, dtype: Any) -> np.ndarray:
    """``x`` as an (n, n) array of ``dtype``; ``what`` names the argument in errors."""
    try:
        M = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError):
        raise DataValidationError(f"{what}: expected a numeric matrix of shape {n} x {n}") from None
    if M.shape != (n, n):
        raise DataValidationError(
            f"{what}: expected shape ({n}, {n}) for {n} agents, got {M.shape}"
        )
    return M


def readonly(a: np.ndarray) -> np.ndarray:
    """A write-protected copy of ``a``."""
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


def check_adjacency(adjacency: Any, names: Sequence[str]) -> np.ndarray:
    """The spatial adjacency as bool (n, n): finite entries, no self-loop, no cycle.

    Parameters
    ----------
    adjacency : array-like of shape (n, n)
        Nonzero = edge.
    names : sequence of str
        Agent names in pool order (named in errors).

    Returns
    -------
    ndarray of bool, shape (n, n)
    """
    A = as_matrix(adjacency, len(names), "adjacency", np.float64)
    if not np.isfinite(A).all():
        raise DataValidationError("adjacency: entries must be finite")
    A = A != 0
    if A.diagonal().any():
        i = int(np.flatnonzero(A.diagonal())[0])
        raise DataValidationError(
            f"adjacency: self-loop on agent {names[i]!r}; an agent cannot send to "
            "itself within a round (use temporal edges across rounds)"
        )
    cyc = find_cycle(A)
    if cyc is not None:
        path = " -> ".join(names[i] for i in cyc)
        raise DataValidationError(
            f"adjacency has a cycle ({path}); a round must be a DAG. Threshold probabilities "
            "with Topology.from_edge_probabilities, which breaks cycles explicitly"
        )
    return A


def check_active(active: Any, agents: Sequence[AgentSpec]) -> np.ndarray:
    """The node mask as bool (n,) (default: all active); ``required`` agents must be active."""
    n = len(agents)
    if active is None:
        act = np.ones(n, dtype=bool)
    else:
        act = np.asarray(active)
        if act.shape != (n,):
            raise DataValidationError(
                f"active: expected {n} booleans (one per agent), got shape {act.shape}"
            )
        act = act.astype(bool)
    for i, a in enumerate(agents):
        if a.required and not act[i]:
            raise DataValidationError(f"agent {a.name!r} is required but marked as pruned")
    return act


def check_edge_prob(edge_prob: Any, n: int) -> np.ndarray | None:
    """Edge probabilities as float64 (n, n) in [0, 1], or ``None`` when not given."""
    if edge_prob is None:
        return None
    P = as_matrix(edge_prob, n, "edge_prob", np.float64)
    if not np.isfinite(P).all() or (P < 0).any() or (P > 1).any():
        raise DataValidationError("edge_prob: entries must be probabilities in [0, 1]")
    return P


def check_rounds(rounds: Any) -> int:
    """``rounds`` as an int >= 1 (booleans rejected)."""
    if not isinstance(rounds, (int, np.integer)) or isinstance(rounds, bool) or rounds < 1:
        raise DataValidationError(f"rounds must be an int >= 1, got {rounds!r}")
    return int(rounds)


def check_temporal(temporal: Any, n: int, rounds: int) -> np.ndarray | None:
    """Temporal edges as bool (n, n); the identity by default when ``rounds > 1``, else ``None``."""
    if temporal is not None:
        return as_matrix(temporal, n, "temporal", np.float64) != 0
    if rounds > 1:
        return np.eye(n, dtype=bool)
    return None


def check_aggregator(aggregator: str) -> None:
    """Raise :class:`UnknownOptionError` (listing the valid rules) unless ``aggregator`` is one."""
    if aggregator not in AGGREGATORS:
        raise UnknownOptionError(
            f"unknown aggregator {aggregator!r}; valid: {', '.join(AGGREGATORS)}"
        )


def check_decision(
    decision: AgentSpec | str | Mapping[str, Any] | None, pool: Container[str]
) -> AgentSpec | None:
    """The decision agent as an :class:`AgentSpec` (or ``None``); its name must not be in ``pool``."""
    if decision is None:
        return None
    spec = as_agent_specs([decision])[0]
    if spec.name in pool:
        raise DataValidationError(
            f"decision agent {spec.name!r} must not also be in the agent pool"
        )
    return spec


def edge_candidates(P: np.ndarray, threshold: float, candidates: Any, active: Any) -> np.ndarray:
    """Edges eligible for a thresholded topology, bool (n, n).

    Parameters
    ----------
    P : ndarray of shape (n, n)
        Edge probabilities.
    threshold : float
        Edges with ``P >= threshold`` are candidates.
    candidates : array-like of shape (n, n), optional
        Nonzero = the edge is allowed.
    active : array-like of bool, shape (n,), optional
        Only edges between active agents are candidates.

    Returns
    -------
    ndarray of bool, shape (n, n)
    """
    n = P.shape[0]
    C = threshold <= P
    if candidates is not None:
        C &= as_matrix(candidates, n, "candidates", np.float64) != 0
    if active is not None:
        act = np.asarray(active, dtype=bool)
        if act.shape != (n,):
            raise DataValidationError(f"active: expected {n} booleans, got shape {act.shape}")
        C &= act[:, None] & act[None, :]
    return C
