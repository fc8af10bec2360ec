"""The one-call API ``dataprune.select``."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import dataprune
from dataprune.errors import DataValidationError, UnknownOptionError
from dataprune.io import RecordSet, load_records

from fakes import HashingEncoder
from tiny_models import tiny_causal_lm


def _records(n=40):
    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"]
    return [
        {
            "id": i,
            "text": " ".join(rng.choice(words, size=6)) + f" {i}",
            "label": ["x", "y", "z"][i % 3],
        }
        for i in range(n)
    ]


@pytest.fixture()
def enc(isolated_cache):
    return HashingEncoder(dim=16)


def test_lazy_export_keeps_import_light():
    code = (
        "import sys, dataprune; assert 'numpy' not in sys.modules, 'numpy imported';"
        "f = dataprune.select; assert callable(f); assert 'numpy' in sys.modules;"
        "from dataprune import SelectionResult"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_list_in_list_out(enc):
    recs = _records()
    res = dataprune.select(
        recs, method="kcenter", n_samples=10, text_field="text", model=enc, random_state=0
    )
    assert isinstance(res.dataset, list) and len(res.dataset) == 10 == res.budget
    assert res.dataset == [recs[i] for i in res.indices]
    assert all(a is recs[i] for a, i in zip(res.dataset, res.indices))  # originals, not copies
    assert np.all(np.diff(res.indices) > 0)
    assert sorted(res.order.tolist()) == res.indices.tolist()
    assert res.kept.sum() == 10 and set(np.flatnonzero(res.kept)) == set(res.indices.tolist())
    assert res.scores.shape == res.rank.shape == (40,)
    assert set(res.rank[res.kept].tolist()) == set(range(10))
    assert "min_distances" in res.columns
    assert res.models["encoder"]["name"] == enc.name
    assert res.params["method"] == "kcenter" and res.params["budget"] == 10


def test_hf_dataset_and_recordset_round_trip(enc):
    datasets = pytest.importorskip("datasets")
    recs = _records()
    ds = datasets.Dataset.from_list(recs)
    res = dataprune.select(ds, method="random", fraction=0.25, random_state=1)
    assert isinstance(res.dataset, datasets.Dataset) and len(res.dataset) == 10
    assert res.dataset["id"] == res.indices.tolist()
    rs = load_records(recs)
    res2 = dataprune.select(rs, method="random", fraction=0.25, random_state=1)
    assert isinstance(res2.dataset, RecordSet)
    assert res2.dataset.indices == res.indices.tolist()
    np.testing.assert_array_equal(res.indices, res2.indices)


def test_file_input_gives_recordset(tmp_path, enc):
    from dataprune.io import write_records

    path = write_records(_records(), tmp_path / "in.parquet")
    res = dataprune.select(
        str(path),
        method="prototypes",
        n_samples=5,
        text_field="text",
        model=enc,
        random_state=0,
        keep="easy",
    )
    assert isinstance(res.dataset, RecordSet) and len(res.dataset.records) == 5
    assert "distances" in res.columns and "cluster" in res.columns


def test_determinism_and_seed_dependence(enc):
    recs = _records()
    kw = dict(method="semdedup", fraction=0.5, text_field="text", model=enc)
    a = dataprune.select(recs, random_state=3, **kw)
    b = dataprune.select(recs, random_state=3, **kw)
    c = dataprune.select(recs, random_state=4, **kw)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert not np.array_equal(a.indices, c.indices)


def test_empty_text_reported_and_excluded(enc, caplog):
    recs = _records(20)
    recs[4]["text"] = "   "
    recs[9]["text"] = ""
    res = dataprune.select(
        recs, method="facility_location", fraction=1.0, text_field="text", model=enc, random_state=0
    )
    assert res.empty_indices.tolist() == [4, 9]
    assert res.budget == 18 and not res.kept[[4, 9]].any()
    assert np.isnan(res.scores[[4, 9]]).all() and (res.rank[[4, 9]] == -1).all()
    assert "2 records have empty text" in caplog.text
    keep = dataprune.select(
        recs, method="random", fraction=1.0, text_field="text", empty_text="keep", random_state=0
    )
    assert keep.budget == 20 and keep.empty_indices.tolist() == [4, 9]


def test_rejected_records_keep_original_positions(enc):
    recs = _records(12)
    recs[2] = {"id": 2, "label": "x"}  # no text field
    recs[7]["text"] = 7  # wrong type
    res = dataprune.select(
        recs, method="random", n_samples=10, text_field="text", on_bad_record="skip", random_state=0
    )
    assert res.n_input == 12 and res.rejected_indices.tolist() == [2, 7]
    assert not res.kept[[2, 7]].any() and res.kept.sum() == 10
    assert [r["id"] for r in res.dataset] == res.indices.tolist()
    with pytest.raises(DataValidationError, match="record 2"):
        dataprune.select(recs, method="random", n_samples=3, text_field="text")


def test_precomputed_embeddings(enc):
    recs = _records(30)
    E = HashingEncoder(dim=8).encode([r["text"] for r in recs])
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    res = dataprune.select(recs, method="kcenter", n_samples=5, embeddings=E, random_state=0)
    assert res.models["encoder"]["name"] == "precomputed embeddings"
    with pytest.raises(DataValidationError, match=r"shape \(30, dim\)"):
        dataprune.select(recs, method="kcenter", n_samples=5, embeddings=E[:5])


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"method": "magic", "n_samples": 3}, UnknownOptionError, "valid: ccs, class_balanced"),
        ({"method": "random", "n_samples": 0}, DataValidationError, ">= 1"),
        ({"method": "random", "n_samples": 41}, DataValidationError, "more than the 40"),
        ({"method": "random", "fraction": 0.0}, DataValidationError, r"\(0, 1\]"),
        ({"method": "random", "fraction": 1.01}, DataValidationError, r"\(0, 1\]"),
        ({"method": "random"}, DataValidationError, "exactly one"),
        ({"method": "class_balanced", "n_samples": 3}, DataValidationError, "label field"),
        (
            {"method": "el2n", "n_samples": 3, "text_field": "text"},
            DataValidationError,
            "needs labels .* or SFT records",
        ),
        (
            {"method": "prototypes", "n_samples": 3, "text_field": "text", "bogus": 1},
            UnknownOptionError,
            "valid: keep, n_clusters, n_iter",
        ),
        (
            {"method": "random", "n_samples": 3, "text_field": "text", "prompt_field": "p"},
            DataValidationError,
            "not both",
        ),
    ],
)
def test_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        dataprune.select(_records(), **kwargs)


def test_text_field_defaults_to_text_when_the_records_have_it(enc):
    recs = _records()
    named = dataprune.select(
        recs, method="kcenter", n_samples=5, text_field="text", model=enc, random_state=0
    )
    default = dataprune.select(recs, method="kcenter", n_samples=5, model=enc, random_state=0)
    assert default.indices.tolist() == named.indices.tolist()
    bodies = [{"body": r["text"]} for r in recs]
    with pytest.raises(DataValidationError, match=r"no 'text' field \(record 0 has 'body'\)"):
        dataprune.select(bodies, method="kcenter", n_samples=3, model=enc)


def test_labelled_difficulty_methods(enc):
    recs = _records(60)
    for method, extra in [("el2n", {"offset": 0.1}), ("grand", {}), ("ccs", {"beta": 0.2})]:
        res = dataprune.select(
            recs,
            method=method,
            fraction=0.3,
            text_field="text",
            label_field="label",
            model=enc,
            random_state=0,
            n_runs=2,
            **extra,
        )
        assert res.budget == 18
        assert {"el2n", "grand"} <= set(res.columns)
        assert res.details["proxy"]["n_runs"] == 2
    cl = dataprune.select(
        recs,
        method="confident_learning",
        fraction=0.5,
        text_field="text",
        label_field="label",
        model=enc,
        random_state=0,
        n_folds=3,
    )
    assert {"label_quality", "is_label_issue"} <= set(cl.columns)
    assert "n_label_issues" in cl.details
    cb = dataprune.select(
        recs, method="class_balanced", n_samples=9, label_field="label", random_state=0
    )
    assert sorted(r["label"] for r in cb.dataset) == ["x"] * 3 + ["y"] * 3 + ["z"] * 3


def _sft(n=10):
    from tiny_models import CORPUS

    return [
        {"prompt": CORPUS[i % 8], "response": CORPUS[(i + 3) % 8] + " " + CORPUS[i % 5]}
        for i in range(n)
    ]


def test_sft_lm_difficulty_and_longest():
    model, tok = tiny_causal_lm()
    recs = _sft()
    recs[3]["response"] = " "
    res = dataprune.select(
        recs,
        method="el2n",
        n_samples=4,
        prompt_field="prompt",
        response_field="response",
        model=(model, tok),
        random_state=0,
    )
    assert {"el2n", "nll", "response_tokens"} <= set(res.columns)
    assert res.empty_indices.tolist() == [3] and not res.kept[3]
    cand = np.flatnonzero(res.status == "ok")
    top = cand[np.argsort(-res.columns["el2n"][cand], kind="stable")[:4]]
    assert set(top.tolist()) == set(res.indices.tolist())
    g = dataprune.select(
        recs,
        method="grand",
        n_samples=4,
        prompt_field="prompt",
        response_field="response",
        model=(model, tok),
        random_state=0,
    )
    assert "grand" in g.columns and np.all(g.columns["grand"][cand] > 0)
    c = dataprune.select(
        recs,
        method="ccs",
        n_samples=4,
        prompt_field="prompt",
        response_field="response",
        model=(model, tok),
        random_state=0,
        beta=0.0,
    )
    assert c.budget == 4
    lg = dataprune.select(
        recs,
        method="longest",
        n_samples=2,
        prompt_field="prompt",
        response_field="response",
        model=(model, tok),
    )
    lengths = lg.columns["length_tokens"]
    assert lengths[lg.indices].min() >= np.nanmax(np.where(lg.kept, -1, lengths))


def test_to_frame_and_write_scores(tmp_path, enc):
    import pandas as pd

    recs = _records(15)
    recs[0]["text"] = ""
    res = dataprune.select(
        recs, method="semdedup", n_samples=5, text_field="text", model=enc, random_state=0
    )
    df = res.to_frame()
    assert list(df.columns[:3]) == ["index", "status", "score"]
    assert list(df.columns[-2:]) == ["kept", "rank"]
    assert len(df) == 15 and df["kept"].sum() == 5
    path = res.write_scores(tmp_path / "s.parquet")
    back = pd.read_parquet(path)
    assert back.shape == df.shape and back.loc[0, "status"] == "empty_text"
    assert "max_similarity" in back.columns and "duplicate_of" in back.columns


def test_plot_scores_draws_every_numeric_column(enc, tmp_path):
    pytest.importorskip("matplotlib")
    from PIL import Image

    res = dataprune.select(
        _records(), method="kcenter", n_samples=10, text_field="text", model=enc, random_state=0
    )
    out = tmp_path / "plots"
    out.mkdir()
    path = res.plot_scores(out / "scores.png")
    assert path == out / "scores.png" and [p.name for p in out.iterdir()] == ["scores.png"]
    # one panel per numeric column (score, min_distances): wider than tall
    w, h = Image.open(path).size
    assert w > 1.8 * h
    one = res.plot_scores(out / "one.png", max_columns=1)
    assert Image.open(one).size[0] < w
