"""The :class:`Topology` class: a multi-agent communication graph for one query.

Pruned agents and their edges stay in the object (so it can be inspected and compared to the full
graph) but every query method (:meth:`Topology.topological_order`, :meth:`Topology.levels`,
:meth:`Topology.edges`, the exports, the executor) only sees the active sub-graph.

The methods call the functions of the sibling modules: :mod:`~dataprune.agents.topology.checks`
(argument checks), :mod:`~dataprune.agents.topology.graph` (graph algorithms),
:mod:`~dataprune.agents.topology.presets`, :mod:`~dataprune.agents.topology.io` (serialisation)
and :mod:`~dataprune.agents.topology.render` (mermaid, text, unrolling).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dataprune.agents.spec import AgentSpec, as_agent_specs
from dataprune.agents.topology import io as _io
from dataprune.agents.topology import presets as _presets
from dataprune.agents.topology import render as _render
from dataprune.agents.topology.checks import (
    AGGREGATORS,
    as_matrix,
    check_active,
    check_adjacency,
    check_aggregator,
    check_decision,
    check_edge_prob,
    check_rounds,
    check_temporal,
    edge_candidates,
    readonly,
)
from dataprune.agents.topology.graph import acyclic_from_scores, level_indices
from dataprune.errors import DataValidationError

__all__ = ["AGGREGATORS", "Topology"]

logger = logging.getLogger(__name__)


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
        A = check_adjacency(adjacency, [a.name for a in self._agents])
        act = check_active(active, self._agents)
        P = check_edge_prob(edge_prob, n)
        rounds = check_rounds(rounds)
        T = check_temporal(temporal, n, rounds)
        check_aggregator(aggregator)
        decision = check_decision(decision, self._index)
        self._A = readonly(A)
        self._active = readonly(act)
        self._P = readonly(P) if P is not None else None
        self._T = readonly(T) if T is not None else None
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
        """Active agents in a topological order (layer by layer; ties broken by pool position)."""
        return [self._agents[i].name for lvl in self._level_indices() for i in lvl]

    def levels(self) -> list[list[str]]:
        """Active agents grouped into parallel layers (longest-path layering).

        Level 0 holds agents with no active predecessor; an agent's level is one more than its
        deepest predecessor's. Agents of one level can run concurrently.
        """
        return [[self._agents[i].name for i in lvl] for lvl in self._level_indices()]

    def _level_indices(self) -> list[list[int]]:
        return level_indices(self.effective_adjacency(), self._active)

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

        See :func:`~dataprune.agents.topology.render.unrolled` for the node and edge lists.
        """
        return _render.unrolled(self)

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
        return cls(specs, _io.adjacency_from_edges([a.name for a in specs], edges), **kwargs)

    @classmethod
    def from_networkx(cls, graph: Any, **kwargs: Any) -> Topology:
        """From a ``networkx.DiGraph`` whose nodes are agent names.

        See :func:`~dataprune.agents.topology.io.from_networkx`.
        """
        return _io.from_networkx(graph, cls=cls, **kwargs)

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
        P = as_matrix(edge_prob, len(specs), "edge_prob", np.float64)
        A, dropped = acyclic_from_scores(P, edge_candidates(P, threshold, candidates, active))
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

        See :func:`~dataprune.agents.topology.io.from_agp_record`.
        """
        return _io.from_agp_record(record, agents, threshold=threshold, cls=cls, **kwargs)

    # presets ---------------------------------------------------------------------------
    @classmethod
    def chain(cls, agents: Sequence[Any], **kwargs: Any) -> Topology:
        """``a0 -> a1 -> ... -> a_{n-1}`` (pool order); the default aggregator is ``"last"``."""
        kwargs.setdefault("aggregator", "last")
        return cls(agents, _presets.chain_adjacency(len(agents)), **kwargs)

    @classmethod
    def star(
        cls, agents: Sequence[Any], *, center: str | int = 0, direction: str = "out", **kwargs: Any
    ) -> Topology:
        """Hub-and-spokes: ``center -> every other agent`` (``direction="out"``) or the reverse."""
        specs = as_agent_specs(agents)
        A = _presets.star_adjacency([s.name for s in specs], center, direction)
        return cls(specs, A, **kwargs)

    @classmethod
    def full(cls, agents: Sequence[Any], **kwargs: Any) -> Topology:
        """The full mesh DAG: ``i -> j`` for every ``i < j`` in pool order."""
        return cls(agents, _presets.full_adjacency(len(agents)), **kwargs)

    @classmethod
    def layered(
        cls, agents: Sequence[Any], layers: Sequence[int] | Sequence[Sequence[str]], **kwargs: Any
    ) -> Topology:
        """Consecutive layers fully connected (every agent of layer k sends to all of layer k+1).

        ``layers`` is a list of layer sizes (taken in pool order) or of lists of agent names;
        agents named in no layer are pruned.
        """
        specs = as_agent_specs(agents)
        A, active = _presets.layered_adjacency([s.name for s in specs], layers)
        if active is not None:
            kwargs.setdefault("active", active)
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
        return cls(
            agents, _presets.random_adjacency(len(agents), edge_prob, random_state), **kwargs
        )

    @classmethod
    def preset(cls, name: str, agents: Sequence[Any], **kwargs: Any) -> Topology:
        """One of ``chain``, ``star``, ``full``, ``layered``, ``random`` by name."""
        _presets.check_preset(name)
        if name == "layered" and "layers" not in kwargs:
            kwargs["layers"] = _presets.default_layers(len(agents))
        return getattr(cls, name)(agents, **kwargs)

    # ------------------------------------------------------------------ exports
    def to_numpy(self, kind: str = "adjacency") -> np.ndarray:
        """``"adjacency"`` (active edges, int8), ``"mask"`` (1 = active, int8), ``"edge_prob"``
        (float64; the thresholded adjacency when no probabilities are stored) or
        ``"agp_mask"`` (1 = PRUNED, AGP's convention)."""
        return _io.to_numpy(self, kind)

    def to_networkx(self, *, include_pruned: bool = False) -> Any:
        """A ``networkx.DiGraph``: node attrs role/profile/required/active/level, edge attr prob."""
        return _io.to_networkx(self, include_pruned=include_pruned)

    def to_agp_record(self, task: str) -> dict[str, Any]:
        """An AGP-format record: ``edge_weight`` = probabilities (or the 0/1 adjacency), ``mask`` =
        1 for pruned agents."""
        return _io.to_agp_record(self, task)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (round-trips through :meth:`from_dict`)."""
        return _io.to_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str | None = None) -> Topology:
        """Inverse of :meth:`to_dict` (clear errors for unknown agents and bad shapes)."""
        return _io.from_dict(d, source=source, cls=cls)

    def to_json(self, *, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON text."""
        return _io.to_json(self, indent=indent)

    @classmethod
    def from_json(cls, text: str, *, source: str | None = None) -> Topology:
        """Parse :meth:`to_json` output."""
        return _io.from_json(text, source=source, cls=cls)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the JSON description atomically."""
        return _io.save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Topology:
        """Read a topology written by :meth:`save`."""
        return _io.load(path, cls=cls)

    def to_mermaid(self, *, include_pruned: bool = True, show_prob: bool = True) -> str:
        """A mermaid ``flowchart`` (pruned agents dashed and grey, edge labels = probabilities)."""
        return _render.to_mermaid(self, include_pruned=include_pruned, show_prob=show_prob)

    def describe(self) -> str:
        """A short human-readable summary."""
        return _render.describe(self)

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
