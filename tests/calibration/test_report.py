from __future__ import annotations

import json
import math

import numpy as np
import pytest

from dataprune.calibration import (
    CalibrationReport,
    CalibrationSet,
    activation_coverage,
    build_calibration_set,
    calibration_report,
    load_calibration_sets,
    token_diversity,
)
from dataprune.errors import DataValidationError


def _all_blocks(tok, texts, seq_len, **kw):
    """A calibration set holding every packed block of ``texts`` (in candidate order)."""
    n = build_calibration_set(texts, tok, n_samples=1, seq_len=seq_len).provenance["n_candidates"]
    c = build_calibration_set(texts, tok, n_samples=n, seq_len=seq_len, selector="longest", **kw)
    return c.subset(np.argsort(c.provenance["candidate_indices"]))


def test_token_diversity_by_hand():
    ids = np.array([[1, 1, 2, 0], [3, 1, 9, 9]])
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]])  # real tokens: 1 1 2 3 1
    distinct, entropy = token_diversity(ids, mask)
    assert distinct == pytest.approx(3 / 5)
    p = np.array([3, 1, 1]) / 5
    assert entropy == pytest.approx(float(-(p * np.log2(p)).sum()))
    assert entropy == pytest.approx(1.3709505944546687)
    assert token_diversity(np.full((2, 3), 7)) == (pytest.approx(1 / 6), 0.0)  # one token
    four = token_diversity(np.array([[1, 2, 3, 4]]))
    assert four == (1.0, pytest.approx(2.0))  # uniform over 4 tokens: 2 bits
    with pytest.raises(DataValidationError, match="of one shape"):
        token_diversity(ids, mask[:1])


def test_activation_coverage_by_hand():
    e = np.eye(3, dtype=np.float32)
    R = e[:, None, :]  # 3 reference blocks, 1 layer
    assert activation_coverage(R, R).tolist() == [0.0]
    # calibration = first axis only: distances 0, 1, 1
    assert activation_coverage(R, e[:1, None, :]) == pytest.approx([2 / 3])
    with pytest.raises(DataValidationError, match=r"shape \(n, n_layers, dim\)"):
        activation_coverage(R, e[:, :2][:, None, :])


def test_coverage_zero_for_the_reference_itself_larger_for_unrelated(tok, pool, lm):
    itself = _all_blocks(tok, pool, 8)
    half = itself.subset(range(0, itself.n_samples, 2))
    rng = np.random.default_rng(0)
    unrelated_ids = rng.integers(4, len(tok), size=(8, 8))
    unrelated = CalibrationSet(unrelated_ids, np.ones_like(unrelated_ids), {"selector": "noise"})
    rep = calibration_report(
        {"itself": itself, "half": half, "unrelated": unrelated},
        lm,
        tok,
        pool,
        max_reference_blocks=None,
    )
    assert isinstance(rep, CalibrationReport) and rep.layers == [1, 3, 5]
    cov = {s["name"]: s["coverage_mean"] for s in rep.sets}
    per_layer = rep.sets[0]["coverage"]
    assert set(per_layer) == {"1", "3", "5"} and all(abs(v) < 1e-5 for v in per_layer.values())
    assert cov["itself"] < 1e-5
    assert cov["half"] > cov["itself"] + 1e-3
    assert cov["unrelated"] > cov["half"]
    assert rep.reference["n_blocks"] == rep.reference["n_blocks_used"] == itself.n_samples
    assert rep.reference["seq_len"] == 8 and rep.reference["n_texts"] == 64
    row = rep.sets[0]
    assert row["n_samples"] == itself.n_samples and row["n_tokens"] == itself.n_tokens
    distinct, entropy = token_diversity(itself.input_ids, itself.attention_mask)
    assert row["distinct_token_ratio"] == distinct and row["unigram_entropy_bits"] == entropy
    assert row["sources"] is None
    # evenly spaced reference blocks at most; explicit layers
    small = calibration_report(
        [itself], lm, tok, pool, layers=[-1], max_reference_blocks=10, names=["x"]
    )
    assert small.layers == [5] and small.reference["n_blocks_used"] == 10
    assert small.sets[0]["name"] == "x" and small.sets[0]["coverage_mean"] < 1e-5


