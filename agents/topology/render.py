"""Views of a :class:`~dataprune.agents.topology.core.Topology` for people and frameworks.

A mermaid flowchart, a plain-text summary, and the active graph unrolled over rounds (the node
and edge lists the framework exports in :mod:`dataprune.agents.export`, CrewAI's included, are
built from).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

import numpy as np

from dataprune.agents.spec import AgentSpec

if TYPE_CHECKING:
    from dataprune.agents.topology.core import Topology

__all__ = ["describe", "to_mermaid", "unrolled"]

logger = logging.getLogger(__name__)


def _mermaid_id(name: str) -> str:
    return "a_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def _mermaid_label(a: AgentSpec) -> str:
    text = a.name if not a.role else f"{a.name}<br/>{a.role}"
    return text.replace('"', "'")


def to_mermaid(top: Topology, *, include_pruned: bool = True, show_prob: bool = True) -> str:
    """A mermaid ``flowchart`` of ``top``.

    Parameters
    ----------
    top : Topology
    include_pruned : bool, default=True
        Draw pruned agents too (dashed and grey).
    show_prob : bool, default=True
        Label edges with their probabilities (when the topology has them).

    Returns
    -------
    str
        The flowchart source, newline-terminated.
    """
    mid, P, names = _mermaid_id, top.edge_prob, top.names
    lines = ["flowchart TD"]
    for a, on in zip(top.agents, top.active):
        if on or include_pruned:
            lines.append(f'    {mid(a.name)}["{_mermaid_label(a)}"]')
    for i, j in zip(*np.nonzero(top.effective_adjacency())):
        s, d = names[i], names[j]
        if show_prob and P is not None:
            lines.append(f"    {mid(s)} -->|{P[i, j]:.2f}| {mid(d)}")
        else:
            lines.append(f"    {mid(s)} --> {mid(d)}")
    if top.decision is not None:
        dn = top.decision.name
        lines.append(f'    {mid(dn)}{{{{"{_mermaid_label(top.decision)}"}}}}')
        for nm in top.active_names:
            lines.append(f"    {mid(nm)} -.-> {mid(dn)}")
    pruned = [mid(n) for n in top.pruned_names]
    if include_pruned and pruned:
        lines.append("    classDef pruned stroke-dasharray: 5 5,fill:#eee,color:#999")
        lines.append(f"    class {','.join(pruned)} pruned")
    return "\n".join(lines) + "\n"


def describe(top: Topology) -> str:
    """A short human-readable summary: counts, levels, pruned agents, edges (with probabilities)."""
    decision = top.decision.name if top.decision else f"{top.aggregator} (rule)"
    lines = [
        f"{top.n_active_agents}/{top.n_agents} agents active, {top.n_edges} edges, "
        f"{top.rounds} round(s), decision: " + decision
    ]
    for k, lvl in enumerate(top.levels()):
        lines.append(f"  level {k}: {', '.join(lvl)}")
    if top.pruned_names:
        lines.append(f"  pruned: {', '.join(top.pruned_names)}")
    P = top.edge_prob
    for s, d in top.edges():
        p = "" if P is None else f"  (p={P[top.index(s), top.index(d)]:.2f})"
        lines.append(f"  {s} -> {d}{p}")
    return "\n".join(lines)


def unrolled(top: Topology) -> tuple[list[tuple[str, str, int]], list[tuple[str, str]]]:
    """The active graph of ``top`` unrolled over rounds (a DAG).

    Returns
    -------
    nodes : list of (node_id, agent_name, round)
        ``node_id`` is the agent name when ``rounds == 1``, else ``f"{name}_r{round}"``
        (rounds counted from 1); listed round by round in topological order.
    edges : list of (node_id, node_id)
        Spatial edges within each round and temporal edges between consecutive rounds.
    """
    rounds, names = top.rounds, top.names

    def nid(name: str, r: int) -> str:
        return name if rounds == 1 else f"{name}_r{r}"

    order = top.topological_order()
    nodes = [(nid(nm, r), nm, r) for r in range(1, rounds + 1) for nm in order]
    spatial = top.edges()
    temporal = [(names[i], names[j]) for i, j in zip(*np.nonzero(top.effective_temporal()))]
    edges: list[tuple[str, str]] = []
    for r in range(1, rounds + 1):
        if r > 1:
            edges += [(nid(s, r - 1), nid(d, r)) for s, d in temporal]
        edges += [(nid(s, r), nid(d, r)) for s, d in spatial]
    return nodes, edges
