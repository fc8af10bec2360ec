from __future__ import annotations

import numpy as np
import pytest

from dataprune.calibration import balanced_quotas, build_calibration_set
from dataprune.errors import DataValidationError, UnknownOptionError

from tiny_models import CORPUS

SOURCES = ["web", "code", "math"]


def _source_of(i: int) -> str:
    """Interleaved sources, 'math' small: texts 0..61 alternate web/code, 62 and 63 are math."""
    return "math" if i >= 62 else SOURCES[i % 2]


def _stream(tok, texts):
    ids = []
    for t in texts:
        ids += tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    return np.asarray(ids)


def _source_blocks(tok, pool, src, seq_len):
    """Every block of each source packed on its own: {source: set of token tuples}."""
    out = {}
    for s in dict.fromkeys(src):
        stream = _stream(tok, [t for t, x in zip(pool, src) if x == s])
        n = len(stream) // seq_len
        out[s] = {tuple(stream[i * seq_len : (i + 1) * seq_len]) for i in range(n)}
    return out


def test_balanced_quotas_water_filling():
    assert balanced_quotas([10, 10, 10], 9, 0).tolist() == [3, 3, 3]
    assert balanced_quotas([1, 10, 10], 9, 0).tolist() == [1, 4, 4]  # remainder to the others
    assert balanced_quotas([0, 2, 30], 10, 0).tolist() == [0, 2, 8]
    assert balanced_quotas([5, 5], 10, 0).tolist() == [5, 5]
    q = balanced_quotas([1, 10, 10, 10], 12, 7)
    assert q.sum() == 12 and q[0] == 1 and sorted(q[1:].tolist()) == [3, 4, 4]
    # the leftover sample goes to a source drawn by random_state: same seed, same quotas
    draws = {tuple(balanced_quotas([4, 4, 4], 4, seed).tolist()) for seed in range(20)}
    assert draws == {(2, 1, 1), (1, 2, 1), (1, 1, 2)}
    assert all(
        balanced_quotas([4, 4, 4], 4, s).tolist() == balanced_quotas([4, 4, 4], 4, s).tolist()
        for s in range(5)
    )
    with pytest.raises(DataValidationError, match="4 candidates in all, fewer than n_samples=5"):
        balanced_quotas([1, 3], 5, 0)


def test_balanced_pack_exact_counts_and_unmixed_blocks(tok, pool, tmp_path):
    src = [_source_of(i) for i in range(64)]
    kw = {"n_samples": 11, "seq_len": 8, "sources": src, "mix": "balanced"}
    c = build_calibration_set(pool, tok, random_state=0, **kw)
    p = c.provenance
    assert p["mix"] == "balanced" and p["sources"] == ["web", "code", "math"]
    # math has 2 texts -> 3 blocks, fewer than an even share of 11; web and code take the rest
    assert p["source_candidates"] == {"web": 51, "code": 50, "math": 3}
    assert p["source_counts"] == {"web": 4, "code": 4, "math": 3} and c.n_samples == 11
    assert c.sample_sources == p["sample_sources"] and len(p["sample_sources"]) == 11
    # no block mixes sources: each sample is a block of its own source's separate stream
    blocks = _source_blocks(tok, pool, src, 8)
    for row, s in zip(c.input_ids, c.sample_sources):
        assert tuple(row) in blocks[s]
    # the sample's text spans stay inside its source
    for (first, last), s in zip(p["sample_text_spans"], c.sample_sources):
        assert src[first] == s and src[last] == s
    # subsets and saved copies keep every sample's source
    assert c.subset([2, 0]).sample_sources == [c.sample_sources[2], c.sample_sources[0]]
    from dataprune.calibration import CalibrationSet

    assert CalibrationSet.load(c.save(tmp_path / "c.npz")).sample_sources == c.sample_sources
    # deterministic by random_state
    again = build_calibration_set(pool, tok, random_state=0, **kw)
    np.testing.assert_array_equal(again.input_ids, c.input_ids)
    assert again.provenance["source_counts"] == p["source_counts"]


def test_balanced_runs_the_selector_inside_each_source(tok, pool, lm):
    from dataprune.calibration import activation_embeddings
    from dataprune.selection import KCenterGreedy

    src = [_source_of(i) for i in range(64)]
    kw = {"seq_len": 8, "sources": src, "random_state": 0}
    c = build_calibration_set(
        pool, tok, n_samples=6, selector="kcenter", space="activations", model=lm,
        mix="balanced", **kw,
    )  # fmt: skip
    p = c.provenance
    assert p["source_counts"] == {"web": 2, "code": 2, "math": 2}
    assert p["space"] == "activations" and p["selector"] == "kcenter"
    # candidates are numbered source by source; web's are the first source_candidates["web"]
    n_web = p["source_candidates"]["web"]
    web = np.asarray(c.sample_sources) == "web"
    cand = np.asarray(p["candidate_indices"])[web]
    # ... and the web samples are k-center's choice among the web blocks alone
    everything = build_calibration_set(
        pool, tok, n_samples=sum(p["source_candidates"].values()), selector="longest", **kw
    )
    rows = everything.input_ids[np.argsort(everything.provenance["candidate_indices"])]
    X = activation_embeddings(lm, rows[:n_web])
    assert (
        cand.tolist()
        == KCenterGreedy(n_samples=2, random_state=0).fit(X).selected_indices_.tolist()
    )
    np.testing.assert_array_equal(c.input_ids[web], rows[cand])


