from __future__ import annotations

import numpy as np
import pytest

from dataprune.calibration import CalibrationSet, build_calibration_set
from dataprune.errors import DataValidationError, UnknownOptionError


def _stream(tok, texts):
    ids = []
    for t in texts:
        ids += tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    return np.asarray(ids)


def test_random_pack_shapes_provenance_and_blocks(tok, pool):
    c = build_calibration_set(pool, tok, n_samples=5, seq_len=16, random_state=0)
    assert isinstance(c, CalibrationSet)
    assert c.input_ids.shape == (5, 16) and not c.has_padding and c.n_tokens == 80
    p = c.provenance
    assert p["selector"] == "random" and p["chunking"] == "pack" and p["seq_len"] == 16
    assert p["n_texts"] == 64 and len(p["source_sha256"]) == 64
    assert p["encoder"] is None and p["fit_input"] == "none"
    stream = _stream(tok, pool)
    assert p["n_candidates"] == len(stream) // 16
    for row, cand in zip(c.input_ids, p["candidate_indices"]):
        assert np.array_equal(row, stream[cand * 16 : (cand + 1) * 16])
    assert len(c.texts) == 5 and all(isinstance(t, str) and t for t in c.texts)
    first, last = p["sample_text_spans"][0]
    assert 0 <= first <= last < 64


def test_same_seed_same_set_other_seed_differs(tok, pool):
    a = build_calibration_set(pool, tok, n_samples=6, seq_len=8, random_state=1)
    b = build_calibration_set(pool, tok, n_samples=6, seq_len=8, random_state=1)
    c = build_calibration_set(pool, tok, n_samples=6, seq_len=8, random_state=2)
    assert np.array_equal(a.input_ids, b.input_ids)
    assert a.provenance["candidate_indices"] != c.provenance["candidate_indices"]


def test_truncate_pads_and_masks(tok, pool):
    c = build_calibration_set(
        pool, tok, n_samples=10, seq_len=6, chunking="truncate", random_state=0
    )
    assert c.input_ids.shape == (10, 6)
    lengths = c.lengths
    for i, cand in enumerate(c.provenance["candidate_indices"]):
        n = len(tok(pool[cand])["input_ids"])
        assert lengths[i] == min(n, 6)
        assert (c.input_ids[i, lengths[i] :] == c.pad_token_id).all()
    c2 = build_calibration_set(
        pool, tok, n_samples=10, seq_len=64, chunking="truncate", random_state=0
    )
    assert c2.has_padding and c2.n_tokens < 10 * 64


def test_kcenter_by_name_uses_embeddings(tok, pool, isolated_cache, hashing_encoder):
    enc = hashing_encoder
    c = build_calibration_set(
        pool, tok, n_samples=4, seq_len=8, selector="kcenter", encoder=enc, random_state=0
    )
    assert enc.encoded == c.provenance["n_candidates"]
    assert c.provenance["selector"] == "kcenter" and c.provenance["encoder"] == enc.name
    # the same as fitting KCenterGreedy on the candidates' embeddings by hand
    from dataprune.embeddings import embed_texts
    from dataprune.selection import KCenterGreedy

    stream = _stream(tok, pool)
    n = len(stream) // 8
    texts = [tok.decode(stream[i * 8 : (i + 1) * 8], skip_special_tokens=True) for i in range(n)]
    X = embed_texts(texts, type(enc)())
    ref = KCenterGreedy(n_samples=4, random_state=0).fit(X).selected_indices_
    assert c.provenance["candidate_indices"] == ref.tolist()


def test_selector_instance_gets_budget_replaced(tok, pool, isolated_cache, hashing_encoder):
    from dataprune.selection import Prototypes

    sel = Prototypes(n_samples=999, keep="easy", random_state=3)
    c = build_calibration_set(
        pool, tok, n_samples=7, seq_len=8, selector=sel, encoder=hashing_encoder
    )
    assert c.n_samples == 7
    assert c.provenance["selector"] == "prototypes"
    assert c.provenance["selector_params"]["keep"] == "easy"
    assert sel.n_samples == 999 and not hasattr(sel, "selected_indices_")  # not mutated


def test_selector_params_by_name(tok, pool, isolated_cache, hashing_encoder):
    c = build_calibration_set(
        pool,
        tok,
        n_samples=5,
        seq_len=8,
        selector="prototypes",
        selector_params={"keep": "easy", "n_clusters": 3},
        encoder=hashing_encoder,
        random_state=0,
    )
    assert c.provenance["selector_params"]["n_clusters"] == 3


