from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from dataprune.errors import DataValidationError
from dataprune.lm_scoring import score_sft
from dataprune.qtuning import QTuningConfig, QTuningTriage, triage_samples, write_triage
from dataprune.qtuning.report import PRUNED_CLOSE, PRUNED_OPEN, pruned_view
from dataprune.qtuning.score_cache import score_sft_cached
from dataprune.sft_encoding import encode_sft

from tiny_models import CORPUS, tiny_causal_lm


@pytest.fixture()
def tiny_lm():
    """(model, tokenizer): a random 2-layer Llama with a word-level tokenizer and chat template."""
    return tiny_causal_lm(chat_template=True)


PROMPTS = CORPUS * 3
RESPONSES = [CORPUS[(i * 3 + 1) % len(CORPUS)] for i in range(len(PROMPTS))]


def _fit(model, tok, **cfg):
    return QTuningTriage(
        # the random tiny model's IFD says nothing about alignment: max_ifd only where tested
        QTuningConfig(**{"sample_ratio": 0.25, "token_ratio": 0.5, "max_ifd": None, **cfg}),
        model=model,
        tokenizer=tok,
        batch_size=5,
    ).fit(PROMPTS, RESPONSES)


def test_fit_matches_the_functional_core(tiny_lm):
    from dataprune.dedup import fuzzy_duplicates

    model, tok = tiny_lm
    scores = score_sft(model, tok, PROMPTS, RESPONSES)
    # the default leaves near-duplicate pairs out of the triage (PROMPTS / RESPONSES repeat)
    dup = fuzzy_duplicates([f"{p}\n{r}" for p, r in zip(PROMPTS, RESPONSES)], threshold=0.8)
    assert dup.is_duplicate.any()
    for cfg, exclude in (({}, dup.is_duplicate), ({"dedup": "none"}, None)):
        tri = _fit(model, tok, **cfg)
        ref = triage_samples(
            scores.perplexity(),
            scores.mean_entropy("all"),
            QTuningConfig(sample_ratio=0.25),
            exclude=exclude,
        )
        assert np.array_equal(tri.result_.samples.kept, ref.kept)
        assert np.array_equal(tri.quadrant_, ref.quadrant)
        assert len(tri.kept_indices_) == round(len(PROMPTS) * 0.25)
        np.testing.assert_allclose(tri.perplexity_, scores.perplexity(), rtol=1e-5)
    table = _fit(model, tok).result_.to_table()
    dropped_dups = [i for i, s in enumerate(table["selection"]) if s == "duplicate"]
    assert dropped_dups == np.flatnonzero(dup.is_duplicate).tolist()
    assert all(not table["kept"][i] and table["quadrant"][i] == "Q3" for i in dropped_dups)
    assert [table["duplicate_of"][i] for i in dropped_dups] == dup.duplicate_of[
        dup.is_duplicate
    ].tolist()


def test_entropy_span_all_uses_every_position(tiny_lm):
    model, tok = tiny_lm
    tri = _fit(model, tok, entropy_span="all")
    np.testing.assert_allclose(tri.entropy_, tri.scores_.entropy_all)
    assert not np.allclose(tri.entropy_, tri.scores_.mean_entropy("response"))
    tri = _fit(model, tok, entropy_span="response")
    np.testing.assert_allclose(tri.entropy_, tri.scores_.mean_entropy("response"))


def test_labels_mask_prompt_and_pruned_tokens(tiny_lm):
    model, tok = tiny_lm
    tri = _fit(model, tok)
    res = tri.result_
    for i in res.kept_indices.tolist():
        ids, labels = res.labels(i)
        enc = encode_sft(tok, PROMPTS[i], RESPONSES[i])
        assert ids == enc.input_ids.tolist()
        resp = np.flatnonzero(enc.response_mask)
        lab = np.array(labels)
        assert np.all(lab[~enc.response_mask] == -100)  # prompt carries no loss
        kept_pos = resp[res.token_keep[i]]
        pruned_pos = resp[~res.token_keep[i]]
        assert np.all(lab[kept_pos] == np.array(ids)[kept_pos])
        assert np.all(lab[pruned_pos] == -100)
        n = len(resp)
        expected = n if res.samples.quadrant[i] == 4 else max(1, round(0.5 * n))
        assert res.token_keep[i].sum() == expected


