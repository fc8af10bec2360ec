from __future__ import annotations

import numpy as np
import pytest

from dataprune.agents import (
    PRUNERS,
    AgentPrunePruner,
    Executor,
    ExecutorEvaluator,
    SimulatedBackend,
    Topology,
    make_pruner,
    mine_subgraphs,
    validate_agp_records,
)
from dataprune.agents.mining import Evaluation, candidate_subgraphs
from dataprune.agents.simulator import SimAgent, SimulatedEnvironment, SimulatorEvaluator
from dataprune.errors import DataValidationError, UnknownOptionError


def env3():
    agents = [
        SimAgent("spec", "S", "p", (0.95,), 100, 50),
        SimAgent("mid", "M", "p", (0.6,), 100, 50),
        SimAgent("bad", "B", "p", (0.1,), 100, 50),
    ]
    return SimulatedEnvironment(agents, ["t"], random_state=0)


class Counting:
    def __init__(self, inner):
        self.inner, self.n = inner, 0

    def evaluate(self, q, t):
        self.n += 1
        return self.inner.evaluate(q, t)


def test_exhaustive_candidates_and_limits():
    base = Topology.full(["a", "b", "c"])
    cands = candidate_subgraphs(base, strategy="exhaustive", n_candidates=100)
    # subsets: 3 singles + 3 pairs x 2 + 1 triple x 8 = 17
    assert len(cands) == 17 and len({c.key() for c in cands}) == 17
    with pytest.raises(DataValidationError, match="would evaluate 17"):
        candidate_subgraphs(base, strategy="exhaustive", n_candidates=10)
    with pytest.raises(UnknownOptionError, match="valid: exhaustive, random"):
        candidate_subgraphs(base, strategy="bogus")
    rnd = candidate_subgraphs(base, strategy="random", n_candidates=8, random_state=0)
    assert rnd[0] == base and len(rnd) == 8


def test_mining_finds_the_best_subgraph_and_resumes(tmp_path):
    env = env3()
    base = env.full_topology()
    qs = [q.text for q in env.make_queries(6, random_state=0)]
    ev = Counting(SimulatorEvaluator(env, mode="expected"))
    ck = tmp_path / "mined.jsonl"
    recs = mine_subgraphs(
        qs[:3], base, ev, strategy="exhaustive", n_candidates=100, checkpoint=ck, random_state=0
    )
    validate_agp_records(recs)
    table = [
        (env.expected_accuracy(c, 0) - 0.1 * env.tokens(c) / env.tokens(base), c)
        for c in candidate_subgraphs(base, strategy="exhaustive", n_candidates=100)
    ]
    best = max(table, key=lambda x: x[0])[1]
    assert recs[0]["mask"] == [int(not a) for a in best.active] == [0, 1, 1]
    n_before = ev.n
    recs2 = mine_subgraphs(
        qs, base, ev, strategy="exhaustive", n_candidates=100, checkpoint=ck, random_state=0
    )
    assert recs2[:3] == recs and len(recs2) == 6
    per_query = (n_before - 1) // 3  # 1 reference run + successive halving per query
    assert per_query == 17 + 9 + 5 + 3 + 2
    assert ev.n - n_before == 1 + 3 * per_query  # resumed: only the 3 new queries were mined
    assert len(ck.read_text().splitlines()) == 6
    greedy = mine_subgraphs(
        qs[:2],
        base,
        SimulatorEvaluator(env, mode="expected"),
        strategy="greedy",
        n_candidates=40,
        random_state=0,
    )
    assert greedy[0]["mask"] == [0, 1, 1]


def test_executor_evaluator_runs_real_agents_path():
    env = env3()
    q = env.make_queries(3, random_state=1)
    truth = {x.text: x.answer for x in q}
    ev = ExecutorEvaluator(
        Executor(SimulatedBackend(env)), lambda query, ans: float(ans == truth[query])
    )
    e = ev.evaluate(q[0].text, env.full_topology())
    assert (
        isinstance(e, Evaluation)
        and e.score in (0.0, 1.0)
        and e.tokens == env.tokens(env.full_topology())
    )
    recs = mine_subgraphs(
        [x.text for x in q],
        env.full_topology(),
        ev,
        n_candidates=6,
        show_progress_bar=False,
        random_state=0,
    )
    assert len(recs) == 3 and all(len(r["mask"]) == 3 for r in recs)


