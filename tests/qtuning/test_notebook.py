from __future__ import annotations

import pytest

from notebook_runner import run_notebook


@pytest.mark.offline_models
@pytest.mark.slow
def test_notebook_executes_on_a_small_slice(monkeypatch):
    run = run_notebook(
        "qtuning_triage.ipynb", monkeypatch, QTUNING_NB_N="16", QTUNING_NB_TRAIN_STEPS="1"
    )
    text = run.text
    assert "carry loss" in text and "kept_samples" in text
    assert run.has_png
