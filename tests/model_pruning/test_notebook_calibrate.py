from __future__ import annotations

import os
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "calibrate_model_pruning.ipynb"


def test_notebook_is_committed_without_outputs():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None


@pytest.mark.offline_models
@pytest.mark.shared_data
@pytest.mark.slow
def test_notebook_executes_with_a_tiny_model(monkeypatch, tmp_path, shared_data):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("PRUNE_NB_TINY", "1")
    monkeypatch.setenv("PRUNE_NB_OUT", str(tmp_path))
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
    assert "tiny model: True" in text
    assert "| calibration | PPL wiki | PPL c4 | PPL gsm8k | prune time (s) |" in text
    assert "| kcenter |" in text and "| gsm8k only |" in text
    assert "wanda 2:4: 50.00% zeros" in text
    assert "reloaded weights identical: True" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert (tmp_path / "calibration_comparison.png").exists()
    assert (tmp_path / "pruned-2of4" / "prune_report.json").exists()
