from __future__ import annotations

import json

import pytest


@pytest.mark.offline_models
def test_demo_step_compresses_retrieved_contexts(tmp_path, monkeypatch):
    from dataprune.demo import run_demo

    # run from a folder without ../shared/data so the built-in passages are used (installed case)
    monkeypatch.chdir(tmp_path)
    lines: list[str] = []
    run_demo(tmp_path / "out", only=["rag"], emit=lines.append)
    text = "\n".join(lines)
    assert "built-in Warsaw passages" in text
    assert "answer string still in the pruned context" in text
    assert "does it help here? `dataprune rag evaluate -i" in text
    assert "at the same compression bm25 keeps" in text or "bm25 cannot reach" in text
    labelled = (tmp_path / "out" / "rag_labelled.jsonl").read_text().splitlines()
    assert len(labelled) == 4 * 3 and any(json.loads(x)["evidence"] for x in labelled)
    rows = [
        json.loads(x)
        for x in (tmp_path / "out" / "rag_pruned_contexts.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 4 * 3
    assert {"query", "pruned_text", "kept_sentences", "passage_score"} <= set(rows[0])
    for r in rows:
        assert set(r["pruned_text"].split()) <= set(r["passage"].split())
