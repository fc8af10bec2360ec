"""Export a topology to AutoGen: allowed speaker transitions and a ``GraphFlow`` team."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dataprune.agents.spec import AgentSpec
from dataprune.agents.topology import Topology
from dataprune.errors import DataValidationError
from dataprune.optional import require

__all__ = ["autogen_agents", "to_autogen_graphflow", "to_autogen_transitions"]


def to_autogen_transitions(
    topology: Topology, agents: Mapping[str, Any] | None = None
) -> dict[Any, list[Any]]:
    """Allowed speaker transitions ``{speaker: [who may speak next]}``.

    Within a round an agent hands over to its successors; sinks hand over to the decision
    agent when there is one; with several rounds, temporal edges add transitions into the next
    round. Pruned agents do not appear. Keys and values are agent names, or the objects of
    ``agents`` (name -> autogen agent) -- the shape of AutoGen 0.2's
    ``GroupChat(allowed_or_disallowed_speaker_transitions=..., speaker_transitions_type="allowed")``
    and usable in AutoGen 0.4's ``SelectorGroupChat(candidate_func=...)``.
    """
    names = topology.active_names
    trans: dict[str, list[str]] = {nm: topology.successors(nm) for nm in names}
    if topology.rounds > 1:
        T = topology.effective_temporal()
        for i, j in zip(*T.nonzero()):
            s, d = topology.names[i], topology.names[j]
            if d not in trans[s]:
                trans[s].append(d)
    if topology.decision is not None:
        for nm in names:
            if not topology.successors(nm):
                trans[nm].append(topology.decision.name)
        trans[topology.decision.name] = []
    if agents is None:
        return trans
    missing = [nm for nm in trans if nm not in agents]
    if missing:
        raise DataValidationError(
            f"no AutoGen agent given for {', '.join(missing)}; given: {', '.join(agents)}"
        )
    return {agents[k]: [agents[v] for v in vs] for k, vs in trans.items()}


def to_autogen_graphflow(
    topology: Topology,
    participants: Mapping[str, Any] | Callable[[AgentSpec], Any],
    *,
    termination_condition: Any = None,
    max_turns: int | None = None,
) -> Any:
    """An AutoGen AgentChat ``GraphFlow`` whose graph is the active topology.

    Every active agent is a node (an agent with several predecessors waits for all of them, the
    GraphFlow default ``activation="all"``); the decision agent, when present, follows every
    active agent. Only ``rounds == 1`` is supported (GraphFlow node names are agent names).

    Parameters
    ----------
    participants : mapping name -> ChatAgent, or callable(AgentSpec) -> ChatAgent
        The AutoGen agents; :func:`autogen_agents` builds them from a dataprune backend.
    """
    teams = require("autogen_agentchat.teams", "autogen", purpose="exporting to AutoGen GraphFlow")
    if topology.rounds != 1:
        raise DataValidationError(
            "GraphFlow export supports rounds=1 (use to_autogen_transitions or LangGraph for "
            "several rounds)"
        )
    specs = [topology.agent(nm) for nm in topology.topological_order()]
    if topology.decision is not None:
        specs.append(topology.decision)
    if callable(participants) and not isinstance(participants, Mapping):
        objs = {s.name: participants(s) for s in specs}
    else:
        missing = [s.name for s in specs if s.name not in participants]
        if missing:
            raise DataValidationError(
                f"no AutoGen agent given for {', '.join(missing)}; given: {', '.join(participants)}"
            )
        objs = {s.name: participants[s.name] for s in specs}
    builder = teams.DiGraphBuilder()
    for s in specs:
        builder.add_node(objs[s.name])
    for a, b in topology.edges():
        builder.add_edge(objs[a], objs[b])
    if topology.decision is not None:
        for nm in topology.active_names:
            builder.add_edge(objs[nm], objs[topology.decision.name])
    return teams.GraphFlow(
        participants=builder.get_participants(),
        graph=builder.build(),
        termination_condition=termination_condition,
        max_turns=max_turns,
    )


def autogen_agents(topology: Topology, backend: Any) -> dict[str, Any]:
    """AutoGen ``ChatAgent`` objects answering through a dataprune backend.

    Each agent reads only the messages of its topology predecessors (the decision agent: every
    active agent) from the group-chat thread and calls ``backend`` with the executor's prompts.
    Agent names must be Python identifiers (an AutoGen requirement).
    """
    agents_mod = require("autogen_agentchat.agents", "autogen", purpose="AutoGen agents")
    base_mod = require("autogen_agentchat.base", "autogen", purpose="AutoGen agents")
    msgs_mod = require("autogen_agentchat.messages", "autogen", purpose="AutoGen agents")
    from dataprune.agents.executor.messages import AgentCall, Message, build_chat_messages

    class _BackendAgent(agents_mod.BaseChatAgent):  # type: ignore[misc, name-defined]
        def __init__(self, spec: AgentSpec, preds: list[str], is_decision: bool) -> None:
            super().__init__(spec.name, spec.role or spec.name)
            self._spec = spec
            self._preds = preds
            self._is_decision = is_decision
            self._seen: list[Any] = []

        @property
        def produced_message_types(self) -> tuple[type, ...]:
            return (msgs_mod.TextMessage,)

        async def on_messages(self, messages: Any, cancellation_token: Any) -> Any:
            self._seen.extend(messages)
            task = next((m.content for m in self._seen if getattr(m, "source", None) == "user"), "")
            inbox = [
                Message(m.source, str(m.content), 1)
                for m in self._seen
                if getattr(m, "source", None) in self._preds
            ]
            call = AgentCall(
                self._spec,
                task,
                tuple(inbox),
                1,
                build_chat_messages(self._spec, task, inbox, is_decision=self._is_decision),
                60.0,
                is_decision=self._is_decision,
            )
            text = backend.complete(call).text
            return base_mod.Response(
                chat_message=msgs_mod.TextMessage(content=text, source=self.name)
            )

        async def on_reset(self, cancellation_token: Any) -> None:
            self._seen = []

    out = {}
    for nm in topology.active_names:
        out[nm] = _BackendAgent(topology.agent(nm), topology.predecessors(nm), False)
    if topology.decision is not None:
        out[topology.decision.name] = _BackendAgent(topology.decision, topology.active_names, True)
    return out
