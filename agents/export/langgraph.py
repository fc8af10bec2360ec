"""Export a topology to a LangGraph ``StateGraph`` (object or standalone Python source), and a
dynamic workflow policy to a ``StateGraph`` whose router calls the policy."""

from __future__ import annotations

import operator
import pprint
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypedDict

from dataprune.agents.executor.messages import Message, extract_answer
from dataprune.agents.spec import AgentSpec
from dataprune.agents.topology import Topology
from dataprune.errors import DataValidationError
from dataprune.optional import require

__all__ = [
    "DECIDE_NODE",
    "FLOW_STOP_NODE",
    "FlowState",
    "TopologyState",
    "langgraph_source",
    "policy_to_langgraph",
    "to_langgraph",
]

#: Name of the LangGraph node that produces the final answer.
DECIDE_NODE = "decide"

AgentFn = Callable[[AgentSpec, str, list[Message]], str]


class TopologyState(TypedDict, total=False):
    """State of the exported graph: the query, every node's output, the final answer."""

    query: str
    outputs: Annotated[dict[str, str], operator.or_]
    answer: str | None


def _resolve_fn(agent_fns: Any) -> AgentFn:
    from dataprune.agents.executor.backends import ChatBackend
    from dataprune.agents.executor.messages import AgentCall, build_chat_messages

    if isinstance(agent_fns, ChatBackend):
        backend = agent_fns

        def via_backend(
            agent: AgentSpec, query: str, inbox: list[Message], *, is_decision: bool = False
        ) -> str:
            call = AgentCall(
                agent,
                query,
                tuple(inbox),
                inbox[0].round if inbox else 1,
                build_chat_messages(agent, query, inbox, is_decision=is_decision),
                60.0,
                is_decision=is_decision,
            )
            return backend.complete(call).text

        return via_backend
    if isinstance(agent_fns, Mapping):
        fns = dict(agent_fns)

        def by_name(agent: AgentSpec, query: str, inbox: list[Message], **_: Any) -> str:
            if agent.name not in fns:
                raise DataValidationError(
                    f"no function for agent {agent.name!r}; given: {', '.join(fns)}"
                )
            return fns[agent.name](query, inbox)

        return by_name
    if callable(agent_fns):
        return lambda agent, query, inbox, **_: agent_fns(agent, query, inbox)
    raise DataValidationError(
        "agent_fns must be a ChatBackend, a mapping name -> fn(query, inbox), or "
        "fn(agent, query, inbox)"
    )


