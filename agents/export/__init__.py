"""Framework exports of a :class:`~dataprune.agents.topology.Topology`.

LangGraph and AutoGen are imported lazily (extras ``langgraph`` and ``autogen``); CrewAI is
exported as plain data (see :mod:`dataprune.agents.export.crewai`).
"""

from __future__ import annotations

from dataprune.agents.export.autogen import (
    autogen_agents,
    to_autogen_graphflow,
    to_autogen_transitions,
)
from dataprune.agents.export.crewai import to_crewai_tasks
from dataprune.agents.export.langgraph import DECIDE_NODE, langgraph_source, to_langgraph

__all__ = [
    "DECIDE_NODE",
    "autogen_agents",
    "langgraph_source",
    "to_autogen_graphflow",
    "to_autogen_transitions",
    "to_crewai_tasks",
    "to_langgraph",
]
