"""Multi-agent communication topologies.

A :class:`Topology` is a pool of agents, a spatial adjacency (who sends to whom within one round;
a DAG), a node mask (which agents run), optional edge keep-probabilities, a number of rounds with
optional temporal edges (round ``r - 1`` to round ``r``), and how the final answer is decided (a
decision agent, or a rule such as majority vote).

Pruned agents and their edges stay in the object (so it can be inspected and compared to the full
graph) but every query method (:meth:`Topology.topological_order`, :meth:`Topology.levels`,
:meth:`Topology.edges`, the exports, the executor) only sees the active sub-graph.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dataprune.agents.spec import AgentSpec, as_agent_specs
from dataprune.errors import DataValidationError, UnknownOptionError

__all__ = ["AGGREGATORS", "Topology", "acyclic_from_scores", "find_cycle"]

#: Rule-based aggregators (used when a topology has no decision agent).
AGGREGATORS = ("majority", "sinks", "last")
_FORMAT = "dataprune.topology"
_VERSION = 1


def find_cycle(adjacency: np.ndarray) -> list[int] | None:
    """A directed cycle ``[i0, i1, ..., i0]`` in a boolean adjacency, or ``None`` if acyclic."""
    A = np.asarray(adjacency, dtype=bool)
    n = A.shape[0]
    color = [0] * n  # 0 new, 1 on stack, 2 done
    parent = [-1] * n
    for start in range(n):
        if color[start]:
            continue
        stack = [(start, iter(np.flatnonzero(A[start]).tolist()))]
        color[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                color[node] = 2
                stack.pop()
                continue
            if color[nxt] == 0:
                color[nxt] = 1
                parent[nxt] = node
                stack.append((nxt, iter(np.flatnonzero(A[nxt]).tolist())))
            elif color[nxt] == 1:
                cyc = [nxt]
                cur = node
                while cur != nxt:
                    cyc.append(cur)
                    cur = parent[cur]
                cyc.append(nxt)
                return cyc[::-1]
    return None


def _reaches(A: np.ndarray, src: int, dst: int) -> bool:
    if src == dst:
        return True
    seen = np.zeros(A.shape[0], dtype=bool)
    stack = [src]
    seen[src] = True
    while stack:
        u = stack.pop()
        for v in np.flatnonzero(A[u]):
            if v == dst:
                return True
            if not seen[v]:
                seen[v] = True
                stack.append(int(v))
    return False


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
    S = np.asarray(scores, dtype=np.float64)
    C = np.asarray(candidates, dtype=bool).copy()
    np.fill_diagonal(C, False)
    n = C.shape[0]
    A = np.zeros((n, n), dtype=bool)
    ii, jj = np.nonzero(C)
    order = np.lexsort((jj, ii, -S[ii, jj]))
    dropped: list[tuple[int, int]] = []
    for k in order:
        i, j = int(ii[k]), int(jj[k])
        if _reaches(A, j, i):
            dropped.append((i, j))
        else:
            A[i, j] = True
    return A, dropped


def _as_matrix(x: Any, n: int, what: str, dtype: Any) -> np.ndarray:
    try:
        M = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError):
        raise DataValidationError(f"{what}: expected an {n} x {n} numeric matrix") from None
    if M.shape != (n, n):
        raise DataValidationError(
            f"{what}: expected shape ({n}, {n}) for {n} agents, got {M.shape}"
        )
    return M


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


class Topology:
    """A multi-agent communication graph for one query.

    Parameters
    ----------
    agents : sequence of AgentSpec, str or dict
        The agent pool (order defines matrix indices).
    adjacency : array-like of shape (n_agents, n_agents)
        ``adjacency[i, j]`` true = agent ``i`` sends its output to agent ``j`` within a round.
        Must be acyclic (use :meth:`from_edge_probabilities` to threshold probabilities with
        explicit cycle tie-breaking).
    active : array-like of bool, shape (n_agents,), optional
        True = the agent runs (default: all). ``required`` agents must be active.
    edge_prob : array-like of shape (n_agents, n_agents), optional
        Edge keep-probabilities the topology came from (kept for inspection and export).
    rounds : int, default=1
        Communication rounds.
    temporal : array-like of bool, shape (n_agents, n_agents), optional
        ``temporal[i, j]`` = agent ``j`` in round ``r`` reads agent ``i``'s round ``r - 1``
        output. Default when ``rounds > 1``: the identity (each agent sees its own previous
        answer). May contain cycles (it links consecutive rounds).
    decision : AgentSpec, optional
        A decision agent (not part of the prunable pool) that reads every active agent's final
        output and gives the answer.
    aggregator : {"majority", "sinks", "last"}, default="majority"
        Rule used when there is no decision agent (or it fails): majority vote over all active
        agents' final answers, over the active sinks only, or the last agent in topological order.
    metadata : dict, optional
        Free-form JSON-able information (which pruner, probabilities, dropped cycle edges, ...).
    """

    def __init__(
        self,
        agents: Sequence[AgentSpec | str | Mapping[str, Any]],
        adjacency: Any,
        *,
        active: Any = None,
        edge_prob: Any = None,
        rounds: int = 1,
        temporal: Any = None,
        decision: AgentSpec | str | Mapping[str, Any] | None = None,
        aggregator: str = "majority",
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self._agents = as_agent_specs(agents)
        n = len(self._agents)
        self._index = {a.name: i for i, a in enumerate(self._agents)}
        A = _as_matrix(adjacency, n, "adjacency", np.float64)
        if not np.isfinite(A).all():
            raise DataValidationError("adjacency: entries must be finite")
        A = A != 0
        if A.diagonal().any():
            i = int(np.flatnonzero(A.diagonal())[0])
            raise DataValidationError(
                f"adjacency: self-loop on agent {self._agents[i].name!r}; an agent cannot send to "
                "itself within a round (use temporal edges across rounds)"
            )
        cyc = find_cycle(A)
        if cyc is not None:
            path = " -> ".join(self._agents[i].name for i in cyc)
            raise DataValidationError(
                f"adjacency has a cycle ({path}); a round must be a DAG. Threshold probabilities "
                "with Topology.from_edge_probabilities, which breaks cycles explicitly"
            )
        if active is None:
            act = np.ones(n, dtype=bool)
        else:
            act = np.asarray(active)
            if act.shape != (n,):
                raise DataValidationError(
                    f"active: expected {n} booleans (one per agent), got shape {act.shape}"
                )
            act = act.astype(bool)
        for i, a in enumerate(self._agents):
            if a.required and not act[i]:
                raise DataValidationError(f"agent {a.name!r} is required but marked as pruned")
        P = None
        if edge_prob is not None:
            P = _as_matrix(edge_prob, n, "edge_prob", np.float64)
            if not np.isfinite(P).all() or (P < 0).any() or (P > 1).any():
                raise DataValidationError("edge_prob: entries must be probabilities in [0, 1]")
        if not isinstance(rounds, (int, np.integer)) or isinstance(rounds, bool) or rounds < 1:
            raise DataValidationError(f"rounds must be an int >= 1, got {rounds!r}")
        T = None
        if temporal is not None:
            T = _as_matrix(temporal, n, "temporal", np.float64) != 0
        elif rounds > 1:
            T = np.eye(n, dtype=bool)
        if aggregator not in AGGREGATORS:
            raise UnknownOptionError(
                f"unknown aggregator {aggregator!r}; valid: {', '.join(AGGREGATORS)}"
            )
        if decision is not None:
            decision = as_agent_specs([decision])[0]
            if decision.name in self._index:
                raise DataValidationError(
                    f"decision agent {decision.name!r} must not also be in the agent pool"
                )
        self._A = _readonly(A)
        self._active = _readonly(act)
        self._P = _readonly(P) if P is not None else None
        self._T = _readonly(T) if T is not None else None
        self._rounds = int(rounds)
        self._decision = decision
        self._aggregator = aggregator
        self.metadata: dict[str, Any] = dict(metadata or {})

    # ------------------------------------------------------------------ basic properties
    @property
    def agents(self) -> tuple[AgentSpec, ...]:
        """The whole pool, pruned agents included."""
        return self._agents

    @property
    def names(self) -> list[str]:
        return [a.name for a in self._agents]

    @property
    def n_agents(self) -> int:
        """Pool size (pruned agents included)."""
        return len(self._agents)

    @property
    def adjacency(self) -> np.ndarray:
        """Spatial adjacency of the pool, bool (n_agents, n_agents), pruned agents included."""
        return self._A

    @property
    def active(self) -> np.ndarray:
        """Node mask, bool (n_agents,): True = the agent runs."""
        return self._active

    @property
    def edge_prob(self) -> np.ndarray | None:
        return self._P

    @property
    def rounds(self) -> int:
        return self._rounds

    @property
    def temporal(self) -> np.ndarray | None:
        return self._T

    @property
    def decision(self) -> AgentSpec | None:
        return self._decision

    @property
    def aggregator(self) -> str:
        return self._aggregator

    @property
    def active_names(self) -> list[str]:
        return [a.name for a, on in zip(self._agents, self._active) if on]

    @property
    def pruned_names(self) -> list[str]:
        return [a.name for a, on in zip(self._agents, self._active) if not on]

    @property
    def n_active_agents(self) -> int:
        return int(self._active.sum())

    @property
    def n_edges(self) -> int:
        """Spatial edges between active agents (per round)."""
        return int(self.effective_adjacency().sum())

    def index(self, name: str) -> int:
        """Position of agent ``name`` (raises with the valid names when unknown)."""
        try:
            return self._index[name]
        except (KeyError, TypeError):
            raise DataValidationError(
                f"unknown agent {name!r}; agents are: {', '.join(self.names)}"
            ) from None

    def agent(self, name: str) -> AgentSpec:
        return self._agents[self.index(name)]

    def effective_adjacency(self) -> np.ndarray:
        """Adjacency restricted to active agents, bool (n_agents, n_agents)."""
        return self._A & self._active[:, None] & self._active[None, :]

    def effective_temporal(self) -> np.ndarray:
        """Temporal edges restricted to active agents (zeros when ``rounds == 1``)."""
        if self._T is None or self._rounds == 1:
            return np.zeros_like(self._A)
        return self._T & self._active[:, None] & self._active[None, :]

    def decision_inputs_mask(self) -> np.ndarray:
        """Agents whose final output the decision agent reads: every active agent."""
        return self._active.copy()

    def edges(self, *, include_pruned: bool = False) -> list[tuple[str, str]]:
        """Spatial edges as ``(sender, receiver)`` names, row-major order."""
        A = self._A if include_pruned else self.effective_adjacency()
        return [(self._agents[i].name, self._agents[j].name) for i, j in zip(*np.nonzero(A))]

    def predecessors(self, name: str) -> list[str]:
        j = self.index(name)
        A = self.effective_adjacency()
        return [self._agents[i].name for i in np.flatnonzero(A[:, j])]

    def successors(self, name: str) -> list[str]:
        i = self.index(name)
        A = self.effective_adjacency()
        return [self._agents[j].name for j in np.flatnonzero(A[i])]

    def sinks(self) -> list[str]:
        """Active agents with no active successor."""
        A = self.effective_adjacency()
        return [a.name for i, a in enumerate(self._agents) if self._active[i] and not A[i].any()]

    def topological_order(self) -> list[str]:
        """Active agents in a topological order (Kahn; ties broken by pool position)."""
        return [self._agents[i].name for lvl in self._level_indices() for i in lvl]

    def levels(self) -> list[list[str]]:
        """Active agents grouped into parallel layers (longest-path layering).

        Level 0 holds agents with no active predecessor; an agent's level is one more than its
        deepest predecessor's. Agents of one level can run concurrently.
        """
        return [[self._agents[i].name for i in lvl] for lvl in self._level_indices()]

    def _level_indices(self) -> list[list[int]]:
        A = self.effective_adjacency()
        act = np.flatnonzero(self._active)
        indeg = A.sum(axis=0)
        level = {}
        frontier = [int(i) for i in act if indeg[i] == 0]
        remaining = indeg.copy()
        for i in frontier:
            level[i] = 0
        queue = sorted(frontier)
        while queue:
            u = queue.pop(0)
            for v in np.flatnonzero(A[u]):
                v = int(v)
                level[v] = max(level.get(v, 0), level[u] + 1)
                remaining[v] -= 1
                if remaining[v] == 0:
                    queue.append(v)
            queue.sort(key=lambda k: (level[k], k))
        if len(level) != len(act):  # pragma: no cover - the constructor rejects cycles
            raise DataValidationError("the active sub-graph has a cycle")
        n_levels = 1 + max(level.values()) if level else 0
        return [sorted(i for i, lv in level.items() if lv == k) for k in range(n_levels)]

    # ------------------------------------------------------------------ derived topologies
    def with_active(self, active: Any) -> Topology:
        """A copy with another node mask (array of bool or iterable of active names)."""
        if isinstance(active, np.ndarray) and active.dtype == bool:
            act = active
        else:
            names = list(active)
            act = np.zeros(self.n_agents, dtype=bool)
            for nm in names:
                act[self.index(nm)] = True
        return self._replace(active=act)

    def prune(self, agents: Iterable[str] = (), edges: Iterable[tuple[str, str]] = ()) -> Topology:
        """A copy with the named agents and edges removed."""
        act = self._active.copy()
        for nm in agents:
            act[self.index(nm)] = False
        A = self._A.copy()
        for s, d in edges:
            i, j = self.index(s), self.index(d)
            if not A[i, j]:
                raise DataValidationError(f"edge {s!r} -> {d!r} is not in the topology")
            A[i, j] = False
        return self._replace(adjacency=A, active=act)

    def _replace(self, **kw: Any) -> Topology:
        args: dict[str, Any] = {
            "agents": self._agents,
            "adjacency": self._A,
            "active": self._active,
            "edge_prob": self._P,
            "rounds": self._rounds,
            "temporal": self._T if self._rounds > 1 else None,
            "decision": self._decision,
            "aggregator": self._aggregator,
            "metadata": dict(self.metadata),
        }
        args.update(kw)
        agents = args.pop("agents")
        adjacency = args.pop("adjacency")
        return Topology(agents, adjacency, **args)

    def unrolled(self) -> tuple[list[tuple[str, str, int]], list[tuple[str, str]]]:
        """The active graph unrolled over rounds (a DAG).

        Returns
        -------
        nodes : list of (node_id, agent_name, round)
            ``node_id`` is the agent name when ``rounds == 1``, else ``f"{name}_r{round}"``
            (rounds counted from 1); listed round by round in topological order.
        edges : list of (node_id, node_id)
            Spatial edges within each round and temporal edges between consecutive rounds.
        """

        def nid(name: str, r: int) -> str:
            return name if self._rounds == 1 else f"{name}_r{r}"

        order = self.topological_order()
        nodes = [(nid(nm, r), nm, r) for r in range(1, self._rounds + 1) for nm in order]
        spatial = self.edges()
        T = self.effective_temporal()
        temporal = [(self._agents[i].name, self._agents[j].name) for i, j in zip(*np.nonzero(T))]
        edges: list[tuple[str, str]] = []
        for r in range(1, self._rounds + 1):
            if r > 1:
                edges += [(nid(s, r - 1), nid(d, r)) for s, d in temporal]
            edges += [(nid(s, r), nid(d, r)) for s, d in spatial]
        return nodes, edges

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_adjacency(cls, agents: Sequence[Any], adjacency: Any, **kwargs: Any) -> Topology:
        """From a 0/1 (or boolean) adjacency matrix; see the class parameters."""
        return cls(agents, adjacency, **kwargs)

    @classmethod
    def from_edges(
        cls,
        agents: Sequence[Any],
        edges: Iterable[tuple[str | int, str | int]],
        **kwargs: Any,
    ) -> Topology:
        """From ``(sender, receiver)`` pairs of agent names or positions."""
        specs = as_agent_specs(agents)
        index = {a.name: i for i, a in enumerate(specs)}
        n = len(specs)
        A = np.zeros((n, n), dtype=bool)
        for k, e in enumerate(edges):
            if not isinstance(e, (tuple, list)) or len(e) != 2:
                raise DataValidationError(
                    f"edge {k}: expected a (sender, receiver) pair, got {e!r}"
                )
            ij = []
            for end in e:
                if isinstance(end, (int, np.integer)) and not isinstance(end, bool):
                    if not 0 <= end < n:
                        raise DataValidationError(
                            f"edge {k}: agent position {end} is out of range for {n} agents"
                        )
                    ij.append(int(end))
                elif isinstance(end, str) and end in index:
                    ij.append(index[end])
                else:
                    raise DataValidationError(
                        f"edge {k}: unknown agent {end!r}; agents are: {', '.join(index)}"
                    )
            A[ij[0], ij[1]] = True
        return cls(specs, A, **kwargs)

    @classmethod
    def from_networkx(cls, graph: Any, **kwargs: Any) -> Topology:
        """From a ``networkx.DiGraph`` whose nodes are agent names.

        Node attributes ``role``, ``profile``, ``required`` fill the :class:`AgentSpec`;
        ``active=False`` marks a pruned agent; edge attribute ``prob`` fills ``edge_prob``.
        Node order is the graph's node order.
        """
        if not hasattr(graph, "is_directed") or not graph.is_directed():
            raise DataValidationError("expected a networkx.DiGraph (directed)")
        specs = []
        active = []
        for node, data in graph.nodes(data=True):
            specs.append(
                AgentSpec(
                    str(node),
                    role=data.get("role", ""),
                    profile=data.get("profile", ""),
                    required=bool(data.get("required", False)),
                )
            )
            active.append(bool(data.get("active", True)))
        index = {s.name: i for i, s in enumerate(specs)}
        n = len(specs)
        A = np.zeros((n, n), dtype=bool)
        P = np.zeros((n, n))
        has_p = False
        for u, v, data in graph.edges(data=True):
            A[index[str(u)], index[str(v)]] = True
            if "prob" in data:
                has_p = True
                P[index[str(u)], index[str(v)]] = float(data["prob"])
        kwargs.setdefault("active", np.array(active, dtype=bool))
        if has_p:
            kwargs.setdefault("edge_prob", P)
        return cls(specs, A, **kwargs)

    @classmethod
    def from_edge_probabilities(
        cls,
        agents: Sequence[Any],
        edge_prob: Any,
        *,
        threshold: float = 0.5,
        active: Any = None,
        candidates: Any = None,
        **kwargs: Any,
    ) -> Topology:
        """Threshold edge keep-probabilities into a DAG (explicit cycle tie-breaking).

        Edges with ``prob >= threshold`` (and allowed by ``candidates``) are added greedily in
        descending probability, ties in row-major order; an edge that would close a cycle is
        dropped and listed in ``metadata["dropped_cycle_edges"]``.
        """
        specs = as_agent_specs(agents)
        n = len(specs)
        P = _as_matrix(edge_prob, n, "edge_prob", np.float64)
        C = threshold <= P
        if candidates is not None:
            C &= _as_matrix(candidates, n, "candidates", np.float64) != 0
        if active is not None:
            act = np.asarray(active, dtype=bool)
            if act.shape != (n,):
                raise DataValidationError(f"active: expected {n} booleans, got shape {act.shape}")
            C &= act[:, None] & act[None, :]
        A, dropped = acyclic_from_scores(P, C)
        meta = dict(kwargs.pop("metadata", None) or {})
        if dropped:
            meta["dropped_cycle_edges"] = [[specs[i].name, specs[j].name] for i, j in dropped]
        return cls(specs, A, active=active, edge_prob=P, metadata=meta, **kwargs)

    @classmethod
    def from_agp_record(
        cls,
        record: Mapping[str, Any],
        agents: Sequence[Any] | None = None,
        *,
        threshold: float = 0.5,
        **kwargs: Any,
    ) -> Topology:
        """From an AGP Stage I record (``mask`` = 1 means PRUNED; ``edge_weight`` = probabilities).

        ``agents`` defaults to ``agent_0 ... agent_{N-1}``. The task text goes to
        ``metadata["task"]``.
        """
        from dataprune.agents.records import validate_agp_record

        task, E, m = validate_agp_record(record, n_agents=None if agents is None else len(agents))
        if agents is None:
            agents = [f"agent_{i}" for i in range(len(m))]
        meta = dict(kwargs.pop("metadata", None) or {})
        meta["task"] = task
        return cls.from_edge_probabilities(
            agents, E, threshold=threshold, active=m == 0, metadata=meta, **kwargs
        )

    # presets ---------------------------------------------------------------------------
    @classmethod
    def chain(cls, agents: Sequence[Any], **kwargs: Any) -> Topology:
        """``a0 -> a1 -> ... -> a_{n-1}`` (pool order)."""
        n = len(agents)
        A = np.zeros((n, n), dtype=bool)
        for i in range(n - 1):
            A[i, i + 1] = True
        kwargs.setdefault("aggregator", "last")
        return cls(agents, A, **kwargs)

    @classmethod
    def star(
        cls, agents: Sequence[Any], *, center: str | int = 0, direction: str = "out", **kwargs: Any
    ) -> Topology:
        """Hub-and-spokes: ``center -> every other agent`` (``direction="out"``) or the reverse."""
        specs = as_agent_specs(agents)
        n = len(specs)
        names = [s.name for s in specs]
        if isinstance(center, (int, np.integer)) and not isinstance(center, bool):
            c: int | None = int(center)
        else:
            c = names.index(center) if center in names else None
        if c is None or not 0 <= c < n:
            raise DataValidationError(
                f"unknown star center {center!r}; agents are: {', '.join(s.name for s in specs)}"
            )
        if direction not in ("out", "in"):
            raise UnknownOptionError(f"unknown star direction {direction!r}; valid: in, out")
        A = np.zeros((n, n), dtype=bool)
        for j in range(n):
            if j != c:
                if direction == "out":
                    A[c, j] = True
                else:
                    A[j, c] = True
        return cls(specs, A, **kwargs)

    @classmethod
    def full(cls, agents: Sequence[Any], **kwargs: Any) -> Topology:
        """The full mesh DAG: ``i -> j`` for every ``i < j`` in pool order."""
        n = len(agents)
        return cls(agents, np.triu(np.ones((n, n), dtype=bool), k=1), **kwargs)

    @classmethod
    def layered(
        cls, agents: Sequence[Any], layers: Sequence[int] | Sequence[Sequence[str]], **kwargs: Any
    ) -> Topology:
        """Consecutive layers fully connected (every agent of layer k sends to all of layer k+1).

        ``layers`` is a list of layer sizes (taken in pool order) or of lists of agent names.
        """
        specs = as_agent_specs(agents)
        names = [s.name for s in specs]
        n = len(specs)
        groups: list[list[int]] = []
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
                    g.append(names.index(nm))
                groups.append(g)
            flat = [i for g in groups for i in g]
            if len(flat) != len(set(flat)):
                raise DataValidationError("an agent appears in more than one layer")
            if len(flat) != n:
                kwargs.setdefault("active", np.isin(np.arange(n), np.array(flat, dtype=np.int64)))
        A = np.zeros((n, n), dtype=bool)
        for g1, g2 in itertools.pairwise(groups):
            for i in g1:
                for j in g2:
                    A[i, j] = True
        return cls(specs, A, **kwargs)

    @classmethod
    def random(
        cls,
        agents: Sequence[Any],
        *,
        edge_prob: float = 0.5,
        random_state: int | np.random.Generator | None = None,
        **kwargs: Any,
    ) -> Topology:
        """A random DAG: a random agent order, then each forward pair kept with ``edge_prob``."""
        if not 0.0 <= edge_prob <= 1.0:
            raise DataValidationError(f"edge_prob must be in [0, 1], got {edge_prob}")
        rng = np.random.default_rng(random_state)
        n = len(agents)
        perm = rng.permutation(n)
        A = np.zeros((n, n), dtype=bool)
        for a in range(n):
            for b in range(a + 1, n):
                if rng.random() < edge_prob:
                    A[perm[a], perm[b]] = True
        return cls(agents, A, **kwargs)

    @classmethod
    def preset(cls, name: str, agents: Sequence[Any], **kwargs: Any) -> Topology:
        """One of ``chain``, ``star``, ``full``, ``layered``, ``random`` by name."""
        makers = {
            "chain": cls.chain,
            "star": cls.star,
            "full": cls.full,
            "layered": cls.layered,
            "random": cls.random,
        }
        if name not in makers:
            raise UnknownOptionError(
                f"unknown topology preset {name!r}; valid: {', '.join(sorted(makers))}"
            )
        if name == "layered" and "layers" not in kwargs:
            n = len(agents)
            half = max(1, n // 2)
            kwargs["layers"] = [half, n - half] if n > 1 else [1]
        return makers[name](agents, **kwargs)

    # ------------------------------------------------------------------ exports
    def to_numpy(self, kind: str = "adjacency") -> np.ndarray:
        """``"adjacency"`` (active edges, int8), ``"mask"`` (1 = active, int8), ``"edge_prob"``
        (float64; the thresholded adjacency when no probabilities are stored) or
        ``"agp_mask"`` (1 = PRUNED, AGP's convention)."""
        if kind == "adjacency":
            return self.effective_adjacency().astype(np.int8)
        if kind == "mask":
            return self._active.astype(np.int8)
        if kind == "agp_mask":
            return (~self._active).astype(np.int8)
        if kind == "edge_prob":
            return (
                np.array(self._P, dtype=np.float64)
                if self._P is not None
                else self._A.astype(np.float64)
            )
        raise UnknownOptionError(
            f"unknown array kind {kind!r}; valid: adjacency, mask, agp_mask, edge_prob"
        )

    def to_networkx(self, *, include_pruned: bool = False) -> Any:
        """A ``networkx.DiGraph``: node attrs role/profile/required/active/level, edge attr prob."""
        import networkx as nx

        G = nx.DiGraph()
        level_of = {nm: k for k, lvl in enumerate(self.levels()) for nm in lvl}
        for i, a in enumerate(self._agents):
            if not include_pruned and not self._active[i]:
                continue
            G.add_node(
                a.name,
                role=a.role,
                profile=a.profile,
                required=a.required,
                active=bool(self._active[i]),
                level=level_of.get(a.name, -1),
            )
        A = self._A if include_pruned else self.effective_adjacency()
        for i, j in zip(*np.nonzero(A)):
            attrs = {} if self._P is None else {"prob": float(self._P[i, j])}
            G.add_edge(self._agents[i].name, self._agents[j].name, **attrs)
        return G

    def to_agp_record(self, task: str) -> dict[str, Any]:
        """An AGP-format record: ``edge_weight`` = probabilities (or the 0/1 adjacency), ``mask`` =
        1 for pruned agents."""
        E = self._P if self._P is not None else self._A.astype(np.float64)
        return {
            "task": task,
            "edge_weight": np.asarray(E, dtype=np.float64).tolist(),
            "mask": [int(not a) for a in self._active],
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (round-trips through :meth:`from_dict`)."""
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "agents": [a.to_dict() for a in self._agents],
            "edges": [list(e) for e in self.edges(include_pruned=True)],
            "pruned": self.pruned_names,
            "edge_prob": None if self._P is None else self._P.tolist(),
            "rounds": self._rounds,
            "temporal": (
                None
                if self._T is None or self._rounds == 1
                else [
                    [self._agents[i].name, self._agents[j].name]
                    for i, j in zip(*np.nonzero(self._T))
                ]
            ),
            "decision": None if self._decision is None else self._decision.to_dict(),
            "aggregator": self._aggregator,
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str | None = None) -> Topology:
        """Inverse of :meth:`to_dict` (clear errors for unknown agents and bad shapes)."""
        if not isinstance(d, Mapping):
            raise DataValidationError(
                f"expected a topology object, got {type(d).__name__}", source=source
            )
        if d.get("format", _FORMAT) != _FORMAT:
            raise DataValidationError(
                f"not a dataprune topology (format {d.get('format')!r})", source=source
            )
        for key in ("agents", "edges"):
            if key not in d:
                raise DataValidationError("missing field", source=source, field=key)
        specs = as_agent_specs(d["agents"])
        names = [s.name for s in specs]
        n = len(specs)
        index = {nm: i for i, nm in enumerate(names)}

        def pairs(key: str) -> np.ndarray:
            M = np.zeros((n, n), dtype=bool)
            for k, e in enumerate(d.get(key) or []):
                if not isinstance(e, (list, tuple)) or len(e) != 2:
                    raise DataValidationError(
                        f"entry {k}: expected [sender, receiver]", source=source, field=key
                    )
                for end in e:
                    if end not in index:
                        raise DataValidationError(
                            f"entry {k}: unknown agent {end!r}; agents are: {', '.join(names)}",
                            source=source,
                            field=key,
                        )
                M[index[e[0]], index[e[1]]] = True
            return M

        A = pairs("edges")
        act = np.ones(n, dtype=bool)
        for nm in d.get("pruned") or []:
            if nm not in index:
                raise DataValidationError(
                    f"unknown agent {nm!r}; agents are: {', '.join(names)}",
                    source=source,
                    field="pruned",
                )
            act[index[nm]] = False
        rounds = d.get("rounds", 1)
        temporal = pairs("temporal") if d.get("temporal") is not None else None
        return cls(
            specs,
            A,
            active=act,
            edge_prob=d.get("edge_prob"),
            rounds=rounds,
            temporal=temporal,
            decision=d.get("decision"),
            aggregator=d.get("aggregator", "majority"),
            metadata=d.get("metadata") or {},
        )

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str, *, source: str | None = None) -> Topology:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataValidationError(
                f"malformed JSON ({exc.msg}) at line {exc.lineno}", source=source
            ) from None
        return cls.from_dict(d, source=source)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the JSON description atomically."""
        from dataprune.atomic import atomic_write

        with atomic_write(path) as fh:
            fh.write(self.to_json())
            fh.write("\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Topology:
        p = Path(path)
        if not p.is_file():
            raise DataValidationError("file not found", source=str(p))
        return cls.from_json(p.read_text(encoding="utf-8"), source=str(p))

    def to_mermaid(self, *, include_pruned: bool = True, show_prob: bool = True) -> str:
        """A mermaid ``flowchart`` (pruned agents dashed and grey, edge labels = probabilities)."""

        def mid(name: str) -> str:
            return "a_" + re.sub(r"[^A-Za-z0-9_]", "_", name)

        def label(a: AgentSpec) -> str:
            text = a.name if not a.role else f"{a.name}<br/>{a.role}"
            return text.replace('"', "'")

        lines = ["flowchart TD"]
        for i, a in enumerate(self._agents):
            if self._active[i] or include_pruned:
                lines.append(f'    {mid(a.name)}["{label(a)}"]')
        for i, j in zip(*np.nonzero(self.effective_adjacency())):
            s, d = self._agents[i].name, self._agents[j].name
            if show_prob and self._P is not None:
                lines.append(f"    {mid(s)} -->|{self._P[i, j]:.2f}| {mid(d)}")
            else:
                lines.append(f"    {mid(s)} --> {mid(d)}")
        if self._decision is not None:
            dn = self._decision.name
            lines.append(f'    {mid(dn)}{{{{"{label(self._decision)}"}}}}')
            for nm in self.active_names:
                lines.append(f"    {mid(nm)} -.-> {mid(dn)}")
        pruned = [mid(n) for n in self.pruned_names]
        if include_pruned and pruned:
            lines.append("    classDef pruned stroke-dasharray: 5 5,fill:#eee,color:#999")
            lines.append(f"    class {','.join(pruned)} pruned")
        return "\n".join(lines) + "\n"

    def describe(self) -> str:
        """A short human-readable summary."""
        lines = [
            f"{self.n_active_agents}/{self.n_agents} agents active, {self.n_edges} edges, "
            f"{self._rounds} round(s), decision: "
            + (self._decision.name if self._decision else f"{self._aggregator} (rule)")
        ]
        for k, lvl in enumerate(self.levels()):
            lines.append(f"  level {k}: {', '.join(lvl)}")
        if self.pruned_names:
            lines.append(f"  pruned: {', '.join(self.pruned_names)}")
        for s, d in self.edges():
            p = ""
            if self._P is not None:
                p = f"  (p={self._P[self.index(s), self.index(d)]:.2f})"
            lines.append(f"  {s} -> {d}{p}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ framework exports
    def to_langgraph(self, agent_fns: Any, **kwargs: Any) -> Any:
        """A LangGraph ``StateGraph``; see :func:`dataprune.agents.export.to_langgraph`."""
        from dataprune.agents.export import to_langgraph

        return to_langgraph(self, agent_fns, **kwargs)

    def to_autogen_transitions(
        self, agents: Mapping[str, Any] | None = None
    ) -> dict[Any, list[Any]]:
        """Allowed speaker transitions; see :func:`dataprune.agents.export.to_autogen_transitions`."""
        from dataprune.agents.export import to_autogen_transitions

        return to_autogen_transitions(self, agents)

    def to_autogen_graphflow(self, participants: Any, **kwargs: Any) -> Any:
        """An AutoGen ``GraphFlow``; see :func:`dataprune.agents.export.to_autogen_graphflow`."""
        from dataprune.agents.export import to_autogen_graphflow

        return to_autogen_graphflow(self, participants, **kwargs)

    def to_crewai_tasks(self, **kwargs: Any) -> list[dict[str, Any]]:
        """CrewAI-shaped agent/task definitions; see :func:`dataprune.agents.export.to_crewai_tasks`."""
        from dataprune.agents.export import to_crewai_tasks

        return to_crewai_tasks(self, **kwargs)

    # ------------------------------------------------------------------ dunder
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Topology):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    # Equality is by content and ``metadata`` is mutable: not hashable (use :meth:`key`).
    __hash__ = None  # type: ignore[assignment]

    def key(self) -> tuple[Any, ...]:
        """A hashable key of the active structure (active mask + active edges + rounds)."""
        return (
            tuple(self._active.tolist()),
            tuple(map(tuple, np.argwhere(self.effective_adjacency()).tolist())),
            self._rounds,
        )

    def __repr__(self) -> str:
        return (
            f"Topology(n_agents={self.n_agents}, active={self.n_active_agents}, "
            f"edges={self.n_edges}, rounds={self._rounds})"
        )
