"""Preset communication structures: chain, star, full mesh, layered, random DAG.

Each function builds the boolean adjacency (and, for ``layered``, the node mask) of a preset;
:meth:`Topology.chain <dataprune.agents.topology.core.Topology.chain>` and its siblings wrap them
into topologies.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence

import numpy as np

from dataprune.errors import DataValidationError, UnknownOptionError

__all__ = [
    "PRESETS",
    "chain_adjacency",
    "check_preset",
    "default_layers",
    "full_adjacency",
    "layered_adjacency",
    "random_adjacency",
    "star_adjacency",
]

logger = logging.getLogger(__name__)

#: Preset names accepted by :meth:`Topology.preset <dataprune.agents.topology.core.Topology.preset>`.
PRESETS = ("chain", "star", "full", "layered", "random")


def check_preset(name: str) -> None:
    """Raise :class:`UnknownOptionError` (listing the valid names) unless ``name`` is a preset."""
    if name not in PRESETS:
        raise UnknownOptionError(
            f"unknown topology preset {name!r}; valid: {', '.join(sorted(PRESETS))}"
        )


def default_layers(n: int) -> list[int]:
    """Layer sizes of the ``layered`` preset when none are given: two halves (one layer if n=1)."""
    half = max(1, n // 2)
    return [half, n - half] if n > 1 else [1]


def chain_adjacency(n: int) -> np.ndarray:
    """``a0 -> a1 -> ... -> a_{n-1}`` (pool order), bool (n, n)."""
    A = np.zeros((n, n), dtype=bool)
    for i in range(n - 1):
        A[i, i + 1] = True
    return A


def star_adjacency(names: Sequence[str], center: str | int, direction: str) -> np.ndarray:
    """Hub-and-spokes: ``center -> every other agent`` (``direction="out"``) or the reverse.

    Parameters
    ----------
    names : sequence of str
        Agent names in pool order.
    center : str or int
        The hub, by name or position.
    direction : {"out", "in"}

    Returns
    -------
    ndarray of bool, shape (n, n)
    """
    n = len(names)
    if isinstance(center, (int, np.integer)) and not isinstance(center, bool):
        c: int | None = int(center)
    else:
        c = list(names).index(center) if center in names else None
    if c is None or not 0 <= c < n:
        raise DataValidationError(f"unknown star center {center!r}; agents are: {', '.join(names)}")
    if direction not in ("out", "in"):
        raise UnknownOptionError(f"unknown star direction {direction!r}; valid: in, out")
    A = np.zeros((n, n), dtype=bool)
    for j in range(n):
        if j != c:
            if direction == "out":
                A[c, j] = True
            else:
                A[j, c] = True
    return A


def full_adjacency(n: int) -> np.ndarray:
    """The full mesh DAG: ``i -> j`` for every ``i < j`` in pool order, bool (n, n)."""
    return np.triu(np.ones((n, n), dtype=bool), k=1)


def layered_adjacency(
    names: Sequence[str], layers: Sequence[int] | Sequence[Sequence[str]]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Consecutive layers fully connected (every agent of layer k sends to all of layer k+1).

    Parameters
    ----------
    names : sequence of str
        Agent names in pool order.
    layers : sequence of int or sequence of sequence of str
        Layer sizes (taken in pool order) or lists of agent names.

    Returns
    -------
    adjacency : ndarray of bool, shape (n, n)
    active : ndarray of bool, shape (n,), or None
        The agents named in some layer, when named layers leave some agents out; else ``None``.
    """
    n = len(names)
    groups: list[list[int]] = []
    active = None
    if all(isinstance(x, (int, np.integer)) for x in layers):
        if sum(layers) != n or any(x < 1 for x in layers):
            raise DataValidationError(
                f"layer sizes {list(layers)} must be >= 1 and sum to the {n} agents"
            )
        start = 0
        for size in layers:
            groups.append(list(range(start, start + int(size))))
            start += int(size)
    else:
        for lay in layers:
            g = []
            for nm in lay:
                if nm not in names:
                    raise DataValidationError(
                        f"unknown agent {nm!r} in layers; agents are: {', '.join(names)}"
                    )
                g.append(list(names).index(nm))
            groups.append(g)
        flat = [i for g in groups for i in g]
        if len(flat) != len(set(flat)):
            raise DataValidationError("an agent appears in more than one layer")
        if len(flat) != n:
            active = np.isin(np.arange(n), np.array(flat, dtype=np.int64))
    A = np.zeros((n, n), dtype=bool)
    for g1, g2 in itertools.pairwise(groups):
        for i in g1:
            for j in g2:
                A[i, j] = True
    return A, active


def random_adjacency(
    n: int, edge_prob: float, random_state: int | np.random.Generator | None
) -> np.ndarray:
    """A random DAG: a random agent order, then each forward pair kept with ``edge_prob``.

    Parameters
    ----------
    n : int
        Number of agents.
    edge_prob : float
        Keep-probability of each forward pair, in [0, 1].
    random_state : int, Generator or None
        Seed; the same seed gives the same DAG.

    Returns
    -------
    ndarray of bool, shape (n, n)
    """
    if not 0.0 <= edge_prob <= 1.0:
        raise DataValidationError(f"edge_prob must be in [0, 1], got {edge_prob}")
    rng = np.random.default_rng(random_state)
    perm = rng.permutation(n)
    A = np.zeros((n, n), dtype=bool)
    for a in range(n):
        for b in range(a + 1, n):
            if rng.random() < edge_prob:
                A[perm[a], perm[b]] = True
    return A