def to_langgraph(topology: Topology, agent_fns: Any, *, compile: bool = False) -> Any:
    """Build a LangGraph ``StateGraph`` that runs ``topology``.

    Every active agent (every agent-round when ``rounds > 1``) is a node; an agent with several
    predecessors waits for all of them (``add_edge([...], node)``); agents without predecessors
    start from ``START``. A final node ``"decide"`` waits for every final-round agent and calls
    the decision agent, or applies the topology's aggregator rule. Pruned agents are not in the
    graph. Invoke with ``{"query": ...}``; the result has ``outputs`` (node id -> text) and
    ``answer``.

    Parameters
    ----------
    topology : Topology
    agent_fns : ChatBackend, mapping or callable
        A backend (agents are called with the executor's prompts), a mapping
        ``name -> fn(query, inbox) -> str``, or ``fn(agent, query, inbox) -> str``; ``inbox`` is a
        list of :class:`~dataprune.agents.executor.Message`.
    compile : bool, default=False
        Return ``graph.compile()`` instead of the builder.
    """
    lg = require("langgraph.graph", "langgraph", purpose="exporting to LangGraph")
    from dataprune.agents.executor.results import aggregate_answers

    fn = _resolve_fn(agent_fns)
    nodes, edges = topology.unrolled()
    if not nodes:
        raise DataValidationError("the topology has no active agent to export")
    preds: dict[str, list[str]] = {nid: [] for nid, _, _ in nodes}
    for s, d in edges:
        preds[d].append(s)
    info = {nid: (name, r) for nid, name, r in nodes}
    graph = lg.StateGraph(TopologyState)

    def make_node(nid: str) -> Callable[[TopologyState], dict[str, Any]]:
        agent = topology.agent(info[nid][0])

        def node(state: TopologyState) -> dict[str, Any]:
            outs = state.get("outputs") or {}
            inbox = [Message(info[p][0], outs[p], info[p][1]) for p in preds[nid] if p in outs]
            return {"outputs": {nid: fn(agent, state["query"], inbox)}}

        node.__name__ = f"agent_{nid}"
        return node

    for nid, _, _ in nodes:
        graph.add_node(nid, make_node(nid))
        if not preds[nid]:
            graph.add_edge(lg.START, nid)
        elif len(preds[nid]) == 1:
            graph.add_edge(preds[nid][0], nid)
        else:
            graph.add_edge(list(preds[nid]), nid)
    final = [nid for nid, _, r in nodes if r == topology.rounds]
    if topology.decision is None and topology.aggregator == "sinks":
        sinks = set(topology.sinks())
        voters = [nid for nid in final if info[nid][0] in sinks]
    elif topology.decision is None and topology.aggregator == "last":
        voters = final[-1:]
    else:
        voters = final
    decision = topology.decision
    rule = "last" if topology.aggregator == "last" else "majority"

    def decide(state: TopologyState) -> dict[str, Any]:
        outs = state.get("outputs") or {}
        if decision is not None:
            inbox = [Message(info[v][0], outs[v], info[v][1]) for v in final if v in outs]
            try:
                text = fn(decision, state["query"], inbox, is_decision=True)
            except TypeError:
                text = fn(decision, state["query"], inbox)
            return {"answer": extract_answer(text)}
        answer, _ = aggregate_answers([extract_answer(outs.get(v)) for v in voters], rule)
        return {"answer": answer}

    graph.add_node(DECIDE_NODE, decide)
    graph.add_edge(final if len(final) > 1 else final[0], DECIDE_NODE)
    graph.add_edge(DECIDE_NODE, lg.END)
    return graph.compile() if compile else graph


_SOURCE = '''"""LangGraph graph exported by dataprune ({command}).

{summary}

Usage: provide call_agent(agent: dict, query: str, inbox: list[dict]) -> str, where agent has
name/role/profile and inbox items have sender/content/round, then

    app = build_graph(call_agent).compile()
    result = app.invoke({{"query": "..."}})   # result["answer"], result["outputs"]
"""

import operator
import re
from collections import Counter
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph

AGENTS = {agents}
NODES = {nodes}  # node id -> (agent name, round)
PREDECESSORS = {preds}
FINAL = {final}
VOTERS = {voters}
DECISION = {decision}
AGGREGATOR = {aggregator!r}


class State(TypedDict, total=False):
    query: str
    outputs: Annotated[dict, operator.or_]
    answer: str | None


def extract_answer(text):
    if not text or not text.strip():
        return None
    hits = re.findall(r"(?:final\\s+)?answer\\s*(?:is)?\\s*[:=]\\s*(.+)", text, re.IGNORECASE)
    ans = hits[-1] if hits else [ln for ln in text.splitlines() if ln.strip()][-1]
    return ans.strip().strip("*`\\"' ").rstrip(".").strip() or None


def aggregate(answers):
    valid = [a for a in answers if a is not None]
    if not valid:
        return None
    if AGGREGATOR == "last":
        return valid[-1]
    counts = Counter(" ".join(a.split()).casefold() for a in valid)
    top = max(counts.values())
    return next(a for a in valid if counts[" ".join(a.split()).casefold()] == top)


def build_graph(call_agent):
    graph = StateGraph(State)

    def make_node(nid):
        name, rnd = NODES[nid]

        def node(state):
            outs = state.get("outputs") or {{}}
            inbox = [
                {{"sender": NODES[p][0], "content": outs[p], "round": NODES[p][1]}}
                for p in PREDECESSORS[nid]
                if p in outs
            ]
            return {{"outputs": {{nid: call_agent(AGENTS[name], state["query"], inbox)}}}}

        return node

    for nid, preds in PREDECESSORS.items():
        graph.add_node(nid, make_node(nid))
        if not preds:
            graph.add_edge(START, nid)
        else:
            graph.add_edge(preds if len(preds) > 1 else preds[0], nid)

    def decide(state):
        outs = state.get("outputs") or {{}}
        if DECISION is not None:
            inbox = [
                {{"sender": NODES[v][0], "content": outs[v], "round": NODES[v][1]}}
                for v in FINAL
                if v in outs
            ]
            return {{"answer": extract_answer(call_agent(DECISION, state["query"], inbox))}}
        return {{"answer": aggregate([extract_answer(outs.get(v)) for v in VOTERS])}}

    graph.add_node("decide", decide)
    graph.add_edge(FINAL if len(FINAL) > 1 else FINAL[0], "decide")
    graph.add_edge("decide", END)
    return graph
'''