def test_registry_and_simple_baselines():
    assert set(PRUNERS.names()) >= {
        "agp",
        "agentprune",
        "majority",
        "full",
        "chain",
        "star",
        "layered",
        "random",
    }
    with pytest.raises(
        UnknownOptionError, match="unknown agent pruner 'ring'; valid: agentprune, agp"
    ):
        make_pruner("ring")
    agents = ["a", "b", "c", "d"]
    assert make_pruner("full", agents=agents).fit().predict("q").n_edges == 6
    assert (
        make_pruner("chain", agents=agents).fit().predict("q").edges()
        == Topology.chain(agents).edges()
    )
    assert make_pruner("star", agents=agents).fit().predict("q").levels() == [
        ["a"],
        ["b", "c", "d"],
    ]
    r = make_pruner("random", agents=agents, random_state=1).fit()
    assert r.predict("x") == r.predict("x")
    assert len({r.predict(f"q{i}").key() for i in range(10)}) > 3
    assert make_pruner("agp").__class__.__name__ == "AGPPruner"


def test_agentprune_learns_global_edges_with_magnitude_pruning():
    env = env3()
    base = env.full_topology()
    qs = [q.text for q in env.make_queries(10, random_state=0)]
    ap = AgentPrunePruner(
        base=base, n_iterations=60, batch_size=4, prune_every=20, pruning_rate=0.34, random_state=0
    ).fit(queries=qs, evaluator=SimulatorEvaluator(env, n_repeats=4))
    assert ap.pruned_.sum() >= 1 and not (ap.pruned_ & ~base.adjacency).any()
    t = ap.predict("anything")
    assert t.n_active_agents == 3  # AgentPrune never removes agents
    assert t == ap.predict("something else")  # one global graph
    assert not (t.effective_adjacency() & ap.pruned_).any()
    assert np.mean(ap.history_[-15:]) >= np.mean(ap.history_[:15]) - 0.05
    with pytest.raises(DataValidationError, match="needs training queries and an evaluator"):
        AgentPrunePruner(base=base).fit()


def _agp_record(task, keep, edges):
    n = len(keep)
    w = [[0.0] * n for _ in range(n)]
    for i, j in edges:
        w[i][j] = 1.0
    return {"task": task, "edge_weight": w, "mask": [1 - k for k in keep]}


def test_majority_pruner_is_one_fixed_topology_of_the_records(tmp_path):
    import json

    recs = [
        _agp_record("q1", [1, 1, 0], [(0, 1)]),
        _agp_record("q2", [1, 1, 1], [(0, 1), (1, 2)]),
        _agp_record("q3", [1, 0, 1], [(0, 2)]),
    ]
    m = make_pruner("majority", agents=["a", "b", "c"]).fit(recs)
    np.testing.assert_allclose(m.node_prob_, [1.0, 2 / 3, 2 / 3])
    assert m.edge_prob_[0, 1] == pytest.approx(2 / 3) and m.edge_prob_[1, 2] == pytest.approx(1 / 3)
    top = m.predict("any query")
    assert top == m.predict("another query")  # the same topology for every query
    assert top.active_names == ["a", "b", "c"] and top.edges() == [("a", "b")]
    strict = make_pruner("majority", agents=["a", "b", "c"], node_threshold=0.9).fit(recs)
    assert strict.predict("q").active_names == ["a"]
    path = tmp_path / "recs.json"
    path.write_text(json.dumps(recs))
    default_names = make_pruner("majority").fit(str(path)).predict("q")
    assert [a.name for a in default_names.agents] == ["agent_0", "agent_1", "agent_2"]
    with pytest.raises(
        DataValidationError, match="record 0, field 'mask': has 3 agents but the agent pool has 2"
    ):
        make_pruner("majority", agents=["a", "b"]).fit(recs)
    with pytest.raises(DataValidationError, match="needs Stage I records"):
        make_pruner("majority", agents=["a"]).fit()
