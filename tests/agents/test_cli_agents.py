from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dataprune.agents import Topology
from dataprune.cli.main import main


@pytest.fixture()
def fake_encoder(monkeypatch, hashing_encoder, isolated_cache):
    import dataprune.models as models

    monkeypatch.setattr(models, "load_encoder", lambda *a, **k: hashing_encoder)
    return hashing_encoder


@pytest.fixture()
def records(tmp_path):
    from dataprune.agents import mine_subgraphs
    from dataprune.agents.simulator import SimulatorEvaluator, make_environment

    env = make_environment(random_state=0)
    qs = [q.text for q in env.make_queries(30, random_state=1)]
    recs = mine_subgraphs(
        qs,
        env.full_topology(),
        SimulatorEvaluator(env, n_repeats=5),
        n_candidates=8,
        random_state=0,
    )
    p = tmp_path / "recs.json"
    p.write_text(json.dumps(recs))
    a = tmp_path / "agents.json"
    a.write_text(json.dumps([s.to_dict() for s in env.agent_specs()]))
    return p, a, env


def test_train_predict_export_roundtrip(tmp_path, capsys, fake_encoder, records):
    rec, agents, env = records
    model = tmp_path / "model"
    assert (
        main(
            [
                "agents",
                "train",
                "--records",
                str(rec),
                "--agents",
                str(agents),
                "-o",
                str(model),
                "--epochs",
                "3",
                "--hidden-dim",
                "8",
            ]
        )
        == 0
    )
    assert "trained AGP on 30 records (6 agents" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "model.manifest.json").read_text())
    assert manifest["command"] == "dataprune agents train" and manifest["counts"]["n_records"] == 30
    q = "Write a Python function that returns the maximum of a list of integers."
    assert main(["agents", "predict", "--model", str(model), "--query", q, "--json"]) == 0
    top = Topology.from_json(capsys.readouterr().out)
    assert top.names == [a.name for a in env.agents]
    assert (
        main(["agents", "predict", "--model", str(model), "--query", q, "--max-agents", "1"]) == 0
    )
    assert capsys.readouterr().out.startswith("1/6 agents active")
    tpath = tmp_path / "t.json"
    top.save(tpath)
    assert main(["agents", "export", "--format", "mermaid", "--topology", str(tpath)]) == 0
    assert capsys.readouterr().out.startswith("flowchart TD")
    out = tmp_path / "graph.py"
    assert (
        main(
            [
                "agents",
                "export",
                "--format",
                "langgraph",
                "--model",
                str(model),
                "--query",
                q,
                "-o",
                str(out),
            ]
        )
        == 0
    )
    assert "-> " + str(out) in capsys.readouterr().out
    assert "def build_graph(call_agent)" in out.read_text()
    compile(out.read_text(), str(out), "exec")
    assert (
        main(
            ["agents", "export", "--format", "autogen", "--preset", "star", "--agents", str(agents)]
        )
        == 0
    )
    payload = json.loads(capsys.readouterr().out)
    assert payload["allowed_speaker_transitions"][env.agents[0].name] == [
        a.name for a in env.agents[1:]
    ]
    assert (
        main(["agents", "export", "--format", "json", "--preset", "chain", "--agents", str(agents)])
        == 0
    )
    assert Topology.from_json(capsys.readouterr().out).n_edges == 5
    assert main(["agents", "export", "--format", "crewai", "--topology", str(tpath)]) == 0
    assert isinstance(json.loads(capsys.readouterr().out), list)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["agents", "predict", "--model", "{tmp}/none", "--query", "q"],
            "is not an AGP model directory",
        ),
        (
            ["agents", "train", "--records", "{tmp}/bad.json", "-o", "{tmp}/m"],
            "record 0, field 'mask'",
        ),
        (
            [
                "agents",
                "export",
                "--format",
                "json",
                "--preset",
                "chain",
                "--agents",
                "{tmp}/dup.json",
            ],
            "duplicate agent name 'x'",
        ),
        (["agents", "export", "--format", "json", "--model", "{tmp}/m"], "--model needs --query"),
        (
            ["agents", "export", "--format", "json", "--topology", "{tmp}/cyc.json"],
            "cycle (x -> y -> x)",
        ),
        (
            ["agents", "evaluate", "--records", "{tmp}/bad.json", "--test-fraction", "1.5"],
            "--test-fraction must be in (0, 1), got 1.5",
        ),
        (["agents", "evaluate", "--records", "{tmp}/bad.json"], "record 0, field 'mask'"),
    ],
)
def test_errors_are_one_line_exit_2(tmp_path, capsys, argv, expected):
    (tmp_path / "bad.json").write_text(
        json.dumps([{"task": "t", "edge_weight": [[0]], "mask": [3]}])
    )
    (tmp_path / "dup.json").write_text(json.dumps([{"name": "x"}, {"name": "x"}]))
    cyc = {"agents": [{"name": "x"}, {"name": "y"}], "edges": [["x", "y"], ["y", "x"]]}
    (tmp_path / "cyc.json").write_text(json.dumps(cyc))
    status = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1 and expected in err, err


def test_evaluate_prints_verdicts_and_writes_the_report(tmp_path, capsys, fake_encoder, records):
    recs, agents, env = records
    out = tmp_path / "ev.json"
    argv = ["agents", "evaluate", "--records", str(recs), "--agents", str(agents)]
    argv += ["--splits", "2", "--epochs", "2", "--hidden-dim", "8", "-o", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert (
        "AGP against the per-position majority (one fixed topology) on 2 random splits" in printed
    )
    assert printed.count("AGP - majority") == 4
    report = json.loads(out.read_text())
    assert report["command"] == "dataprune agents evaluate"
    assert report["report"]["n_splits"] == 2 and report["report"]["config"]["epochs"] == 2
    assert report["report"]["n_agents"] == len(env.agent_specs())
    assert set(report["report"]["paired"]) == {
        "node_mask_accuracy",
        "exact_mask_rate",
        "edge_accuracy",
        "edge_mae",
    }


def test_export_majority_of_records(tmp_path, capsys, records):
    recs, agents, env = records
    out = tmp_path / "fixed.json"
    argv = ["agents", "export", "--format", "json", "--majority-of", str(recs)]
    assert main([*argv, "--agents", str(agents), "-o", str(out)]) == 0
    top = Topology.load(out)
    from dataprune.agents import MajorityPruner

    expected = MajorityPruner([s.to_dict() for s in env.agent_specs()]).fit(str(recs))
    assert top.active_names == expected.topology_.active_names
    assert top.edges() == expected.topology_.edges()
    assert "wrote json export of" in capsys.readouterr().out
    assert main(["agents", "export", "--format", "mermaid", "--majority-of", str(recs)]) == 0
    assert capsys.readouterr().out.startswith("flowchart")


def test_agents_help_is_import_light():
    code = (
        "import sys; from dataprune.cli.main import build_parser; p = build_parser();"
        "p.parse_args(['agents', 'predict', '--model', 'm', '--query', 'q']);"
        "heavy = [m for m in ('torch', 'numpy', 'dataprune.agents.agp.pruner',"
        " 'dataprune.agents.topology') if m in sys.modules];"
        "print(heavy); assert not heavy"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "dataprune.cli.main", "agents", "--help"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and "train" in r.stdout and "export" in r.stdout
