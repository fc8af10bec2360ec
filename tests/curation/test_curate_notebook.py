from __future__ import annotations

import pytest

from notebook_runner import run_notebook


@pytest.mark.offline_models
@pytest.mark.shared_data
@pytest.mark.slow
def test_notebook_executes_on_a_small_slice(monkeypatch, tmp_path, shared_data):
    run = run_notebook(
        "curate_sft_dataset.ipynb", monkeypatch, CURATE_NB_N="16", CURATE_NB_OUT=str(tmp_path)
    )
    text = run.text
    assert "el2n: kept 9 of 18 records" in text
    assert "kept_records=9" in text
    assert run.has_png
    assert (tmp_path / "curated.jsonl").exists() and (tmp_path / "pruning_curves.png").exists()
    assert (tmp_path / "curated.jsonl.status.parquet").exists()
    assert (tmp_path / "curated.jsonl.report.html").exists()
    assert "curate: kept 9 of 18 records" in text
