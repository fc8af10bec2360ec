from __future__ import annotations

import os
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "configure_agent_topologies.ipynb"


def test_notebook_is_committed_without_outputs():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None


@pytest.mark.offline_models
@pytest.mark.slow
def test_notebook_executes_on_a_small_slice(monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("AGENTS_NB_TRAIN", "45")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute(env=dict(os.environ))
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs
    )
    assert "LangGraph answer:" in text and "flowchart TD" in text and "Stage II final loss" in text
    line = next(ln for ln in text.splitlines() if ln.startswith("LangGraph answer:"))
    lg, ex = line.split("|")[0].split(":")[1].strip(), line.split("|")[1].split(":")[1].strip()
    assert lg == ex
    assert any("image/png" in o.get("data", {}) for o in outputs)
