from __future__ import annotations

import pytest

from notebook_runner import run_notebook


@pytest.mark.offline_models
@pytest.mark.slow
def test_notebook_executes_on_a_small_slice(monkeypatch):
    run = run_notebook("configure_agent_topologies.ipynb", monkeypatch, AGENTS_NB_TRAIN="45")
    text = run.text
    assert "LangGraph answer:" in text and "flowchart TD" in text and "Stage II final loss" in text
    line = next(ln for ln in text.splitlines() if ln.startswith("LangGraph answer:"))
    lg, ex = line.split("|")[0].split(":")[1].strip(), line.split("|")[1].split(":")[1].strip()
    assert lg == ex
    assert run.has_png
