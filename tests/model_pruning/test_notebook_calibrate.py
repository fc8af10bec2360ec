from __future__ import annotations

import pytest

from notebook_runner import run_notebook


@pytest.mark.offline_models
@pytest.mark.shared_data
@pytest.mark.slow
def test_notebook_executes_with_a_tiny_model(monkeypatch, tmp_path, shared_data):
    run = run_notebook(
        "calibrate_model_pruning.ipynb", monkeypatch, PRUNE_NB_TINY="1", PRUNE_NB_OUT=str(tmp_path)
    )
    text = run.text
    assert "tiny model: True" in text
    assert "| calibration | PPL wiki | PPL c4 | PPL gsm8k | prune time (s) |" in text
    assert "| kcenter |" in text and "| gsm8k only |" in text
    assert "| set | samples | tokens | distinct | entropy (bits) |" in text  # calibration_report
    assert "wanda 2:4: 50.00% zeros" in text
    assert "reloaded weights identical: True" in text
    assert run.has_png
    assert (tmp_path / "calibration_comparison.png").exists()
    assert (tmp_path / "pruned-2of4" / "prune_report.json").exists()
