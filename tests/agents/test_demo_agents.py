from __future__ import annotations

import json

import pytest


@pytest.mark.offline_models
def test_demo_step_runs_without_shared_data(tmp_path):
    from dataprune.demo import run_demo

    lines: list[str] = []
    run_demo(tmp_path, only=["agents"], emit=lines.append)
    text = "\n".join(lines)
    assert "Stage I: mined 120 records" in text and "fewer tokens" in text
    assert "executed on the simulated backend" in text
    assert (tmp_path / "agp_model" / "model.safetensors").is_file()
    run = json.loads((tmp_path / "execution.json").read_text())
    assert run["ledger"]["total_tokens"] > 0
    assert all(r["attempts"] == 0 for r in run["runs"] if r["status"] == "pruned")
