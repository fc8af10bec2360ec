"""``select(..., against_random=N)`` and :func:`compare_selection_with_random`."""

from __future__ import annotations

import json

import numpy as np
import pytest

import dataprune
from dataprune.errors import DataValidationError
from dataprune.selection import compare_selection_with_random

from fakes import HashingEncoder


def _records(n=60, skew=False):
    labels = (
        ["a"] * 40 + ["b"] * 15 + ["c"] * 5 if skew else [["a", "b", "c"][i % 3] for i in range(n)]
    )
    return [
        {"text": f"record {i} on topic {i % 7} " + "word " * (i % 11), "label": labels[i]}
        for i in range(n)
    ]


@pytest.fixture()
def enc(isolated_cache):
    return HashingEncoder(dim=16)


def test_comparisons_are_stored_seeded_and_name_every_measure(enc):
    kw = dict(method="kcenter", n_samples=12, text_field="text", label_field="label", model=enc)
    a = dataprune.select(_records(), random_state=3, against_random=10, **kw)
    b = dataprune.select(_records(), random_state=3, against_random=10, **kw)
    names = [c.name for c in a.comparisons]
    assert names[:4] == ["coverage", "classes_present", "label_distance", "label_imbalance"]
    assert all(len(c.random) == 10 for c in a.comparisons)
    assert [(c.kept, c.random.tolist()) for c in a.comparisons] == [
        (c.kept, c.random.tolist()) for c in b.comparisons
    ]
    assert a.params["against_random"] == 10
    # the selector's fitted attributes (distances to the kept set) are not compared
    assert not any(c.name.startswith("mean:") for c in a.comparisons)
    assert dataprune.select(_records(), random_state=3, **kw).comparisons == []


def test_class_balanced_is_more_balanced_than_every_random_subset(enc):
    res = dataprune.select(
        _records(skew=True),
        method="class_balanced",
        n_samples=15,
        label_field="label",
        random_state=0,
        against_random=20,
    )
    comps = {c.name: c for c in res.comparisons}
    assert "coverage" not in comps  # no text field named: nothing to embed
    imb = comps["label_imbalance"]
    assert imb.kept == pytest.approx(0.0) and imb.kept < imb.random.min()
    assert comps["classes_present"].kept == 3


def test_semdedup_keeps_no_duplicate_pair(enc):
    recs = _records(40)
    recs += [dict(recs[i]) for i in range(0, 40, 2)]  # 20 exact copies
    res = dataprune.select(
        recs, method="semdedup", n_samples=30, text_field="text", model=enc, against_random=20
    )
    dup = {c.name: c for c in res.comparisons}["duplicate_share"]
    assert dup.kept == 0.0 and dup.random.mean() > 0.0 and dup.rank + dup.ties == 20


def test_confident_learning_keeps_fewer_label_issues_than_random(enc):
    recs = _records(90)
    res = dataprune.select(
        recs,
        method="confident_learning",
        fraction=0.5,
        text_field="text",
        label_field="label",
        model=enc,
        random_state=0,
        n_folds=3,
        against_random=20,
    )
    assert res.details["n_label_issues"] > 0  # hashed texts: the labels look like noise
    share = {c.name: c for c in res.comparisons}["label_issue_share"]
    assert share.verdict == "better" and share.kept < share.random.min()


def test_methods_that_do_not_embed_use_the_default_encoder_for_coverage(monkeypatch, enc):
    import dataprune.models as models

    monkeypatch.setattr(models, "load_encoder", lambda *a, **k: enc)
    res = dataprune.select(
        _records(),
        method="longest",
        n_samples=10,
        text_field="text",
        unit="words",
        random_state=0,
        against_random=15,
    )
    comps = {c.name: c for c in res.comparisons}
    assert "coverage_encoder" in res.models and "coverage" in comps
    length = comps["mean:length_words"]  # a score of the records alone: compared
    assert length.kept > length.random.max()


def test_nothing_to_compare_when_every_candidate_is_kept(enc):
    res = dataprune.select(
        _records(9), method="random", n_samples=9, text_field="text", model=enc, against_random=5
    )
    assert res.comparisons == []


@pytest.mark.parametrize("bad", [-1, True, 1.5, "3"])
def test_against_random_must_be_a_count(enc, bad):
    with pytest.raises(DataValidationError, match="against_random: expected an integer >= 0"):
        dataprune.select(_records(), method="random", n_samples=5, against_random=bad)


def test_compare_validates_its_inputs(enc):
    res = dataprune.select(_records(), method="random", n_samples=5, random_state=0)
    n = len(res.candidates)
    with pytest.raises(DataValidationError, match=r"embeddings: expected shape \(60, dim\)"):
        compare_selection_with_random(res, embeddings=np.zeros((n - 1, 4)))
    with pytest.raises(DataValidationError, match=r"labels: expected shape \(60,\)"):
        compare_selection_with_random(res, labels=["a"] * 3)
    with pytest.raises(DataValidationError, match="n_subsets: expected an integer >= 1"):
        compare_selection_with_random(res, n_subsets=0)
    with pytest.raises(DataValidationError, match="'nope' not in the result's columns"):
        compare_selection_with_random(res, columns=["nope"])


def test_facility_location_covers_real_text_better_than_random(shared_data, isolated_cache):
    """MiniLM on Alpaca instructions: the coverage facility location maximises beats chance."""
    recs = json.loads((shared_data / "alpaca" / "alpaca_en_demo.json").read_text())[:300]
    res = dataprune.select(
        recs,
        method="facility_location",
        fraction=0.1,
        text_field="instruction",
        random_state=0,
        against_random=20,
    )
    cov = {c.name: c for c in res.comparisons}["coverage"]
    assert cov.verdict == "better" and cov.rank == 20


def test_precomputed_embeddings_serve_the_coverage_of_methods_that_do_not_embed():
    recs = _records(30)
    E = np.eye(30, 8, dtype=np.float32)
    E[8:] = np.eye(8, dtype=np.float32)[np.arange(22) % 8]
    res = dataprune.select(
        recs, method="random", n_samples=6, embeddings=E, random_state=0, against_random=5
    )
    assert "coverage" in {c.name for c in res.comparisons}
    assert "coverage_encoder" not in res.models  # nothing was encoded
    with pytest.raises(DataValidationError, match=r"embeddings must have shape \(30, dim\)"):
        dataprune.select(recs, method="random", n_samples=6, embeddings=E[:5], against_random=5)
