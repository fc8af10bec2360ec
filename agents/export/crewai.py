"""Export a topology as CrewAI-shaped agent and task definitions (plain data).

CrewAI itself is not a dependency: at the time of writing it pins its own pydantic and pulls
chromadb, onnxruntime, lancedb and ~80 other packages, which would fight this toolkit's
environment. The export is therefore plain dictionaries whose keys are the keyword arguments of
``crewai.Agent`` and ``crewai.Task``; ``context`` names the tasks whose outputs a task receives.
With CrewAI installed::

    from crewai import Agent, Crew, Process, Task
    spec = topology.to_crewai_tasks()
    agents = {t["name"]: Agent(**t["agent"]) for t in spec}
    tasks = {}
    for t in spec:  # already in dependency order
        tasks[t["name"]] = Task(
            description=t["description"], expected_output=t["expected_output"],
            agent=agents[t["name"]], context=[tasks[c] for c in t["context"]],
        )
    Crew(agents=list(agents.values()), tasks=list(tasks.values()), process=Process.sequential)
"""

from __future__ import annotations

from typing import Any

from dataprune.agents.topology import Topology

__all__ = ["to_crewai_tasks"]


def to_crewai_tasks(
    topology: Topology,
    *,
    query_placeholder: str = "{query}",
    expected_output: str = "A short reasoning and, on the last line, 'Answer: <answer>'.",
) -> list[dict[str, Any]]:
    """One task per active agent (per agent-round), in dependency order.

    Returns
    -------
    list of dict
        ``{"name", "agent": {"role", "goal", "backstory"}, "description", "expected_output",
        "context": [names of predecessor tasks], "round"}``; a final decision task (reading every
        final-round task) when the topology has a decision agent.
    """
    nodes, edges = topology.unrolled()
    preds: dict[str, list[str]] = {nid: [] for nid, _, _ in nodes}
    for s, d in edges:
        preds[d].append(s)
    out = []
    for nid, name, r in nodes:
        a = topology.agent(name)
        out.append(
            {
                "name": nid,
                "agent": {
                    "role": a.role or a.name,
                    "goal": f"Solve the task as {a.role or a.name}, using the other agents' answers you receive.",
                    "backstory": a.profile or f"You are {a.role or a.name}.",
                },
                "description": f"Task: {query_placeholder}\nGive your answer on the last line as 'Answer: <answer>'.",
                "expected_output": expected_output,
                "context": preds[nid],
                "round": r,
            }
        )
    if topology.decision is not None:
        d = topology.decision
        out.append(
            {
                "name": d.name,
                "agent": {
                    "role": d.role or d.name,
                    "goal": "Weigh the agents' answers and decide the final answer.",
                    "backstory": d.profile or f"You are {d.role or d.name}.",
                },
                "description": f"Task: {query_placeholder}\nDecide the final answer from the agents' answers.",
                "expected_output": expected_output,
                "context": [nid for nid, _, r in nodes if r == topology.rounds],
                "round": topology.rounds,
            }
        )
    return out
