"""Multi-agent communication topologies.

A :class:`Topology` is a pool of agents, a spatial adjacency (who sends to whom within one round;
a DAG), a node mask (which agents run), optional edge keep-probabilities, a number of rounds with
optional temporal edges, and how the final answer is decided.

Modules
-------
core
    The :class:`Topology` class.
checks
    Argument checks of the constructor and :data:`AGGREGATORS`.
graph
    Graph algorithms on boolean adjacencies (cycles, cycle-free thresholding, layering).
presets
    Chain, star, full mesh, layered and random-DAG adjacencies.
io
    JSON, AGP-record, ``networkx`` and array conversions.
render
    Mermaid flowchart, text summary, unrolling over rounds.
"""

from __future__ import annotations

from dataprune.agents.topology.checks import AGGREGATORS
from dataprune.agents.topology.core import Topology
from dataprune.agents.topology.graph import acyclic_from_scores, find_cycle

__all__ = ["AGGREGATORS", "Topology", "acyclic_from_scores", "find_cycle"]
