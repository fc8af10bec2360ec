from __future__ import annotations

import json

import pytest


@pytest.mark.offline_models
def test_demo_step_runs_without_shared_data(tmp_path):
    from dataprune.agents import FlowPolicy
    from dataprune.demo import run_demo

    lines: list[str] = []
    run_demo(tmp_path, only=["agents"], emit=lines.append)
    text = "\n".join(lines)
    assert "Stage I: mined 120 records" in text and "fewer tokens" in text
    assert "executed on the simulated backend" in text
    assert "one fixed topology for every query (the records' per-position majority" in text
    assert (tmp_path / "agp_model" / "model.safetensors").is_file()
    run = json.loads((tmp_path / "execution.json").read_text())
    assert run["ledger"]["total_tokens"] > 0
    assert all(r["attempts"] == 0 for r in run["runs"] if r["status"] == "pruned")
    # the dynamic run next to AGP's topology: path, tokens and stop reason
    assert "PriorDynaFlow: policy trained on the same 120 queries" in text
    path_line = next(ln for ln in lines if "dynamic run of the same query: path " in ln)
    trace = json.loads((tmp_path / "flow_trace.json").read_text())
    assert path_line.endswith(" -> ".join([*trace["path"], "STOP"]))
    assert trace["path"] and trace["stopped_by"] in {"policy", "max_steps", "budget"}
    assert f"{trace['total_tokens']} tokens, stopped by {trace['stopped_by']}" in text
    assert trace["total_tokens"] == trace["ledger"]["total_tokens"] > 0
    assert "AGP's topology ran" in text
    assert (tmp_path / "flow_topology.mmd").read_text().startswith("flowchart TD")
    policy = FlowPolicy.load(tmp_path / "flow_policy.json")
    assert policy.n_episodes_ > 0 and policy.trained_on_["kind"] == "simulator"
