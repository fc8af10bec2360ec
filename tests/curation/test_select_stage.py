"""The ``select`` stage: labels, LM difficulty and text lengths reach the selector; the budget is
exact; keeping the hardest records without an offset warns."""

from __future__ import annotations

import logging

import numpy as np

from dataprune.curation import curate

from fakes import HashingEncoder
from tiny_models import CORPUS, tiny_causal_lm


def _sft(n=30):
    rng = np.random.default_rng(2)
    words = " ".join(CORPUS).split()
    return [
        {
            "uid": f"r{i}",
            "prompt": CORPUS[i % len(CORPUS)],
            "response": " ".join(rng.choice(words, size=int(rng.integers(2, 12)))),
            "label": "ab"[i % 5 == 0],  # 6 of "b", 24 of "a"
        }
        for i in range(n)
    ]


def _curate(data, select, n, **kw):
    return curate(
        data,
        {"stages": [{"select": select}]},
        n_samples=n,
        id_field="uid",
        random_state=0,
        report=False,
        show_progress_bar=False,
        **kw,
    )


def test_labels_reach_a_class_balanced_selection():
    data = _sft()
    res = _curate(
        data, {"method": "class_balanced"}, 10, label_field="label", encoder=HashingEncoder()
    )
    kept = [data[i]["label"] for i in res.kept_indices]
    assert len(kept) == 10 and kept.count("b") == 5  # balanced, not the pool's 1 in 5


def test_lm_difficulty_without_labels_and_the_keep_hard_warning(caplog):
    data = _sft()
    with caplog.at_level(logging.WARNING, logger="dataprune.curation"):
        res = _curate(data, {"method": "el2n"}, 8, lm=tiny_causal_lm())
    assert "keeps the hardest records by el2n without an offset" in caplog.text
    assert len(res.kept_indices) == 8
    # the kept records are the 8 highest selection scores (higher = keep)
    score = res.columns["selection_score"]
    assert np.isfinite(score).all()
    assert set(res.kept_indices) == set(np.argsort(-score, kind="stable")[:8])


def test_plain_text_lengths_select_the_longest():
    texts = [{"uid": f"t{i}", "text": "word " * (i + 1)} for i in range(12)]
    res = _curate(texts, {"method": "longest", "options": {"unit": "words"}}, 3)
    assert sorted(res.kept_indices.tolist()) == [9, 10, 11]
