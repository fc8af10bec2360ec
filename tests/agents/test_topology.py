from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataprune.agents import AgentSpec, Topology
from dataprune.agents.records import load_agp_records, validate_agp_records
from dataprune.agents.topology import acyclic_from_scores, find_cycle
from dataprune.errors import DataValidationError, UnknownOptionError

AGENTS = ["a", "b", "c", "d"]


def test_presets_structure():
    chain = Topology.chain(AGENTS)
    assert chain.edges() == [("a", "b"), ("b", "c"), ("c", "d")]
    assert chain.levels() == [["a"], ["b"], ["c"], ["d"]]
    star = Topology.star(AGENTS, center="b")
    assert star.levels() == [["b"], ["a", "c", "d"]]
    assert Topology.star(AGENTS, direction="in").levels() == [["b", "c", "d"], ["a"]]
    full = Topology.full(AGENTS)
    assert full.n_edges == 6 and full.topological_order() == AGENTS
    lay = Topology.layered(AGENTS, [1, 2, 1])
    assert lay.levels() == [["a"], ["b", "c"], ["d"]] and lay.n_edges == 4
    r1 = Topology.random(AGENTS, random_state=3)
    assert r1 == Topology.random(AGENTS, random_state=3)
    assert find_cycle(r1.adjacency) is None


def test_layered_by_names_prunes_the_agents_no_layer_names():
    lay = Topology.layered(AGENTS, [["d"], ["b", "a"]])
    assert sorted(lay.edges()) == [("d", "a"), ("d", "b")]
    assert lay.active.tolist() == [True, True, False, True]  # c is in no layer
    assert Topology.layered(AGENTS, [["a", "b"], ["c", "d"]]).active.all()
    with pytest.raises(DataValidationError, match="unknown agent 'e' in layers; agents are: a, b"):
        Topology.layered(AGENTS, [["a"], ["e"]])
    with pytest.raises(DataValidationError, match="an agent appears in more than one layer"):
        Topology.layered(AGENTS, [["a", "b"], ["b"]])
    with pytest.raises(DataValidationError, match=r"layer sizes \[2, 1\] must be >= 1 and sum"):
        Topology.layered(AGENTS, [2, 1])


def test_cycle_and_self_loop_rejected_with_names():
    A = np.zeros((3, 3))
    A[0, 1] = A[1, 2] = A[2, 0] = 1
    with pytest.raises(DataValidationError, match=r"cycle \(.*x -> y -> z -> x.*\)|cycle"):
        Topology(["x", "y", "z"], A)
    with pytest.raises(DataValidationError, match="x -> y -> z -> x"):
        Topology(["x", "y", "z"], A)
    with pytest.raises(DataValidationError, match="self-loop on agent 'y'"):
        Topology(["x", "y", "z"], np.diag([0, 1, 0]))
    with pytest.raises(DataValidationError, match=r"expected shape \(3, 3\)"):
        Topology(["x", "y", "z"], np.zeros((2, 2)))


def test_unknown_agent_names_and_duplicates():
    with pytest.raises(DataValidationError, match="unknown agent 'q'; agents are: a, b, c, d"):
        Topology.from_edges(AGENTS, [("a", "q")])
    with pytest.raises(DataValidationError, match="duplicate agent name 'a'"):
        Topology.full(["a", "a"])
    with pytest.raises(DataValidationError, match="not valid"):
        AgentSpec("bad name!")
    t = Topology.full(AGENTS)
    with pytest.raises(DataValidationError, match="unknown agent 'zz'"):
        t.prune(agents=["zz"])
    with pytest.raises(UnknownOptionError, match="valid: chain, full, layered, random, star"):
        Topology.preset("ring", AGENTS)


def test_pruned_agents_leave_every_view():
    t = Topology.full(AGENTS).prune(agents=["b"], edges=[("a", "d")])
    assert t.active_names == ["a", "c", "d"] and t.pruned_names == ["b"]
    assert ("a", "b") not in t.edges() and ("a", "d") not in t.edges()
    assert t.edges() == [("a", "c"), ("c", "d")]
    assert t.levels() == [["a"], ["c"], ["d"]]
    assert set(t.to_networkx().nodes) == {"a", "c", "d"}
    assert "b" in t.to_networkx(include_pruned=True).nodes
    assert t.to_numpy("agp_mask").tolist() == [0, 1, 0, 0]
    assert t.to_numpy("adjacency")[0, 1] == 0
    mer = t.to_mermaid()
    assert "class a_b pruned" in mer and "a_a --> a_c" in mer


def test_required_agent_cannot_be_pruned():
    agents = [AgentSpec("a", required=True), AgentSpec("b")]
    with pytest.raises(DataValidationError, match="'a' is required"):
        Topology.full(agents, active=[False, True])


