from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dataprune.calibration import build_calibration_set
from dataprune.errors import DataValidationError
from dataprune.model_pruning import MagnitudePruner, WandaPruner, compare_calibration, perplexity
from dataprune.model_pruning.perplexity import perplexity_of_ids, tokenize_eval_texts

from tiny_models import CORPUS


def test_perplexity_equals_hf_loss_on_one_window(model, tok):
    ids = tokenize_eval_texts(tok, CORPUS)
    res = perplexity_of_ids(model, ids, seq_len=len(ids))
    with torch.no_grad():
        x = torch.from_numpy(ids)[None]
        loss = model(input_ids=x, labels=x).loss.item()
    assert res.n_windows == 1 and res.n_tokens == len(ids) - 1
    assert res.mean_nll == pytest.approx(loss, rel=1e-5)
    assert res.perplexity == pytest.approx(math.exp(loss), rel=1e-5)


def test_windows_and_batching_agree(model, tok):
    ids = tokenize_eval_texts(tok, CORPUS * 3)
    a = perplexity_of_ids(model, ids, seq_len=10, batch_size=1)
    b = perplexity_of_ids(model, ids, seq_len=10, batch_size=4)
    assert a.n_windows == math.ceil(len(ids) / 10) or a.n_windows == len(ids) // 10
    assert a.n_tokens == b.n_tokens and a.mean_nll == pytest.approx(b.mean_nll, rel=1e-5)
    capped = perplexity(model, tok, CORPUS * 3, seq_len=10, max_tokens=25)
    assert capped.n_tokens == 9 + 9 + 4


def test_perplexity_errors(model, tok):
    with pytest.raises(DataValidationError, match="no evaluation texts"):
        perplexity(model, tok, [])
    with pytest.raises(DataValidationError, match="record 1"):
        perplexity(model, tok, ["a b", 3])
    with pytest.raises(DataValidationError, match="seq_len must be >= 2"):
        perplexity(model, tok, CORPUS, seq_len=1)


def test_compare_calibration_table_plot_and_restore(model, tok, tmp_path):
    pool = [f"{a} {b}" for a in CORPUS for b in CORPUS]
    sets = {
        "random": build_calibration_set(pool, tok, n_samples=4, seq_len=12, random_state=0),
        "longest": build_calibration_set(
            pool, tok, n_samples=4, seq_len=12, selector="longest", chunking="truncate"
        ),
    }
    dense = {k: v.clone() for k, v in model.state_dict().items()}
    res = compare_calibration(
        model,
        WandaPruner(sparsity=0.5),
        sets,
        {"corpus": CORPUS, "pairs": pool[:20]},
        seq_len=16,
        plot_path=tmp_path / "cmp.png",
    )
    assert res.calibrations == ["dense", "random", "longest"]
    assert res.evals == ["corpus", "pairs"] and len(res.rows) == 6
    for r in res.rows:
        if r["calibration"] == "dense":
            assert r["ratio_vs_dense"] == 1.0 and r["prune_time_s"] is None
        else:
            assert r["sparsity"] == pytest.approx(0.5) and r["prune_time_s"] > 0
            assert r["perplexity"] != res.perplexity("dense", r["eval"])
    assert res.best("corpus") in ("random", "longest")
    assert (tmp_path / "cmp.png").stat().st_size > 1000
    md = res.to_markdown()
    assert md.splitlines()[0] == "| calibration | PPL corpus | PPL pairs | prune time (s) |"
    assert set(res.reports) == {"random", "longest"}
    for k, v in model.state_dict().items():
        assert torch.equal(v, dense[k]), k  # the dense weights are back
    res.save(tmp_path / "cmp.json")


def test_compare_with_data_free_pruner_and_errors(model, tok):
    res = compare_calibration(
        model, MagnitudePruner(sparsity=0.5), {"none": None}, CORPUS, tokenizer=tok, seq_len=16
    )
    assert res.evals == ["eval"] and res.pruner == "magnitude"
    with pytest.raises(DataValidationError, match="pass tokenizer="):
        compare_calibration(model, MagnitudePruner(sparsity=0.5), {"none": None}, CORPUS)
    with pytest.raises(DataValidationError, match="at least one calibration set"):
        compare_calibration(model, MagnitudePruner(sparsity=0.5), {}, CORPUS, tokenizer=tok)
    ids = np.zeros((1, 4), int)
    with pytest.raises(DataValidationError, match="reserved"):
        compare_calibration(model, WandaPruner(sparsity=0.5), {"dense": ids}, CORPUS, tokenizer=tok)