def test_truncate_balanced_and_source_field(tok, pool):
    recs = [{"text": t, "src": _source_of(i)} for i, t in enumerate(pool)]
    c = build_calibration_set(
        recs,
        tok,
        n_samples=10,
        seq_len=16,
        chunking="truncate",
        source_field="src",
        mix="balanced",
        random_state=1,
    )
    assert c.provenance["source_counts"] == {"web": 4, "code": 4, "math": 2}
    assert c.provenance["source_candidates"] == {"web": 31, "code": 31, "math": 2}
    for cand, s in zip(c.provenance["candidate_indices"], c.sample_sources):
        assert recs[cand]["src"] == s  # truncate: one candidate per text


def test_sources_without_mix_select_over_all_and_count(tok, pool):
    src = [_source_of(i) for i in range(64)]
    c = build_calibration_set(pool, tok, n_samples=9, seq_len=8, sources=src, random_state=0)
    p = c.provenance
    assert p["mix"] == "none" and sum(p["source_counts"].values()) == 9
    blocks = _source_blocks(tok, pool, src, 8)
    for row, s in zip(c.input_ids, c.sample_sources):
        assert tuple(row) in blocks[s]  # packed per source even without balancing
    # no sources: provenance has no source entries, as before
    plain = build_calibration_set(pool, tok, n_samples=9, seq_len=8, random_state=0)
    assert "source_counts" not in plain.provenance and plain.sample_sources is None


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"mix": "balanced"}, DataValidationError, "mix='balanced' needs sources= or source_fi"),
        ({"mix": "uniform"}, UnknownOptionError, "unknown mix 'uniform'; valid: none, balanced"),
        ({"sources": ["a", "b"]}, DataValidationError, "2 sources for 64 texts"),
        ({"sources": "web"}, DataValidationError, "sources must be a sequence"),
        ({"source_field": "src"}, DataValidationError, "for plain texts pass sources="),
        (
            {"sources": ["a"] * 64, "source_field": "src"},
            DataValidationError,
            "give sources= or source_field=, not both",
        ),
        (
            {"sources": ["a"] * 60 + ["b"] * 4, "mix": "balanced", "n_samples": 150},
            DataValidationError,
            r"tokens in all, each source packed separately\), fewer than n_samples=150",
        ),
    ],
)
def test_bad_mix_arguments(tok, pool, kwargs, exc, message):
    args = {"n_samples": 4, "seq_len": 8, **kwargs}
    with pytest.raises(exc, match=message):
        build_calibration_set(pool, tok, **args)


def test_source_field_errors_name_the_record(tok):
    recs = [{"text": f"{a} and {a}", "src": "x"} for a in CORPUS]
    recs[2] = {"text": "the cat", "src": 5}
    with pytest.raises(DataValidationError, match="record 2, field 'src': expected a string"):
        build_calibration_set(recs, tok, n_samples=2, seq_len=4, source_field="src")
    del recs[2]["src"]
    with pytest.raises(DataValidationError, match="record 2, field 'src': missing field"):
        build_calibration_set(recs, tok, n_samples=2, seq_len=4, source_field="src")


def test_proportional_quotas_largest_remainder():
    from dataprune.calibration import proportional_quotas

    assert proportional_quotas([50, 30, 20], 10, 0).tolist() == [5, 3, 2]
    assert proportional_quotas([51, 50, 3], 11, 0).tolist() == [6, 5, 0]  # 5.39, 5.29, 0.32
    assert proportional_quotas([1, 1, 1], 3, 0).tolist() == [1, 1, 1]
    # equal remainders: the extra sample goes to a source drawn by random_state
    draws = {tuple(proportional_quotas([4, 4, 4], 4, s).tolist()) for s in range(20)}
    assert draws == {(2, 1, 1), (1, 2, 1), (1, 1, 2)}
    for avail, n in (([7, 0, 3], 9), ([1, 99], 50), ([2, 2, 2, 2], 8)):
        q = proportional_quotas(avail, n, 3)
        assert q.sum() == n and np.all(q <= np.asarray(avail))
    with pytest.raises(DataValidationError, match="4 candidates in all, fewer than n_samples=5"):
        proportional_quotas([1, 3], 5, 0)


def test_proportional_mix_keeps_the_pools_source_shares(tok, pool):
    src = [_source_of(i) for i in range(64)]
    c = build_calibration_set(
        pool, tok, n_samples=11, seq_len=8, sources=src, mix="proportional", random_state=0
    )
    p = c.provenance
    assert p["mix"] == "proportional"
    assert p["source_candidates"] == {"web": 51, "code": 50, "math": 3}
    assert p["source_counts"] == {"web": 6, "code": 5, "math": 0}  # 5.39, 5.29, 0.32 of 11
    with pytest.raises(DataValidationError, match="mix='proportional' needs sources="):
        build_calibration_set(pool, tok, n_samples=4, seq_len=8, mix="proportional")


def test_cli_mix_choices_are_the_librarys(capsys):
    from dataprune.calibration import MIXES
    from dataprune.cli.main import main

    with pytest.raises(SystemExit):
        main(["prune-model", "--help"])
    assert "--mix {" + ",".join(MIXES) + "}" in " ".join(capsys.readouterr().out.split())