def test_threshold_breaks_cycles_by_probability_then_row_major():
    P = np.array([[0, 0.9, 0.0], [0.8, 0, 0.7], [0.6, 0.0, 0]])
    t = Topology.from_edge_probabilities(["x", "y", "z"], P, threshold=0.5)
    # x->y (0.9) kept, y->x (0.8) would close a cycle, y->z (0.7) kept, z->x (0.6) closes x->y->z->x
    assert t.edges() == [("x", "y"), ("y", "z")]
    assert t.metadata["dropped_cycle_edges"] == [["y", "x"], ["z", "x"]]
    tie = np.array([[0, 0.5], [0.5, 0]])
    A, dropped = acyclic_from_scores(tie, tie >= 0.5)
    assert A[0, 1] and not A[1, 0] and dropped == [(1, 0)]


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 7), st.integers(0, 10_000), st.floats(0.0, 1.0))
def test_orders_and_levels_respect_every_edge(n, seed, thr):
    rng = np.random.default_rng(seed)
    P = rng.random((n, n))
    active = rng.random(n) < 0.8
    t = Topology.from_edge_probabilities(
        [f"g{i}" for i in range(n)], P, threshold=thr, active=active
    )
    order = t.topological_order()
    pos = {nm: k for k, nm in enumerate(order)}
    level = {nm: k for k, lvl in enumerate(t.levels()) for nm in lvl}
    assert sorted(order) == sorted(t.active_names)
    for s, d in t.edges():
        assert pos[s] < pos[d] and level[s] < level[d]
    assert find_cycle(t.effective_adjacency()) is None


def test_json_networkx_roundtrip(tmp_path):
    agents = [AgentSpec("a", role="R", profile="p", prompt_tokens=5), "b", "c"]
    t = Topology.from_edge_probabilities(
        agents,
        np.array([[0, 0.7, 0.2], [0, 0, 0.9], [0, 0, 0]]),
        active=[True, True, False],
        rounds=2,
        decision=AgentSpec("judge", role="Judge"),
        metadata={"k": 1},
    )
    back = Topology.from_json(t.to_json())
    assert back == t
    path = t.save(tmp_path / "t.json")
    assert Topology.load(path) == t
    g = t.to_networkx(include_pruned=True)
    t2 = Topology.from_networkx(g)
    assert t2.active_names == t.active_names and t2.edges() == t.edges()
    d = json.loads(t.to_json())
    d["edges"].append(["a", "nobody"])
    with pytest.raises(DataValidationError, match="unknown agent 'nobody'"):
        Topology.from_dict(d)
    with pytest.raises(DataValidationError, match="malformed JSON"):
        Topology.from_json("{")


def test_unrolled_rounds_and_temporal_edges():
    t = Topology.chain(["a", "b"], rounds=2)
    nodes, edges = t.unrolled()
    assert [n for n, _, _ in nodes] == ["a_r1", "b_r1", "a_r2", "b_r2"]
    assert ("a_r1", "a_r2") in edges and ("b_r1", "b_r2") in edges and ("a_r2", "b_r2") in edges


def test_agp_record_mask_one_means_pruned():
    rec = {"task": "q", "edge_weight": [[0, 0.8, 0.1], [0.2, 0, 0.6], [0, 0, 0]], "mask": [0, 0, 1]}
    t = Topology.from_agp_record(rec)
    assert t.active_names == ["agent_0", "agent_1"] and t.edges() == [("agent_0", "agent_1")]
    assert t.metadata["task"] == "q"
    back = t.to_agp_record("q")
    assert back["mask"] == [0, 0, 1] and back["edge_weight"][0][1] == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("rec", "msg"),
    [
        ({"task": "q", "mask": [0]}, "field 'edge_weight': missing field"),
        (
            {"task": "q", "edge_weight": [[0]], "mask": [2]},
            "expected 0 (agent runs) or 1 (agent pruned)",
        ),
        ({"task": "q", "edge_weight": [[0, 1]], "mask": [0, 0]}, "a list of 2 lists of 2 edge"),
        ({"task": "q", "edge_weight": [[0, 1.5], [0, 0]], "mask": [0, 0]}, "outside [0, 1]"),
        ({"task": "", "edge_weight": [[0]], "mask": [0]}, "field 'task'"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_malformed_records_name_record_and_field(rec, msg):
    with pytest.raises(DataValidationError) as ei:
        validate_agp_records([rec], source="x.json")
    assert msg in str(ei.value) and "x.json, record 0" in str(ei.value)


def test_records_agent_count_must_agree(tmp_path):
    recs = [
        {"task": "a", "edge_weight": [[0, 1], [0, 0]], "mask": [0, 0]},
        {"task": "b", "edge_weight": [[0]], "mask": [0]},
    ]
    with pytest.raises(
        DataValidationError, match=r"record 1.*has 1 agents but the agent pool has 2"
    ):
        validate_agp_records(recs)
    p = tmp_path / "r.jsonl"
    p.write_text(json.dumps(recs[0]) + "\n{broken\n")
    with pytest.raises(DataValidationError, match="line 2: malformed JSON"):
        load_agp_records(p)


@pytest.mark.shared_data
def test_released_agp_files_load_as_topologies(shared_data):
    expected = {
        "train_general_reasoning.json": (138, 9),
        "train_math_reasoning.json": (94, 4),
        "train_coding.json": (140, 5),
    }
    for fname, (n, k) in expected.items():
        recs = load_agp_records(shared_data / "agp" / fname)
        assert len(recs) == n and recs.n_agents == k
        raw = json.loads((shared_data / "agp" / fname).read_text())
        for r in raw[:40]:
            t = Topology.from_agp_record(r)
            assert t.to_numpy("agp_mask").tolist() == [int(m) for m in r["mask"]]
            assert find_cycle(t.effective_adjacency()) is None
    coding = json.loads((shared_data / "agp" / "train_coding.json").read_text())
    assert any("{" in r["task"] for r in coding)
