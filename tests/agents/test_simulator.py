from __future__ import annotations

import numpy as np
import pytest

from dataprune.agents import Executor, SimulatedBackend, Topology
from dataprune.agents.simulator import (
    OraclePruner,
    SimAgent,
    SimulatedEnvironment,
    SimulatorConfig,
    SimulatorEvaluator,
    make_environment,
)
from dataprune.errors import DataValidationError


def small_env(alpha=0.7, beta=0.1) -> SimulatedEnvironment:
    agents = [
        SimAgent("spec", "S", "p", (0.9, 0.3), 100, 50),
        SimAgent("gen", "G", "p", (0.6, 0.6), 120, 40),
        SimAgent("weak", "W", "p", (0.2, 0.2), 90, 30),
    ]
    return SimulatedEnvironment(agents, ["t0", "t1"], alpha=alpha, beta=beta, random_state=0)


def test_exact_accuracy_by_hand():
    env = small_env()
    specs = env.agent_specs()
    single = Topology.full(specs).with_active(["spec"])
    assert env.expected_accuracy(single, 0) == pytest.approx(0.9)
    # gen reads spec: P(gen correct) = .6*(1-.1)^[spec wrong] + .4*(1-.3^[spec correct])
    pair = Topology.from_edges(
        specs, [("spec", "gen")], active=[True, True, False], aggregator="last"
    )
    p_gen = 0.9 * (0.6 + 0.4 * 0.7) + 0.1 * (0.6 * 0.9)
    assert env.expected_accuracy(pair, 0) == pytest.approx(p_gen)
    # majority of 2: both right, or a 1-1 tie won by the first voter (spec) => P(spec right)
    maj = Topology.full(specs, active=[True, True, False])
    assert env.expected_accuracy(maj, 0) == pytest.approx(0.9)
    # majority of 3 independent voters (no edges)
    ind = Topology(specs, np.zeros((3, 3)))
    p1, p2, p3 = 0.9, 0.6, 0.2
    maj3 = p1 * p2 + p1 * p3 + p2 * p3 - 2 * p1 * p2 * p3
    assert env.expected_accuracy(ind, 0) == pytest.approx(maj3)
    assert env.tokens(pair) == 100 + 50 + 120 + 40 + 50


@pytest.mark.parametrize("aggregator", ["majority", "sinks", "last"])
def test_exact_matches_monte_carlo(aggregator):
    env = small_env(alpha=0.6, beta=0.25)
    specs = env.agent_specs()
    tops = [
        Topology.full(specs, aggregator=aggregator),
        Topology.star(specs, center="gen", aggregator=aggregator),
        Topology.chain(specs, rounds=2, aggregator=aggregator),
    ]
    rng = np.random.default_rng(0)
    q = env.make_queries(1, random_state=0)[0]
    for top in tops:
        exact = env.expected_accuracy(top, q.qtype)
        mc = np.mean([env.simulate(top, q, random_state=rng) for _ in range(3000)])
        assert abs(mc - exact) < 4 * np.sqrt(exact * (1 - exact) / 3000) + 1e-3


def test_executor_on_simulated_backend_matches_exact_and_cost_model():
    env = make_environment(random_state=1)
    full = env.full_topology()
    star = Topology.star(env.agent_specs(), center=2)
    queries = env.make_queries(300, random_state=5)
    ex = Executor(SimulatedBackend(env), max_workers=4)
    for top in (full, star.prune(agents=[env.agents[0].name])):
        runs = [ex.run(top, q.text) for q in queries]
        emp = np.mean([r.answer == q.answer for r, q in zip(runs, queries)])
        exact = np.mean([env.expected_accuracy(top, q.qtype) for q in queries])
        assert abs(emp - exact) < 0.08
        assert all(r.ledger.total_tokens == env.tokens(top) for r in runs[:20])
    # deterministic: same query twice gives the same run
    a, b = ex.run(full, queries[0].text), ex.run(full, queries[0].text)
    assert [r.output for r in a.runs] == [r.output for r in b.runs]


def test_oracle_brute_force_is_optimal_and_consistent():
    env = make_environment(random_state=2)
    table = env.oracle_table()
    assert len(table) == 40068  # sub-graphs of the full mesh DAG on 6 agents (empty excluded)
    ref = env.tokens(env.full_topology())
    rng = np.random.default_rng(0)
    for k in rng.integers(0, len(table), 8):
        top = Topology(env.agent_specs(), table.adjacency[k], active=table.active[k])
        for t in range(env.n_types):
            assert env.expected_accuracy(top, t) == pytest.approx(table.accuracy[k, t], abs=1e-9)
        assert env.tokens(top) == pytest.approx(table.tokens[k])
    for t in range(env.n_types):
        o = env.oracle_topology(t, token_penalty=0.1)
        u_o = env.expected_accuracy(o, t) - 0.1 * env.tokens(o) / ref
        u_all = table.accuracy[:, t] - 0.1 * table.tokens / ref
        assert u_o == pytest.approx(u_all.max())
        tk, acc = table.frontier(t)
        assert np.all(np.diff(tk) >= 0) and np.all(np.diff(acc) >= 0)
        assert table.frontier_accuracy(t, ref) == pytest.approx(table.accuracy[:, t].max())
    pr = OraclePruner(env).fit()
    q = env.make_queries(1, random_state=9)[0]
    assert pr.predict(q.text) == env.oracle_topology(q.qtype)


def test_distractors_hurt_and_specialists_help():
    env = make_environment(SimulatorConfig(), random_state=0)
    specs = env.agent_specs()
    kinds = {a.name: a.kind for a in env.agents}
    for t in range(env.n_types):
        spec = next(
            a.name for a in env.agents if a.kind == "specialist" and np.argmax(a.competence) == t
        )
        alone = Topology.full(specs).with_active([spec])
        with_distr = Topology.full(specs).with_active(
            [spec] + [n for n, k in kinds.items() if k == "distractor"]
        )
        assert env.expected_accuracy(with_distr, t) < env.expected_accuracy(alone, t)


def test_evaluator_modes_and_validation():
    env = small_env()
    q = env.make_queries(1, random_state=0)[0]
    top = Topology.full(env.agent_specs())
    exact = SimulatorEvaluator(env, mode="expected").evaluate(q.text, top)
    assert exact.score == pytest.approx(env.expected_accuracy(top, q.qtype))
    ev = SimulatorEvaluator(env, mode="sample", n_repeats=4, random_state=1)
    scores = {ev.evaluate(q.text, top).score for _ in range(20)}
    assert scores <= {0.0, 0.25, 0.5, 0.75, 1.0} and len(scores) > 1
    with pytest.raises(DataValidationError, match="unknown evaluator mode"):
        SimulatorEvaluator(env, mode="guess")
    with pytest.raises(DataValidationError, match="competences"):
        SimulatedEnvironment([SimAgent("a", "", "", (0.5,), 1, 1)], ["x", "y"])
    too_big = Topology.full([f"x{i}" for i in range(3)])
    with pytest.raises(DataValidationError, match="not in the simulated environment"):
        env.expected_accuracy(too_big, 0)
