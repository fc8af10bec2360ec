from __future__ import annotations

import asyncio
import importlib.util

import pytest

from dataprune.agents import AgentSpec, Executor, SimulatedBackend, Topology
from dataprune.agents.export import (
    autogen_agents,
    langgraph_source,
    to_autogen_graphflow,
    to_autogen_transitions,
    to_crewai_tasks,
    to_langgraph,
)
from dataprune.agents.simulator import make_environment
from dataprune.errors import DataValidationError

AG = ["a", "b", "c", "d", "e"]


def diamond() -> Topology:
    return Topology.from_edges(
        AG, [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("a", "e")]
    ).prune(agents=["e"])


def recording_fns(log):
    def fn(agent, query, inbox):
        log.append((agent.name, sorted(m.sender for m in inbox)))
        return f"Answer: {agent.name}{len(inbox)}"

    return fn


def test_langgraph_graph_runs_in_dependency_order_without_pruned_agents():
    log = []
    app = to_langgraph(diamond(), recording_fns(log), compile=True)
    out = app.invoke({"query": "q"})
    order = [n for n, _ in log]
    assert sorted(order) == ["a", "b", "c", "d"] and "e" not in order
    assert order[0] == "a" and order[-1] == "d"
    assert dict(log)["d"] == ["b", "c"]  # d waited for both predecessors, ran once
    assert set(out["outputs"]) == {"a", "b", "c", "d"}
    assert out["answer"] == "a0"  # majority of 4 distinct answers: first voter wins the tie
    graph_nodes = set(app.get_graph().nodes)
    assert {"a", "b", "c", "d", "decide"} <= graph_nodes and "e" not in graph_nodes


def test_langgraph_matches_executor_on_simulated_backend_and_generated_source(tmp_path):
    env = make_environment(random_state=0)
    top = env.full_topology().prune(agents=[env.agents[2].name, env.agents[4].name])
    backend = SimulatedBackend(env)
    qs = env.make_queries(12, random_state=3)
    app = to_langgraph(top, backend, compile=True)
    ex = Executor(backend)
    for q in qs:
        assert app.invoke({"query": q.text})["answer"] == ex.run(top, q.text).answer
    path = tmp_path / "exported_graph.py"
    path.write_text(langgraph_source(top))
    spec = importlib.util.spec_from_file_location("exported_graph", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # the generated module is standalone (langgraph only)
    ns = vars(mod)
    calls = []

    def call_agent(agent, query, inbox):
        calls.append(agent["name"])
        return f"Answer: {len(inbox)}"

    res = ns["build_graph"](call_agent).compile().invoke({"query": "hi"})
    assert sorted(calls) == sorted(top.active_names)
    lg = to_langgraph(top, lambda a, q, inbox: f"Answer: {len(inbox)}", compile=True).invoke(
        {"query": "hi"}
    )
    assert res["answer"] == lg["answer"]


def test_langgraph_rounds_and_decision_agent():
    top = Topology.chain(["a", "b"], rounds=2, decision=AgentSpec("judge"), aggregator="majority")
    log = []
    fns = {
        "a": lambda q, inbox: "Answer: A",
        "b": lambda q, inbox: "Answer: B",
        "judge": lambda q, inbox: log.append([m.sender for m in inbox]) or "Answer: J",
    }
    out = to_langgraph(top, fns, compile=True).invoke({"query": "q"})
    assert set(out["outputs"]) == {"a_r1", "b_r1", "a_r2", "b_r2"}
    assert out["answer"] == "J" and log == [["a", "b"]]
    with pytest.raises(DataValidationError, match="no function for agent 'b'"):
        to_langgraph(Topology.chain(["a", "b"]), {"a": fns["a"]}, compile=True).invoke(
            {"query": "q"}
        )


def test_autogen_transitions_and_graphflow_run():
    top = diamond()
    tr = to_autogen_transitions(top)
    assert tr == {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []}
    withj = Topology.full(["x", "y"], decision=AgentSpec("judge"))
    assert to_autogen_transitions(withj) == {"x": ["y"], "y": ["judge"], "judge": []}
    objs = {n: object() for n in ["x", "y", "judge"]}
    mapped = to_autogen_transitions(withj, objs)
    assert mapped[objs["x"]] == [objs["y"]]
    with pytest.raises(DataValidationError, match="no AutoGen agent given for judge"):
        to_autogen_transitions(withj, {"x": 1, "y": 2})

    env = make_environment(random_state=1)
    top = env.full_topology().prune(agents=[env.agents[0].name, env.agents[3].name])
    q = env.make_queries(1, random_state=2)[0]
    backend = SimulatedBackend(env)
    flow = to_autogen_graphflow(top, autogen_agents(top, backend))
    result = asyncio.run(flow.run(task=q.text))
    speakers = [m.source for m in result.messages if m.source != "user"]
    assert speakers == top.topological_order()
    expected = Executor(backend).run(top, q.text)
    assert [m.content for m in result.messages[1:]] == [
        expected.run_of(n).output for n in top.topological_order()
    ]
    with pytest.raises(DataValidationError, match="rounds=1"):
        to_autogen_graphflow(Topology.chain(["a", "b"], rounds=2), {})


def test_crewai_tasks_are_ordered_with_context():
    tasks = to_crewai_tasks(diamond())
    assert [t["name"] for t in tasks] == ["a", "b", "c", "d"]
    assert tasks[3]["context"] == ["b", "c"] and tasks[0]["context"] == []
    assert set(tasks[0]["agent"]) == {"role", "goal", "backstory"}
    withj = to_crewai_tasks(Topology.full(["x", "y"], decision=AgentSpec("judge", role="Judge")))
    assert withj[-1]["name"] == "judge" and withj[-1]["context"] == ["x", "y"]


def test_simulated_decision_agent_returns_the_majority_of_what_it_reads():
    env = make_environment(random_state=0)
    judged = env.full_topology(decision=AgentSpec("judge"))
    voted = env.full_topology(aggregator="majority")
    backend = SimulatedBackend(env)
    for q in env.make_queries(8, random_state=4):
        res = Executor(backend).run(judged, q.text)
        rule = Executor(backend).run(voted, q.text)
        assert res.decided_by == "decision:judge"
        assert "judge" in res.to_dict()["ledger"]["agents"]
        # the judge reads every active agent's final answer and returns their majority: what
        # the majority rule returns over the same (seeded) agent answers
        assert res.answer == rule.answer and res.answer in (q.answer, q.trap)
