"""Serialisation of a :class:`~dataprune.agents.topology.core.Topology`.

JSON (``to_dict`` / ``from_dict``, ``to_json`` / ``from_json``, atomic ``save`` / ``load``), AGP
records, ``networkx`` graphs and ``(sender, receiver)`` edge lists. The ``Topology`` methods of the
same names call these functions; the readers take the class to build as ``cls`` (default
:class:`Topology`) so subclasses round-trip as themselves.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dataprune.agents.spec import AgentSpec, as_agent_specs
from dataprune.errors import DataValidationError, UnknownOptionError

if TYPE_CHECKING:
    from dataprune.agents.topology.core import Topology

__all__ = [
    "FORMAT",
    "VERSION",
    "adjacency_from_edges",
    "from_agp_record",
    "from_dict",
    "from_json",
    "from_networkx",
    "load",
    "save",
    "to_agp_record",
    "to_dict",
    "to_json",
    "to_networkx",
    "to_numpy",
]

logger = logging.getLogger(__name__)

#: ``format`` field of a topology JSON document.
FORMAT = "dataprune.topology"
#: ``version`` field of a topology JSON document.
VERSION = 1


def _topology_class(cls: type[Topology] | None) -> type[Topology]:
    if cls is None:
        from dataprune.agents.topology.core import Topology

        return Topology
    return cls


def to_dict(top: Topology) -> dict[str, Any]:
    """JSON-able description of ``top`` (round-trips through :func:`from_dict`).

    Parameters
    ----------
    top : Topology

    Returns
    -------
    dict
        ``format``, ``version``, ``agents``, ``edges`` (pruned agents' included), ``pruned``,
        ``edge_prob``, ``rounds``, ``temporal`` (``None`` for one round), ``decision``,
        ``aggregator`` and ``metadata``.
    """
    names = top.names
    T = top.temporal
    return {
        "format": FORMAT,
        "version": VERSION,
        "agents": [a.to_dict() for a in top.agents],
        "edges": [list(e) for e in top.edges(include_pruned=True)],
        "pruned": top.pruned_names,
        "edge_prob": None if top.edge_prob is None else top.edge_prob.tolist(),
        "rounds": top.rounds,
        "temporal": (
            None
            if T is None or top.rounds == 1
            else [[names[i], names[j]] for i, j in zip(*np.nonzero(T))]
        ),
        "decision": None if top.decision is None else top.decision.to_dict(),
        "aggregator": top.aggregator,
        "metadata": top.metadata,
    }


def from_dict(
    d: Mapping[str, Any], *, source: str | None = None, cls: type[Topology] | None = None
) -> Topology:
    """Inverse of :func:`to_dict` (clear errors for unknown agents and bad shapes).

    Parameters
    ----------
    d : mapping
        A topology description.
    source : str, optional
        Where ``d`` came from, named in errors.
    cls : type, optional
        The class to build (default :class:`Topology`).

    Returns
    -------
    Topology
    """
    if not isinstance(d, Mapping):
        raise DataValidationError(
            f"expected a topology object, got {type(d).__name__}", source=source
        )
    if d.get("format", FORMAT) != FORMAT:
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
    temporal = pairs("temporal") if d.get("temporal") is not None else None
    return _topology_class(cls)(
        specs,
        A,
        active=act,
        edge_prob=d.get("edge_prob"),
        rounds=d.get("rounds", 1),
        temporal=temporal,
        decision=d.get("decision"),
        aggregator=d.get("aggregator", "majority"),
        metadata=d.get("metadata") or {},
    )


def to_json(top: Topology, *, indent: int | None = 2) -> str:
    """:func:`to_dict` as JSON text (non-ASCII kept as is)."""
    return json.dumps(to_dict(top), indent=indent, ensure_ascii=False)


def from_json(
    text: str, *, source: str | None = None, cls: type[Topology] | None = None
) -> Topology:
    """Parse :func:`to_json` output (malformed JSON is a :class:`DataValidationError`)."""
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataValidationError(
            f"malformed JSON ({exc.msg}) at line {exc.lineno}", source=source
        ) from None
    return from_dict(d, source=source, cls=cls)


def save(top: Topology, path: str | os.PathLike[str]) -> Path:
    """Write the JSON description of ``top`` atomically; returns the path."""
    from dataprune.atomic import atomic_write

    with atomic_write(path) as fh:
        fh.write(to_json(top))
        fh.write("\n")
    logger.debug("saved topology to %s", path)
    return Path(path)


def load(path: str | os.PathLike[str], *, cls: type[Topology] | None = None) -> Topology:
    """Read a topology written by :func:`save`."""
    p = Path(path)
    if not p.is_file():
        raise DataValidationError("file not found", source=str(p))
    return from_json(p.read_text(encoding="utf-8"), source=str(p), cls=cls)


def to_agp_record(top: Topology, task: str) -> dict[str, Any]:
    """An AGP-format record of ``top`` for query ``task``.

    ``edge_weight`` holds the edge probabilities (or the 0/1 adjacency when there are none) and
    ``mask`` is 1 for pruned agents (AGP's convention).
    """
    E = top.edge_prob if top.edge_prob is not None else top.adjacency.astype(np.float64)
    return {
        "task": task,
        "edge_weight": np.asarray(E, dtype=np.float64).tolist(),
        "mask": [int(not a) for a in top.active],
    }


def to_numpy(top: Topology, kind: str = "adjacency") -> np.ndarray:
    """One array view of ``top``.

    Parameters
    ----------
    top : Topology
    kind : {"adjacency", "mask", "agp_mask", "edge_prob"}, default="adjacency"
        ``"adjacency"``: active edges, int8; ``"mask"``: 1 = active, int8; ``"agp_mask"``:
        1 = PRUNED (AGP's convention), int8; ``"edge_prob"``: float64, the thresholded adjacency
        when no probabilities are stored.

    Returns
    -------
    ndarray
    """
    if kind == "adjacency":
        return top.effective_adjacency().astype(np.int8)
    if kind == "mask":
        return top.active.astype(np.int8)
    if kind == "agp_mask":
        return (~top.active).astype(np.int8)
    if kind == "edge_prob":
        return (
            np.array(top.edge_prob, dtype=np.float64)
            if top.edge_prob is not None
            else top.adjacency.astype(np.float64)
        )
    raise UnknownOptionError(
        f"unknown array kind {kind!r}; valid: adjacency, mask, agp_mask, edge_prob"
    )


def from_agp_record(
    record: Mapping[str, Any],
    agents: Sequence[Any] | None = None,
    *,
    threshold: float = 0.5,
    cls: type[Topology] | None = None,
    **kwargs: Any,
) -> Topology:
    """From an AGP Stage I record (``mask`` = 1 means PRUNED; ``edge_weight`` = probabilities).

    Parameters
    ----------
    record : mapping
        ``task``, ``edge_weight`` and ``mask`` (see :mod:`dataprune.agents.records`).
    agents : sequence, optional
        The agent pool; defaults to ``agent_0 ... agent_{N-1}``.
    threshold : float, default=0.5
        Edge-probability threshold (see :meth:`Topology.from_edge_probabilities`).
    cls : type, optional
        The class to build (default :class:`Topology`).
    **kwargs
        Passed on to :meth:`Topology.from_edge_probabilities`; the task text is added to
        ``metadata["task"]``.

    Returns
    -------
    Topology
    """
    from dataprune.agents.records import validate_agp_record

    task, E, m = validate_agp_record(record, n_agents=None if agents is None else len(agents))
    if agents is None:
        agents = [f"agent_{i}" for i in range(len(m))]
    meta = dict(kwargs.pop("metadata", None) or {})
    meta["task"] = task
    return _topology_class(cls).from_edge_probabilities(
        agents, E, threshold=threshold, active=m == 0, metadata=meta, **kwargs
    )


def to_networkx(top: Topology, *, include_pruned: bool = False) -> Any:
    """A ``networkx.DiGraph`` of ``top``.

    Node attributes ``role``, ``profile``, ``required``, ``active`` and ``level`` (-1 for pruned
    agents); edge attribute ``prob`` when the topology has edge probabilities.
    """
    import networkx as nx

    G = nx.DiGraph()
    level_of = {nm: k for k, lvl in enumerate(top.levels()) for nm in lvl}
    for a, on in zip(top.agents, top.active):
        if not include_pruned and not on:
            continue
        G.add_node(
            a.name,
            role=a.role,
            profile=a.profile,
            required=a.required,
            active=bool(on),
            level=level_of.get(a.name, -1),
        )
    A = top.adjacency if include_pruned else top.effective_adjacency()
    names, P = top.names, top.edge_prob
    for i, j in zip(*np.nonzero(A)):
        attrs = {} if P is None else {"prob": float(P[i, j])}
        G.add_edge(names[i], names[j], **attrs)
    return G


def from_networkx(graph: Any, *, cls: type[Topology] | None = None, **kwargs: Any) -> Topology:
    """From a ``networkx.DiGraph`` whose nodes are agent names.

    Node attributes ``role``, ``profile``, ``required`` fill the :class:`AgentSpec`;
    ``active=False`` marks a pruned agent; edge attribute ``prob`` fills ``edge_prob``. Node
    order is the graph's node order. ``kwargs`` go to the constructor.
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
    return _topology_class(cls)(specs, A, **kwargs)


def adjacency_from_edges(
    names: Sequence[str], edges: Iterable[tuple[str | int, str | int]]
) -> np.ndarray:
    """A bool (n, n) adjacency from ``(sender, receiver)`` pairs of agent names or positions.

    Parameters
    ----------
    names : sequence of str
        Agent names in pool order.
    edges : iterable of (str or int, str or int)

    Returns
    -------
    ndarray of bool, shape (n, n)
    """
    index = {nm: i for i, nm in enumerate(names)}
    n = len(names)
    A = np.zeros((n, n), dtype=bool)
    for k, e in enumerate(edges):
        if not isinstance(e, (tuple, list)) or len(e) != 2:
            raise DataValidationError(f"edge {k}: expected a (sender, receiver) pair, got {e!r}")
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
    return A