def test_loss_mask_gives_the_loss_of_kept_tokens(tiny_lm):
    """Training on the written labels = mean NLL over exactly the kept tokens."""
    model, tok = tiny_lm
    tri = _fit(model, tok)
    res = tri.result_
    for i in res.kept_indices.tolist():
        ids, labels = res.labels(i)
        with torch.no_grad():
            out = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels]))
        expected = float(np.mean(tri.scores_.nll[i][res.token_keep[i]]))
        assert out.loss.item() == pytest.approx(expected, rel=1e-4)


def test_write_triage_outputs(tiny_lm, tmp_path):
    model, tok = tiny_lm
    tri = _fit(model, tok)
    records = [{"id": f"r{i}", "p": p, "r": r} for i, (p, r) in enumerate(zip(PROMPTS, RESPONSES))]
    out = tmp_path / "kept.jsonl"
    idx = [100 + i for i in range(len(records))]
    paths = write_triage(
        out, records, tri.result_, tok, input_indices=idx, manifest={"command": "test"}
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == len(tri.kept_indices_)
    for row, i in zip(rows, tri.kept_indices_.tolist()):
        assert row["id"] == f"r{i}" and row["qtuning_index"] == 100 + i
        assert row["qtuning_quadrant"] in ("Q2", "Q4")
        assert row["labels"] == tri.result_.labels(i)[1]
        assert row["qtuning_n_kept_tokens"] == sum(x != -100 for x in row["labels"])
        n_pruned = row["qtuning_n_response_tokens"] - row["qtuning_n_kept_tokens"]
        assert (PRUNED_OPEN in row["qtuning_view"]) == (n_pruned > 0)
    table = pq.read_table(paths["scores"]).to_pydict()
    assert table["index"] == idx
    assert set(table["quadrant"]) <= {"Q1", "Q2", "Q3", "Q4"}
    assert sum(table["kept"]) == len(rows)
    np.testing.assert_allclose(table["perplexity"], tri.perplexity_)
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    man = json.loads(paths["manifest"].read_text())
    assert man["triage"]["quadrants"]["kept"] == len(rows)
    assert man["qtuning_config"]["sample_ratio"] == 0.25
    with pytest.raises(DataValidationError, match="CSV"):
        write_triage(tmp_path / "x.csv", records, tri.result_, tok)


def test_pruned_view_marks_spans(tiny_lm):
    _, tok = tiny_lm
    ids = tok("the cat sat on the mat", add_special_tokens=False)["input_ids"]
    view = pruned_view(tok, ids, [True, False, False, True, True, False])
    assert view.count(PRUNED_OPEN) == 2 and view.count(PRUNED_CLOSE) == 2
    assert "[-cat sat-]" in view.replace(" ", " ")


def test_determinism(tiny_lm):
    model, tok = tiny_lm
    a, b = _fit(model, tok), _fit(model, tok)
    assert np.array_equal(a.kept_indices_, b.kept_indices_)
    assert all(np.array_equal(x, y) for x, y in zip(a.token_keep_, b.token_keep_))
    assert a.alpha_ == b.alpha_


def test_scoring_resumes_from_the_shard_cache(tiny_lm, tmp_path):
    model, tok = tiny_lm
    cache = tmp_path / "cache"
    ref = score_sft(model, tok, PROMPTS, RESPONSES)
    a = score_sft_cached(model, tok, PROMPTS, RESPONSES, cache_dir=cache, shard_size=7)
    assert len(list(cache.glob("shard-*.npz"))) == 4
    for x, y in zip(a.nll, ref.nll):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)

    calls = []
    hook = model.model.register_forward_hook(lambda *a: calls.append(1))
    try:
        b = score_sft_cached(model, tok, PROMPTS, RESPONSES, cache_dir=cache, shard_size=7)
        assert not calls  # everything came from the cache
        assert b.meta["n_shards_reused"] == 4
        for x, y in zip(a.entropy, b.entropy):
            np.testing.assert_array_equal(x, y)
        changed = list(RESPONSES)
        changed[0] = "the cat sat on the mat"  # same token length: shard membership unchanged
        c = score_sft_cached(model, tok, PROMPTS, changed, cache_dir=cache, shard_size=7)
        assert c.meta["n_shards_reused"] == 3 and calls  # only the touched shard is re-scored
    finally:
        hook.remove()


def test_cache_key_includes_the_weights(tiny_lm, tmp_path):
    from tiny_models import tiny_llama

    model, tok = tiny_lm
    score_sft_cached(model, tok, PROMPTS, RESPONSES, cache_dir=tmp_path, shard_size=50)
    other = tiny_llama(len(tok), seed=1)
    s = score_sft_cached(other, tok, PROMPTS, RESPONSES, cache_dir=tmp_path, shard_size=50)
    assert s.meta["n_shards_reused"] == 0