def test_class_balanced_with_labels(tok, pool):
    labels = ["a" if i < 48 else "b" for i in range(64)]
    c = build_calibration_set(
        pool,
        tok,
        n_samples=10,
        seq_len=4,
        chunking="truncate",
        selector="class_balanced",
        labels=labels,
        random_state=0,
    )
    got = [labels[i] for i in c.provenance["candidate_indices"]]
    assert got.count("a") == 5 and got.count("b") == 5
    with pytest.raises(DataValidationError, match="needs labels"):
        build_calibration_set(pool, tok, n_samples=4, seq_len=4, selector="class_balanced")


def test_lengths_selector(tok, pool):
    c = build_calibration_set(
        pool, tok, n_samples=3, seq_len=64, chunking="truncate", selector="longest"
    )
    lengths = [len(tok(t)["input_ids"]) for t in pool]
    assert sorted(c.lengths.tolist()) == sorted(lengths)[-3:]


def test_precomputed_embeddings(tok, pool):
    E = np.random.default_rng(0).standard_normal((64, 5)).astype(np.float32)
    c = build_calibration_set(
        pool,
        tok,
        n_samples=4,
        seq_len=16,
        chunking="truncate",
        selector="kcenter",
        embeddings=E,
        random_state=0,
    )
    from dataprune.selection import KCenterGreedy

    assert (
        c.provenance["candidate_indices"]
        == KCenterGreedy(n_samples=4, random_state=0).fit(E).selected_indices_.tolist()
    )
    with pytest.raises(DataValidationError, match="with chunking='pack'"):
        build_calibration_set(pool, tok, n_samples=4, seq_len=16, selector="kcenter", embeddings=E)
    with pytest.raises(DataValidationError, match=r"shape \(n_texts=64, dim\)"):
        build_calibration_set(
            pool,
            tok,
            n_samples=4,
            seq_len=16,
            chunking="truncate",
            selector="kcenter",
            embeddings=E[:10],
        )


def test_records_and_datasets(tok, pool):
    from datasets import Dataset

    recs = [{"body": t, "id": i} for i, t in enumerate(pool)]
    a = build_calibration_set(recs, tok, n_samples=3, seq_len=8, text_field="body", random_state=0)
    b = build_calibration_set(
        Dataset.from_dict({"text": pool}), tok, n_samples=3, seq_len=8, random_state=0
    )
    c = build_calibration_set(pool, tok, n_samples=3, seq_len=8, random_state=0)
    assert np.array_equal(a.input_ids, c.input_ids) and np.array_equal(b.input_ids, c.input_ids)
    assert a.provenance["source_sha256"] == c.provenance["source_sha256"]


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"n_samples": 0}, DataValidationError, "n_samples must be a positive integer"),
        ({"seq_len": -1}, DataValidationError, "seq_len must be a positive integer"),
        ({"n_samples": 500}, DataValidationError, "fewer than n_samples=500"),
        (
            {"chunking": "slide"},
            UnknownOptionError,
            "unknown chunking 'slide'; valid: pack, truncate",
        ),
        ({"selector": "kmeanz"}, UnknownOptionError, "unknown selection method 'kmeanz'; valid:"),
        ({"selector": "el2n"}, UnknownOptionError, "needs difficulty scores"),
        ({"selector": 3}, DataValidationError, "selector must be a method name"),
        ({"selector": "prototypes", "selector_params": {"kep": 1}}, UnknownOptionError, "kep"),
        ({"labels": [1, 2]}, DataValidationError, "2 labels for 64 texts"),
    ],
)
def test_bad_arguments(tok, pool, kwargs, exc, message):
    args = {"n_samples": 4, "seq_len": 8, **kwargs}
    with pytest.raises(exc, match=message):
        build_calibration_set(pool, tok, **args)


def test_bad_inputs_name_record_and_field(tok):
    with pytest.raises(
        DataValidationError, match="record 1, field 'text': expected a string, got int"
    ):
        build_calibration_set(
            [{"text": "a b"}, {"text": 5}], tok, text_field="text", n_samples=1, seq_len=2
        )
    with pytest.raises(DataValidationError, match="record 0, field 'body': missing field"):
        build_calibration_set([{"text": "a"}], tok, text_field="body", n_samples=1, seq_len=2)
    with pytest.raises(DataValidationError, match=r"record 0 has 'body'.*name the text with"):
        build_calibration_set([{"body": "a"}], tok, n_samples=1, seq_len=2)
    # records with a "text" field need no text_field
    pool = [{"text": "a b c"}, {"text": "b c a"}]
    default = build_calibration_set(pool, tok, n_samples=1, seq_len=2, random_state=0)
    named = build_calibration_set(
        pool, tok, text_field="text", n_samples=1, seq_len=2, random_state=0
    )
    assert default.input_ids.tolist() == named.input_ids.tolist()
    with pytest.raises(DataValidationError, match="single string"):
        build_calibration_set("the cat sat", tok, n_samples=1, seq_len=2)
    with pytest.raises(DataValidationError, match="pool is empty"):
        build_calibration_set([], tok, n_samples=1, seq_len=2)
