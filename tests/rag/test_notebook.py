from __future__ import annotations

import pytest

from notebook_runner import run_notebook


@pytest.mark.offline_models
@pytest.mark.shared_data
@pytest.mark.slow
def test_notebook_executes_on_a_small_slice(monkeypatch, shared_data):
    run = run_notebook("compress_rag_contexts.ipynb", monkeypatch, RAG_NB_PASSAGES="40")
    text = run.text
    assert "answer kept:" in text and "T=0.1" in text
    assert any("<mark" in html for html in run.html())
    assert run.has_png