def test_bad_inputs(tiny_lm):
    model, tok = tiny_lm
    with pytest.raises(DataValidationError, match="record 1, field 'response'"):
        QTuningTriage(model=model, tokenizer=tok).fit(["a", "b"], ["the cat", "  "])
    with pytest.raises(DataValidationError, match="tokenizer"):
        QTuningTriage(model=model).fit(["a"], ["b"])
    from dataprune.errors import NotFittedError

    with pytest.raises(NotFittedError, match="not fitted"):
        QTuningTriage().features()


def test_max_ifd_leaves_misaligned_pairs_out(tiny_lm):
    from dataprune.scores import ifd_scores

    model, tok = tiny_lm
    ref = ifd_scores(model, tok, PROMPTS, RESPONSES).ifd
    # a threshold in the middle of the observed IFDs flags some pairs and not others
    t = float(np.median(ref))
    tri = _fit(model, tok, max_ifd=t, abrupt_end=None, dedup="none")
    np.testing.assert_allclose(tri.ifd_, ref, rtol=1e-5)
    flagged = ref >= t
    assert flagged.any() and (~flagged).any()
    table = tri.result_.to_table()
    sel = np.array(table["selection"])
    # every flagged pair is left out as misaligned (Q1) while enough others exist
    assert (sel[flagged] == "misaligned").all()
    assert not tri.result_.samples.kept[flagged].any()
    assert (tri.quadrant_[flagged] == 1).all()
    assert tri.result_.summary()["quadrants"]["misaligned"] == int(flagged.sum())
    assert len(tri.kept_indices_) == round(len(PROMPTS) * 0.25)
    # the same decision as the plane's noise flags
    ref_triage = triage_samples(
        tri.perplexity_, tri.entropy_, QTuningConfig(sample_ratio=0.25), noise=flagged
    )
    assert np.array_equal(tri.result_.samples.kept, ref_triage.kept)
    # without max_ifd nothing is computed
    assert _fit(model, tok, max_ifd=None).ifd_ is None


def test_max_ifd_needs_ifd_in_the_functional_core(tiny_lm, caplog):
    from dataprune.qtuning import triage_token_scores

    model, tok = tiny_lm
    scores = score_sft(model, tok, PROMPTS, RESPONSES)
    cfg = QTuningConfig(max_ifd=1.0, abrupt_end=None, dedup="none")
    with caplog.at_level("WARNING", logger="dataprune.qtuning.static"):
        res = triage_token_scores(scores, cfg)
    assert "max_ifd=1.0 is skipped" in caplog.text
    assert res.ifd is None and res.summary()["quadrants"]["misaligned"] == 0
    ifd = np.where(np.arange(len(scores)) % 2 == 0, 2.0, 0.5)  # every other pair misaligned
    res = triage_token_scores(scores, cfg, ifd=ifd)
    assert res.summary()["quadrants"]["misaligned"] == int((ifd >= 1.0).sum())
    assert not res.samples.kept[ifd >= 1.0].any()
    with pytest.raises(DataValidationError, match="ifd has shape"):
        triage_token_scores(scores, QTuningConfig(max_ifd=1.0), ifd=np.ones(3))
    with pytest.raises(DataValidationError, match="max_ifd must be"):
        QTuningConfig(max_ifd=0)


def test_fit_with_groups_triages_each_source_on_its_own_ranks(tiny_lm):
    model, tok = tiny_lm
    groups = ["a" if i % 2 else "b" for i in range(len(PROMPTS))]
    cfg = QTuningConfig(sample_ratio=0.5, token_ratio=0.5, max_ifd=None, dedup="none")
    tri = QTuningTriage(cfg, model=model, tokenizer=tok, batch_size=5, random_state=0).fit(
        PROMPTS, RESPONSES, groups=groups
    )
    ref = triage_samples(tri.perplexity_, tri.entropy_, cfg, groups=groups, random_state=0)
    pooled = triage_samples(tri.perplexity_, tri.entropy_, cfg, random_state=0)
    assert np.array_equal(tri.result_.samples.kept, ref.kept)
    assert not np.allclose(ref.ppl_rank, pooled.ppl_rank)  # the ranks are the groups' own
    with pytest.raises(DataValidationError, match="groups has 2 labels"):
        QTuningTriage(cfg, model=model, tokenizer=tok).fit(PROMPTS, RESPONSES, groups=["a", "b"])