def test_sources_shares_markdown_and_atomic_json(tok, pool, lm, tmp_path, monkeypatch):
    src = ["a" if i < 48 else "b" for i in range(64)]
    mixed = build_calibration_set(
        pool, tok, n_samples=8, seq_len=8, sources=src, mix="balanced", random_state=0
    )
    parts = CalibrationSet.concatenate(
        [
            build_calibration_set(pool[:48], tok, n_samples=3, seq_len=8, random_state=0),
            build_calibration_set(pool[48:], tok, n_samples=1, seq_len=8, random_state=0),
        ],
        names=["web", "math"],
    )
    rep = calibration_report({"mixed": mixed, "parts": parts}, lm, tok, pool, layers=[0, 5])
    by = {s["name"]: s for s in rep.sets}
    assert by["mixed"]["sources"] == {
        "a": {"count": 4, "share": 0.5},
        "b": {"count": 4, "share": 0.5},
    }
    assert by["parts"]["sources"] == {
        "web": {"count": 3, "share": 0.75},
        "math": {"count": 1, "share": 0.25},
    }
    md = rep.to_markdown()
    assert md.splitlines()[0].startswith("| set | samples | tokens | distinct | entropy (bits)")
    assert "cov L0 | cov L5 | cov mean | sources |" in md.splitlines()[0]
    assert "| mixed | 8 | 64 |" in md and "a 50%, b 50%" in md and "web 75%, math 25%" in md
    assert "lower = better covered" in md
    # save: JSON through dataprune.atomic; a failed write leaves the old file and no temp file
    out = tmp_path / "rep.json"
    rep.save(out)
    data = json.loads(out.read_text())
    assert data["layers"] == [0, 5] and [s["name"] for s in data["sets"]] == ["mixed", "parts"]
    assert math.isclose(data["sets"][0]["coverage_mean"], rep.sets[0]["coverage_mean"])

    def boom(obj, fh, **kwargs):
        fh.write('{"partial": ')
        raise OSError("disk full")

    monkeypatch.setattr(json, "dump", boom)
    before = out.read_text()
    with pytest.raises(OSError, match="disk full"):
        rep.save(out)
    assert out.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep.json"]


def test_loading_saved_sets_and_folders(tok, pool, tmp_path):
    a = build_calibration_set(pool, tok, n_samples=3, seq_len=8, random_state=0)
    a.save(tmp_path / "random.npz")
    (tmp_path / "pruned").mkdir()
    a.save(tmp_path / "pruned" / "calibration.npz")
    got = load_calibration_sets([tmp_path / "random.npz", str(tmp_path / "pruned"), a, a])
    assert list(got) == ["random", "pruned", "set2", "set3"]
    np.testing.assert_array_equal(got["pruned"].input_ids, a.input_ids)
    assert list(load_calibration_sets([a, a], names=["x", "x"])) == ["x", "x-2"]
    assert list(load_calibration_sets({"k": tmp_path / "random.npz"})) == ["k"]
    with pytest.raises(DataValidationError, match=r"missing\.npz: no such file; expected a \.npz"):
        load_calibration_sets([tmp_path / "missing.npz"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataValidationError, match=r"empty: no calibration\.npz inside"):
        load_calibration_sets(tmp_path / "empty")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(DataValidationError, match=r"junk\.npz: not an \.npz archive") as err:
        load_calibration_sets(tmp_path / "junk.npz")
    assert "pickle" not in str(err.value)
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(DataValidationError, match=r"other\.npz: not a saved calibration set"):
        load_calibration_sets(tmp_path / "other.npz")
    with pytest.raises(DataValidationError, match="expected a CalibrationSet"):
        load_calibration_sets([3])
    with pytest.raises(DataValidationError, match="1 names for 2 calibration sets"):
        load_calibration_sets([a, a], names=["x"])
    with pytest.raises(DataValidationError, match="no calibration sets given"):
        load_calibration_sets([])


def test_bad_report_inputs(tok, pool, lm):
    a = build_calibration_set(pool, tok, n_samples=3, seq_len=8, random_state=0)
    big = np.full((2, 4), 500)
    other_vocab = CalibrationSet(big, np.ones_like(big), {"selector": "x"})
    with pytest.raises(DataValidationError, match=r"calibration set 'other': token ids must be in"):
        calibration_report({"ok": a, "other": other_vocab}, lm, tok, pool)
    with pytest.raises(DataValidationError, match="no block of seq_len=4096 tokens"):
        calibration_report(a, lm, tok, pool, seq_len=4096)
    with pytest.raises(DataValidationError, match="the reference texts are empty"):
        calibration_report(a, lm, tok, [])
    with pytest.raises(DataValidationError, match="max_reference_blocks must be a positive"):
        calibration_report(a, lm, tok, pool, max_reference_blocks=0)
    with pytest.raises(DataValidationError, match="layer 6 is out of range"):
        calibration_report(a, lm, tok, pool, layers=[6])
