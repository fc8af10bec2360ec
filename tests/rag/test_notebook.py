from __future__ import annotations

import os
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "compress_rag_contexts.ipynb"


def test_notebook_is_committed_without_outputs():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None


@pytest.mark.offline_models
@pytest.mark.shared_data
@pytest.mark.slow
def test_notebook_executes_on_a_small_slice(monkeypatch, shared_data):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("RAG_NB_PASSAGES", "40")
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
    assert "answer kept:" in text and "T=0.1" in text
    assert any(
        "text/html" in o.get("data", {}) and "<mark" in o["data"]["text/html"] for o in outputs
    )
    assert any("image/png" in o.get("data", {}) for o in outputs)
