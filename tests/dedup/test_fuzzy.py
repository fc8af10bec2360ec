"""Fuzzy (MinHash + LSH) near-duplicate detection: dataprune.dedup."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from dataprune.dedup import (
    FuzzyDuplicates,
    fuzzy_duplicates,
    lsh_candidate_pairs,
    lsh_params,
    minhash_signatures,
    normalise_text,
)
from dataprune.errors import DataValidationError, UnknownOptionError

N_BASE = 300


def _vocab(rng: np.random.Generator, size: int = 2000) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = {"".join(rng.choice(letters, rng.integers(2, 10))) for _ in range(size)}
    return sorted(words)


def _sentences(rng: np.random.Generator, n: int, vocab: list[str]) -> list[list[str]]:
    """``n`` word lists of 30-45 words (Zipf-like word frequencies, like real text)."""
    p = 1.0 / np.arange(1, len(vocab) + 1)
    p /= p.sum()
    return [[vocab[k] for k in rng.choice(len(vocab), rng.integers(30, 46), p=p)] for _ in range(n)]


def _edit(rng: np.random.Generator, words: list[str], vocab: list[str], n_edits: int) -> str:
    """Replace ``n_edits`` words, or change punctuation/case around one of them."""
    words = list(words)
    for _ in range(n_edits):
        k = int(rng.integers(len(words)))
        kind = rng.integers(3)
        if kind == 0:
            words[k] = vocab[int(rng.integers(len(vocab)))]
        elif kind == 1:
            words[k] = words[k] + rng.choice([",", ";", "!", "?"])
        else:
            words[k] = words[k].upper()
    return " ".join(words).capitalize() + "."


@pytest.fixture(scope="module")
def planted():
    """300 distinct sentences, then 100 near-duplicates of 100 of them (1-2 light edits)."""
    rng = np.random.default_rng(7)
    vocab = _vocab(rng)
    base = _sentences(rng, N_BASE, vocab)
    texts = [" ".join(w).capitalize() + "." for w in base]
    sources = rng.choice(N_BASE, 100, replace=False)
    pairs = []
    for s in sources:
        pairs.append((int(s), len(texts)))
        texts.append(_edit(rng, base[s], vocab, int(rng.integers(1, 3))))
    return texts, pairs


def _shingles(text: str, n: int = 5) -> set[str]:
    t = normalise_text(text)
    return {t[i : i + n] for i in range(len(t) - n + 1)} or {t}


def _pair_scores(result: FuzzyDuplicates, true_pairs: list[tuple[int, int]]) -> tuple[float, float]:
    predicted = {tuple(sorted(p)) for g in result.groups for p in itertools.combinations(g, 2)}
    truth = {tuple(sorted(p)) for p in true_pairs}
    recall = len(predicted & truth) / len(truth)
    precision = len(predicted & truth) / max(len(predicted), 1)
    return recall, precision


def test_planted_near_duplicates_are_found(planted):
    texts, pairs = planted
    res = fuzzy_duplicates(texts, threshold=0.7, unit="char", ngram=5)
    recall, precision = _pair_scores(res, pairs)
    assert recall >= 0.95
    assert precision >= 0.95
    # keep="first": the original (lower index) survives, the edited copy points at it
    found = [(s, d) for s, d in pairs if res.group[s] >= 0 and res.group[s] == res.group[d]]
    assert all(res.duplicate_of[d] == s and res.duplicate_of[s] == -1 for s, d in found)
    assert res.is_duplicate.sum() == sum(len(g) - 1 for g in res.groups)
    assert np.all(res.similarity[res.is_duplicate] >= 0.7)
    assert np.isnan(res.similarity[~res.is_duplicate]).all()
    assert res.params["bands"] * res.params["rows"] <= 128
    sizes = [len(g) for g in res.groups]
    assert sizes == sorted(sizes, reverse=True)
    for k, g in enumerate(res.groups):
        assert res.duplicate_of[g[0]] == -1 and (res.duplicate_of[g[1:]] == g[0]).all()
        assert (res.group[g] == k).all()
    assert (res.group[res.group >= 0] < len(res.groups)).all()


def test_estimated_jaccard_matches_exact(planted):
    texts, _ = planted
    rng = np.random.default_rng(3)
    vocab = _vocab(rng)
    base = _sentences(rng, 60, vocab)
    a = [" ".join(w) for w in base]
    b = [_edit(rng, w, vocab, int(k)) for w, k in zip(base, np.linspace(0, 25, 60))]
    every = [*a, *b, *texts[:20]]
    sig = minhash_signatures(every, num_perm=256)
    # edited pairs (a[k], b[k]) and unrelated neighbours among the planted texts
    i = np.r_[np.arange(60), np.arange(120, 139)]
    j = np.r_[np.arange(60, 120), np.arange(121, 140)]
    sets = [_shingles(t) for t in every]
    exact = np.array([len(sets[x] & sets[y]) / len(sets[x] | sets[y]) for x, y in zip(i, j)])
    est = (sig[i] == sig[j]).mean(axis=1)
    assert exact.min() < 0.3 and exact.max() > 0.9  # the pairs span the range
    assert np.mean(np.abs(est - exact)) < 0.05


def test_signatures_deterministic_and_batch_independent(planted):
    texts, _ = planted
    texts = [*texts[:50], "", "ab", "x"]
    ref = minhash_signatures(texts, num_perm=64)
    assert ref.dtype == np.uint32 and ref.shape == (len(texts), 64)
    for bs in (1, 7, 4096):
        np.testing.assert_array_equal(minhash_signatures(texts, num_perm=64, batch_size=bs), ref)
    # the first m permutations of a longer signature are those of num_perm=m
    np.testing.assert_array_equal(minhash_signatures(texts, num_perm=128)[:, :64], ref)
    assert not np.array_equal(minhash_signatures(texts, num_perm=64, seed=2), ref)
    code = (
        "import json, sys; from dataprune.dedup import minhash_signatures as m; "
        "t = json.loads(sys.argv[1]); "
        "print(m(t, num_perm=64).sum(dtype='uint64'), m(t, unit='word', ngram=2, num_perm=8).sum(dtype='uint64'))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(texts)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    word = minhash_signatures(texts, unit="word", ngram=2, num_perm=8)
    assert out.stdout.split() == [str(ref.sum(dtype="uint64")), str(word.sum(dtype="uint64"))]


def test_fuzzy_result_deterministic(planted):
    texts, _ = planted
    r1 = fuzzy_duplicates(texts, threshold=0.7)
    r2 = fuzzy_duplicates(texts, threshold=0.7)
    np.testing.assert_array_equal(r1.duplicate_of, r2.duplicate_of)
    np.testing.assert_array_equal(r1.group, r2.group)
    assert all(np.array_equal(g, h) for g, h in zip(r1.groups, r2.groups))


def test_keep_rules():
    core = "the quick brown fox jumps over the lazy dog near the quiet river bank today"
    texts = [
        "something else entirely, nothing in common",
        core,
        core + " x",
        core + " xy!",
        core.upper(),
    ]
    kw = {"threshold": 0.7}
    assert fuzzy_duplicates(texts, keep="first", **kw).groups[0].tolist() == [1, 2, 3, 4]
    res = fuzzy_duplicates(texts, keep="longest", **kw)
    assert res.groups[0].tolist() == [3, 1, 2, 4]
    assert res.duplicate_of.tolist() == [-1, 3, 3, -1, 3]
    q = np.array([9.0, 0.1, np.nan, 0.5, 0.5])
    res = fuzzy_duplicates(texts, keep="quality", quality=q, **kw)
    assert res.groups[0].tolist() == [3, 1, 2, 4]  # 0.5 tie: lower index; NaN lowest
    q = np.array([0.0, np.nan, np.nan, np.nan, np.nan])
    assert fuzzy_duplicates(texts, keep="quality", quality=q, **kw).groups[0][0] == 1
    with pytest.raises(UnknownOptionError, match="first, longest, quality"):
        fuzzy_duplicates(texts, keep="best")


def test_empty_and_short_texts():
    texts = ["", "   ", "\n\t", "abc", "ABC", "abd", "", "a much longer text that is not short"]
    res = fuzzy_duplicates(texts, threshold=0.8)
    assert (res.group[[0, 1, 2, 6]] == -1).all()
    assert [g.tolist() for g in res.groups] == [[3, 4]]  # shorter than 5 chars: one shingle
    sig = minhash_signatures(texts, num_perm=16)
    assert (sig[[0, 1, 2, 6]] == np.uint32(0xFFFFFFFF)).all()
    i, j = lsh_candidate_pairs(sig, bands=16, rows=1)
    assert set(zip(i.tolist(), j.tolist())) == {(3, 4)}
    assert fuzzy_duplicates([]).groups == [] and fuzzy_duplicates(["one"]).group.tolist() == [-1]
    # without verification the empty records are still never paired
    assert fuzzy_duplicates(texts, verify=False, bands=16, rows=1).groups[0].tolist() == [3, 4]


def test_word_unit_and_normalisation():
    texts = ["One two three four five six", "one  TWO three four five six", "seven eight nine ten"]
    res = fuzzy_duplicates(texts, unit="word", ngram=3)
    assert [g.tolist() for g in res.groups] == [[0, 1]]
    assert normalise_text("  Ｆｕｌｌ\u00a0width\tStraße \n") == "full width strasse"


def test_star_edges_per_bucket():
    sig = np.zeros((5, 4), dtype=np.uint32)
    sig[3] = 7  # a different record
    i, j = lsh_candidate_pairs(sig, bands=2, rows=2)
    assert list(zip(i.tolist(), j.tolist())) == [(0, 1), (0, 2), (0, 4)]


@pytest.mark.parametrize("num_perm", [64, 128, 256])
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7, 0.8, 0.9])
def test_lsh_params_threshold(threshold, num_perm):
    b, r = lsh_params(threshold, num_perm)
    assert b * r <= num_perm
    assert abs((1 / b) ** (1 / r) - threshold) < 0.1


def test_lsh_params_match_datasketch():
    datasketch = pytest.importorskip("datasketch")
    for t in (0.5, 0.7, 0.8, 0.9):
        lsh = datasketch.MinHashLSH(threshold=t, num_perm=128)
        assert lsh_params(t, 128) == (lsh.b, lsh.r)


def test_bad_inputs_name_the_record():
    with pytest.raises(DataValidationError, match="record 2") as err:
        fuzzy_duplicates(["a", "b", 3, "c"])
    assert err.value.record == 2
    with pytest.raises(DataValidationError, match="record 0"):
        minhash_signatures([None])
    with pytest.raises(DataValidationError):
        fuzzy_duplicates("one string")
    for bad in (0, 1.5, float("nan"), "0.8"):
        with pytest.raises(ValueError, match="threshold"):
            fuzzy_duplicates(["a"], threshold=bad)
    with pytest.raises(ValueError, match="ngram"):
        fuzzy_duplicates(["a"], ngram=0)
    with pytest.raises(ValueError, match="exceeds num_perm"):
        fuzzy_duplicates(["a"], num_perm=16, bands=5, rows=4)
    with pytest.raises(UnknownOptionError, match="char, word"):
        minhash_signatures(["a"], unit="byte")
    with pytest.raises(ValueError, match="needs quality"):
        fuzzy_duplicates(["a"], keep="quality")
    with pytest.raises(DataValidationError, match="shape"):
        fuzzy_duplicates(["a", "b"], keep="quality", quality=[1.0])
    with pytest.raises(ValueError, match="only used with"):
        fuzzy_duplicates(["a"], quality=[1.0])
    with pytest.raises(ValueError, match="exceeds num_perm"):
        lsh_candidate_pairs(np.zeros((2, 8), np.uint32), bands=3, rows=3)
