"""The ``quality`` stage: each score, each kind of cut, and the reason every dropped record gets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dataprune.curation import curate
from dataprune.errors import DataValidationError

from fakes import HashingEncoder
from tiny_models import CORPUS, tiny_causal_lm


def _pool(n=40):
    rng = np.random.default_rng(1)
    recs = []
    for i in range(n):
        prompt = CORPUS[i % len(CORPUS)]
        words = " ".join(rng.choice(" ".join(CORPUS).split(), size=int(rng.integers(1, 15))))
        recs.append({"uid": f"r{i}", "prompt": prompt, "response": words, "label": f"c{i % 3}"})
    return recs


def _run(stage, data=None, **kw):
    data = _pool() if data is None else data
    return curate(
        data,
        {"stages": [{"quality": stage}]},
        id_field="uid",
        random_state=0,
        report=False,
        show_progress_bar=False,
        **kw,
    )


def _dropped(res):
    return res.status == "dropped"


def test_length_cuts_by_value_quantile_and_unit():
    data = _pool()
    words = np.array([len(r["response"].split()) for r in data], dtype=float)
    chars = np.array([len(r["response"]) for r in data], dtype=float)

    res = _run({"score": "length", "min": 3, "max": 10}, data)
    np.testing.assert_array_equal(res.columns["length"], words)
    np.testing.assert_array_equal(_dropped(res), (words < 3) | (words > 10))
    assert set(res.reason[(words < 3)]) == {"length below 3"}
    assert set(res.reason[(words > 10)]) == {"length above 10"}
    assert res.details["quality:length"]["cuts"] == {"min": 3.0, "max": 10.0}

    res = _run({"score": "length", "unit": "chars", "max_quantile": 0.5}, data)
    np.testing.assert_array_equal(res.columns["length"], chars)
    hi = float(np.quantile(chars, 0.5))
    np.testing.assert_array_equal(_dropped(res), chars > hi)
    # a value bound and a quantile bound together: the stricter one wins
    res = _run({"score": "length", "min": 2, "min_quantile": 0.25}, data)
    lo = max(2.0, float(np.quantile(words, 0.25)))
    assert res.details["quality:length"]["cuts"]["min"] == lo
    np.testing.assert_array_equal(_dropped(res), words < lo)

    res = _run({"score": "length", "drop_values": [1, 2]}, data)
    np.testing.assert_array_equal(_dropped(res), np.isin(words, [1, 2]))
    assert set(res.reason[_dropped(res)]) <= {"length = 1", "length = 2"}


def test_lm_scores_run_and_filter_on_their_own_columns():
    lm = tiny_causal_lm()
    data = _pool(24)
    res = _run({"score": "perplexity", "max_quantile": 0.75, "max_length": 64}, data, lm=lm)
    ppl = res.columns["perplexity"]
    assert np.isfinite(ppl).all() and (ppl > 1).all() and np.isfinite(res.columns["el2n"]).all()
    np.testing.assert_array_equal(_dropped(res), ppl > np.quantile(ppl, 0.75))

    res = _run({"score": "el2n", "min_quantile": 0.5, "max_length": 64}, data, lm=lm)
    el2n = res.columns["el2n"]
    np.testing.assert_array_equal(_dropped(res), el2n < np.quantile(el2n, 0.5))

    res = _run({"score": "ifd", "max": 1.0, "max_length": 64}, data, lm=lm)
    ifd = res.columns["ifd"]
    assert np.isfinite(ifd).all() and (ifd > 0).all()
    np.testing.assert_array_equal(_dropped(res), ifd > 1.0)
    assert set(res.reason[_dropped(res)]) <= {"ifd above 1"}


@pytest.mark.slow
@pytest.mark.offline_models
def test_qtuning_scores_name_the_triage_and_its_noise_rules(shared_data):
    from dataprune.models import load_causal_lm
    from dataprune.qtuning import QTuningTriage

    lines = (shared_data / "gsm8k" / "train.jsonl").read_text().splitlines()[:14]
    rows = [json.loads(line) for line in lines]
    data = [
        {"uid": f"r{i}", "prompt": r["question"], "response": r["answer"]}
        for i, r in enumerate(rows)
    ]
    data.append(dict(data[2], uid="copy2"))  # an exact copy: the triage's dedup leaves one out
    for i in range(3):  # answers rotated between questions 3-5
        data.append(
            dict(data[3 + i], uid=f"shuffled{i}", response=data[3 + (i + 1) % 3]["response"])
        )
    lm = load_causal_lm()
    noise = _run({"score": "qtuning_noise", "max_length": 256}, data, lm=lm)
    quad = _run({"score": "qtuning", "max_length": 256}, data, lm=lm)
    tri = QTuningTriage(model=lm[0], tokenizer=lm[1], max_length=256, random_state=0).fit(
        [r["prompt"] for r in data], [r["response"] for r in data]
    )
    # the stage is the library's default triage: its quadrants, and its noise rules as codes
    np.testing.assert_array_equal(quad.columns["qtuning"], tri.quadrant_)
    sel = np.array(tri.result_.to_table()["selection"])
    codes = {"duplicate": 1.0, "abrupt end": 2.0, "misaligned": 3.0}
    np.testing.assert_array_equal(noise.columns["qtuning_noise"], [codes.get(x, 0.0) for x in sel])
    # qtuning_noise drops exactly what a noise rule left out, and says which rule
    flagged = noise.columns["qtuning_noise"] > 0
    np.testing.assert_array_equal(_dropped(noise), flagged)
    assert noise.columns["qtuning_noise"][[2, 14]].tolist() in ([0.0, 1.0], [1.0, 0.0])
    names = {1.0: "near-duplicate", 2.0: "abrupt end", 3.0: "misaligned"}
    for i in np.flatnonzero(flagged):
        v = noise.columns["qtuning_noise"][i]
        assert noise.reason[i] == f"qtuning_noise = {v:g} ({names[v]})"
    # qtuning keeps what the triage keeps (a quarter), naming the side of the plane for the rest
    np.testing.assert_array_equal(~_dropped(quad), tri.result_.samples.kept)
    assert set(quad.reason[_dropped(quad)]) <= {
        "qtuning = 1 (not kept by the Q-Tuning triage, Q1 side)",
        "qtuning = 3 (not kept by the Q-Tuning triage, Q3 side)",
    }


def test_label_quality_drops_label_issues_unless_told_not_to():
    data = _pool(45)
    kw = {"label_field": "label", "encoder": HashingEncoder()}
    res = _run({"score": "label_quality"}, data, **kw)
    issue = res.columns["label_issue"] > 0
    assert res.columns["label_quality"].min() > 0 and res.columns["label_quality"].max() <= 1
    np.testing.assert_array_equal(_dropped(res), issue)
    assert set(res.reason[issue]) <= {"likely label issue (confident learning)"}
    res = _run({"score": "label_quality", "drop_label_issues": False}, data, **kw)
    assert not _dropped(res).any()


@pytest.mark.parametrize(
    ("stage", "match"),
    [
        ({"score": "length", "min_quantile": 1.5}, r"min_quantile.*a number in \[0, 1\]"),
        ({"score": "length", "min": 5, "max": 2}, r"min.*a value <= max \(2\)"),
        ({"score": "length", "min": 1, "unit": "tokens"}, r"unit.*'words' or 'chars'"),
        ({"score": "length"}, "at least one bound to filter on"),
        ({"score": "perplexity", "max": 9, "batch_size": 0}, r"batch_size/max_length"),
        ({"min": 1}, r"score.*one of .*length"),
    ],
)
def test_bad_quality_options_name_the_option(stage, match):
    with pytest.raises(DataValidationError, match=match):
        _run(stage)