def langgraph_source(topology: Topology, *, command: str = "dataprune agents export") -> str:
    """Standalone Python source (needs only ``langgraph``) defining ``build_graph(call_agent)``
    with the same structure as :func:`to_langgraph`."""
    nodes, edges = topology.unrolled()
    if not nodes:
        raise DataValidationError("the topology has no active agent to export")
    preds: dict[str, list[str]] = {nid: [] for nid, _, _ in nodes}
    for s, d in edges:
        preds[d].append(s)
    final = [nid for nid, _, r in nodes if r == topology.rounds]
    if topology.decision is None and topology.aggregator == "sinks":
        sinks = set(topology.sinks())
        voters = [nid for nid, nm, r in nodes if r == topology.rounds and nm in sinks]
    elif topology.decision is None and topology.aggregator == "last":
        voters = final[-1:]
    else:
        voters = final
    agents = {
        a.name: {"name": a.name, "role": a.role, "profile": a.profile}
        for a in topology.agents
        if a.name in topology.active_names
    }
    dec = topology.decision
    summary = "\n".join(line.replace('"""', "'''") for line in topology.describe().splitlines())

    def lit(x: Any) -> str:
        return pprint.pformat(x, width=96, sort_dicts=False)

    return _SOURCE.format(
        command=command,
        summary=summary,
        agents=lit(agents),
        nodes=lit({nid: [nm, r] for nid, nm, r in nodes}),
        preds=lit(preds),
        final=lit(final),
        voters=lit(voters),
        decision=lit(
            None if dec is None else {"name": dec.name, "role": dec.role, "profile": dec.profile}
        ),
        aggregator="last" if topology.aggregator == "last" else "majority",
    )


# ---------------------------------------------------------------------- dynamic workflow policy
#: Name of the LangGraph node that ends a dynamic workflow (agents may not be named STOP).
FLOW_STOP_NODE = "STOP"


class FlowState(TypedDict, total=False):
    """State of an exported flow policy: the query, every step (agent, output), the answer."""

    query: str
    steps: Annotated[list[dict[str, Any]], operator.add]
    answer: str | None


