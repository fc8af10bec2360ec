"""The simulator's propagation rule: exact accuracy by dynamic programming, one sampled run.

Nodes are agent-rounds in processing order; ``preds[u]`` lists the nodes whose final answers
node ``u`` reads and ``voters`` the nodes the decision counts (see
:mod:`dataprune.agents.simulator` for the rule itself). Correctness is binary per node, so the
exact accuracy sums over the ``2 ** n_nodes`` joint correctness states, a node's state being the
bit of its position.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, NamedTuple

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["NodeGraph", "exact_accuracy", "p_correct", "sample_correct"]

_POPCOUNT = np.array([bin(i).count("1") for i in range(1 << 16)], dtype=np.int16)


class NodeGraph(NamedTuple):
    """An unrolled topology as the rule sees it.

    Attributes
    ----------
    agent_of : list of int
        Pool index of every node, in processing order.
    preds : list of list of int
        Predecessor nodes of every node.
    voters : list of int
        Nodes the decision counts (a tie goes to the answer of the first of them).
    """

    agent_of: list[int]
    preds: list[list[int]]
    voters: list[int]


def _stable_uniform(*parts: Any) -> float:
    """A uniform draw in ``[0, 1)`` that is a pure function of ``parts`` (hashed)."""
    h = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return (int.from_bytes(h, "little") >> 11) / float(1 << 53)


def _popcount(x: np.ndarray) -> np.ndarray:
    """Number of set bits of every (non-negative) integer of ``x``, as int64."""
    x = np.asarray(x, dtype=np.int64)
    out = _POPCOUNT[x & 0xFFFF].astype(np.int64)
    rest = x >> 16
    while np.any(rest):
        out += _POPCOUNT[rest & 0xFFFF]
        rest >>= 16
    return out


def p_correct(c: Any, n_correct: Any, n_wrong: Any, *, alpha: float, beta: float) -> Any:
    """Probability that a node ends correct given what it reads.

    Parameters
    ----------
    c : float
        The agent's competence on the query type (its own answer is correct w.p. ``c``).
    n_correct, n_wrong : int or ndarray of int
        Correct and wrong answers among its predecessors.
    alpha, beta : float
        Each correct message convinces a wrong agent w.p. ``alpha``; each wrong message
        corrupts a correct agent w.p. ``beta``.

    Returns
    -------
    float or ndarray
        Broadcast over ``n_correct`` and ``n_wrong``.
    """
    return c * (1 - beta) ** n_wrong + (1 - c) * (1 - (1 - alpha) ** n_correct)


def exact_accuracy(graph: NodeGraph, competence: np.ndarray, *, alpha: float, beta: float) -> float:
    """Exact probability that the decision is correct.

    Parameters
    ----------
    graph : NodeGraph
    competence : ndarray of shape (n_agents,)
        Competence of every pool agent on the query type.
    alpha, beta : float
        Propagation rule (:func:`p_correct`).

    Returns
    -------
    float
    """
    agent_of, preds, voters = graph
    m = len(agent_of)
    p = np.zeros(1 << m)
    p[0] = 1.0
    for u in range(m):
        states = np.arange(1 << u, dtype=np.int64)
        pm = 0
        for v in preds[u]:
            pm |= 1 << v
        nc = _popcount(states & pm)
        nw = len(preds[u]) - nc
        pc = p_correct(competence[agent_of[u]], nc, nw, alpha=alpha, beta=beta)
        cur = p[: 1 << u].copy()
        p[: 1 << u] = cur * (1 - pc)
        p[1 << u : 1 << (u + 1)] = cur * pc
    states = np.arange(1 << m, dtype=np.int64)
    vm = 0
    for v in voters:
        vm |= 1 << v
    cnt = _popcount(states & vm)
    nv = len(voters)
    first = min(voters)
    win = (2 * cnt > nv) | ((2 * cnt == nv) & (((states >> first) & 1) == 1))
    return float(p[win].sum())


def sample_correct(
    graph: NodeGraph, competence: np.ndarray, rng: np.random.Generator, *, alpha: float, beta: float
) -> bool:
    """One Monte Carlo run of the propagation rule; True when the decision is correct.

    Parameters are those of :func:`exact_accuracy`; ``rng`` gives two draws per node (its own
    answer, then the effect of what it reads).

    Returns
    -------
    bool
    """
    agent_of, preds, voters = graph
    correct = np.zeros(len(agent_of), dtype=bool)
    for u, a in enumerate(agent_of):
        own = rng.random() < competence[a]
        nc = int(sum(correct[v] for v in preds[u]))
        nw = len(preds[u]) - nc
        if own:
            correct[u] = rng.random() < (1 - beta) ** nw
        else:
            correct[u] = rng.random() < 1 - (1 - alpha) ** nc
    cnt = int(correct[voters].sum())
    if 2 * cnt != len(voters):
        return 2 * cnt > len(voters)
    return bool(correct[min(voters)])
