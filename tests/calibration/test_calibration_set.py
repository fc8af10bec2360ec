from __future__ import annotations

import numpy as np
import pytest
import torch

from dataprune.calibration import CalibrationSet, as_calibration_set
from dataprune.errors import DataValidationError


@pytest.fixture()
def padded():
    ids = np.array([[5, 6, 7, 8], [9, 10, 0, 0], [11, 0, 0, 0]])
    mask = (np.arange(4)[None, :] < np.array([4, 2, 1])[:, None]).astype(int)
    return CalibrationSet(ids, mask, {"selector": "x"}, ["a", "b", "c"], pad_token_id=0)


def test_tensor_batch(padded):
    t = padded.to_tensor()
    assert t["input_ids"].shape == (3, 4) and t["input_ids"].dtype == torch.int64
    assert t["attention_mask"].sum().item() == 7 == padded.n_tokens


def test_list_drops_padding(padded):
    rows = padded.to_list()
    assert [tuple(r.shape) for r in rows] == [(1, 4), (1, 2), (1, 1)]
    assert rows[1].tolist() == [[9, 10]]


def test_dataset_columns(padded):
    ds = padded.to_dataset()
    assert ds.column_names == ["input_ids", "attention_mask"]
    assert ds[1] == {"input_ids": [9, 10], "attention_mask": [1, 1]}


def test_batches_are_trimmed(padded):
    bs = list(padded.batches(2))
    assert [tuple(b["input_ids"].shape) for b in bs] == [(2, 4), (1, 1)]
    with pytest.raises(DataValidationError, match="batch_size must be >= 1"):
        list(padded.batches(0))


def test_forward_loop_runs_every_sample(padded):
    from tiny_models import tiny_causal_lm

    model, _ = tiny_causal_lm()
    seen = []
    h = model.register_forward_hook(
        lambda m, a, kw, out: seen.append(kw["input_ids"].shape), with_kwargs=True
    )
    loop = padded.forward_loop  # the ModelOpt-style callable
    loop(model)
    h.remove()
    assert seen == [torch.Size([1, 4]), torch.Size([1, 2]), torch.Size([1, 1])]


def test_save_load_roundtrip(padded, tmp_path):
    p = padded.save(tmp_path / "calib.npz")
    back = CalibrationSet.load(p)
    assert np.array_equal(back.input_ids, padded.input_ids)
    assert np.array_equal(back.attention_mask, padded.attention_mask)
    assert back.provenance == padded.provenance and back.texts == padded.texts
    with pytest.raises(DataValidationError, match=r"ending in \.npz"):
        padded.save(tmp_path / "calib.json")
    (tmp_path / "text.npz").write_text('{"text": "a"}')
    with pytest.raises(DataValidationError, match=r"text\.npz: not an \.npz archive; expected"):
        CalibrationSet.load(tmp_path / "text.npz")


def test_subset(padded):
    s = padded.subset([2, 0])
    assert s.input_ids[:, 0].tolist() == [11, 5] and s.texts == ["c", "a"]
    assert s.provenance["subset_indices"] == [2, 0]


def test_validation():
    with pytest.raises(DataValidationError, match="shape"):
        CalibrationSet(np.zeros((2, 3), int), np.ones((2, 2), int))
    with pytest.raises(DataValidationError, match="only 0 and 1"):
        CalibrationSet(np.zeros((1, 2), int), np.array([[1, 2]]))
    with pytest.raises(DataValidationError, match="record 1: calibration sample has no tokens"):
        CalibrationSet(np.zeros((2, 2), int), np.array([[1, 1], [0, 0]]))
    with pytest.raises(DataValidationError, match="integers"):
        CalibrationSet(np.zeros((1, 2)), np.ones((1, 2), int))


def test_as_calibration_set_variants():
    a = as_calibration_set(torch.tensor([[1, 2, 3]]))
    b = as_calibration_set({"input_ids": torch.tensor([[1, 2, 3]])})
    c = as_calibration_set([torch.tensor([1, 2, 3]), torch.tensor([[4]])])
    assert a.n_tokens == b.n_tokens == 3 and c.lengths.tolist() == [3, 1]
    with pytest.raises(DataValidationError, match="needs calibration data"):
        as_calibration_set(None)
    with pytest.raises(DataValidationError, match="'input_ids'"):
        as_calibration_set({"ids": [1]})


def test_concatenate(padded):
    other = CalibrationSet(np.array([[1, 2, 3, 4]]), np.ones((1, 4), int), {"selector": "y"}, ["d"])
    both = CalibrationSet.concatenate([padded, other], names=["code", "math"])
    assert both.n_samples == 4 and both.texts == ["a", "b", "c", "d"]
    assert both.provenance["selector"] == "x+y"
    assert [p["samples"] for p in both.provenance["parts"]] == [[0, 3], [3, 4]]
    assert both.provenance["parts"][1]["name"] == "math"
    short = CalibrationSet(np.ones((1, 2), int), np.ones((1, 2), int))
    with pytest.raises(DataValidationError, match="different seq_len"):
        CalibrationSet.concatenate([padded, short])
    with pytest.raises(DataValidationError, match="nothing to concatenate"):
        CalibrationSet.concatenate([])