def policy_to_langgraph(
    policy: Any, agent_fns: Any, *, compile: bool = False, max_steps: int | None = None
) -> Any:
    """Build a LangGraph ``StateGraph`` that runs a :class:`~dataprune.agents.flow.FlowPolicy`.

    Every agent of the policy is a node; ``START`` and every agent node leave through one
    conditional edge whose router parses the last output's ``NEXT: ...; PROGRESS: ...`` suffix
    and calls :meth:`FlowPolicy.decide <dataprune.agents.flow.FlowPolicy.decide>` (greedy), so
    the graph takes the path the policy would. The router goes to the node ``"STOP"`` (which sets
    ``answer`` to the last extracted answer) when the policy stops or after ``max_steps`` agent
    calls. Agents read earlier outputs (suffix removed) by the policy's context rule. Token
    budgets are not enforced (plain agent functions report no tokens): use
    :class:`~dataprune.agents.flow.FlowExecutor` for budgets. Invoke with ``{"query": ...}``;
    the result has ``steps`` (``{"agent", "output"}`` in order) and ``answer``.

    Parameters
    ----------
    policy : FlowPolicy
        Fitted (or cold start).
    agent_fns : ChatBackend, mapping or callable
        As for :func:`to_langgraph`; a backend gets the flow prompt (the executor's prompt plus
        :func:`~dataprune.agents.flow.protocol.flow_instruction`), functions should end their
        output with the suffix themselves.
    compile : bool, default=False
        Return ``graph.compile()`` instead of the builder.
    max_steps : int, optional
        Default: the policy's ``config_.max_steps``.
    """
    lg = require("langgraph.graph", "langgraph", purpose="exporting to LangGraph")
    from dataprune.agents.executor.backends import ChatBackend
    from dataprune.agents.executor.messages import AgentCall
    from dataprune.agents.flow.context import CONTEXTS
    from dataprune.agents.flow.protocol import START, STOP, flow_messages, parse_suffix

    policy.check_is_fitted()
    cap = max_steps or policy.config_.max_steps
    rule = CONTEXTS.get(policy.config_.context)
    agents = {a.name: a for a in policy.agents_}

    backend = agent_fns if isinstance(agent_fns, ChatBackend) else None
    fn = None if backend is not None else _resolve_fn(agent_fns)

    def invoke(agent: AgentSpec, query: str, inbox: list[Message], step: int) -> str:
        if backend is None:
            return fn(agent, query, inbox)
        msgs = flow_messages(
            agent, query, inbox, step=step, allowed=policy.allowed_after(agent.name)
        )
        return backend.complete(AgentCall(agent, query, tuple(inbox), step, msgs, 60.0)).text

    def make_node(name: str) -> Callable[[FlowState], dict[str, Any]]:
        agent = agents[name]

        def node(state: FlowState) -> dict[str, Any]:
            steps = state.get("steps") or []
            inbox = [
                Message(steps[i]["agent"], steps[i]["content"], i + 1)
                for i in rule.reads(len(steps))
            ]
            text = invoke(agent, state["query"], inbox, len(steps) + 1)
            content, _ = parse_suffix(text, policy.agents_, log=False)
            return {"steps": [{"agent": name, "output": text, "content": content or ""}]}

        node.__name__ = f"agent_{name}"
        return node

    def route(state: FlowState) -> str:
        steps = state.get("steps") or []
        if len(steps) >= cap:
            return FLOW_STOP_NODE
        if not steps:
            return policy.decide(START).action
        _, proposal = parse_suffix(steps[-1]["output"], policy.agents_)
        action = policy.decide(steps[-1]["agent"], proposal).action
        return FLOW_STOP_NODE if action == STOP else action

    def stop(state: FlowState) -> dict[str, Any]:
        for s in reversed(state.get("steps") or []):
            ans = extract_answer(s["content"])
            if ans is not None:
                return {"answer": ans}
        return {"answer": None}

    graph = lg.StateGraph(FlowState)
    targets = {name: name for name in agents} | {FLOW_STOP_NODE: FLOW_STOP_NODE}
    for name in agents:
        graph.add_node(name, make_node(name))
    graph.add_node(FLOW_STOP_NODE, stop)
    graph.add_conditional_edges(lg.START, route, targets)
    for name in agents:
        graph.add_conditional_edges(name, route, targets)
    graph.add_edge(FLOW_STOP_NODE, lg.END)
    return graph.compile() if compile else graph
