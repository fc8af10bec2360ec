"""Multi-hop second pass: query extended by first-pass evidence, passes combined by maximum."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from dataprune.errors import DataValidationError
from dataprune.rag.inference import PassageScores
from dataprune.rag.second_pass import (
    SecondPassConfig,
    combine_scores,
    combine_token_probs,
    evidence_sentences,
    extend_query,
    second_pass_scores,
)
from dataprune.rag.selection import select_passages
from dataprune.rag.sentences import split_sentences

PASSAGES = [
    "The zebra lives in Africa. Paris is the capital of France.",
    "Warsaw was founded in the 13th century. The river Vistula flows through Warsaw. It rained.",
    "",
]


def scores(text, probs, passage_score=0.5):
    sents = split_sentences(text)
    tp = [np.asarray(p, dtype=np.float32) for p in probs]
    logit = float(np.log(passage_score / (1 - passage_score)))
    return PassageScores(sents, tp, np.array([len(p) for p in probs]), passage_score, logit, 1)


def test_combine_token_probs_elementwise_max_and_fallback():
    a = np.array([0.1, 0.8, 0.3], dtype=np.float32)
    b = np.array([0.5, 0.2, 0.3], dtype=np.float32)
    np.testing.assert_allclose(combine_token_probs(a, b), [0.5, 0.8, 0.3])
    # different lengths: the larger of the two means, over the first pass's tokens
    c = np.array([0.9, 0.9], dtype=np.float32)
    out = combine_token_probs(a, c)
    assert out.shape == (3,) and out.dtype == np.float32
    np.testing.assert_allclose(out, [0.9, 0.9, 0.9])
    low = np.array([0.0, 0.0], dtype=np.float32)
    np.testing.assert_allclose(combine_token_probs(a, low), np.full(3, a.mean()), rtol=1e-6)
    # empty arrays: nothing to combine
    assert combine_token_probs(np.zeros(0, np.float32), c).shape == (0,)
    np.testing.assert_allclose(combine_token_probs(a, np.zeros(0, np.float32)), [0.4] * 3)


def test_combine_scores_takes_the_larger_passage_score():
    t = PASSAGES[0]
    first = scores(t, [[0.1, 0.2], [0.9]], passage_score=0.3)
    second = scores(t, [[0.4, 0.0], [0.5]], passage_score=0.8)
    c = combine_scores(first, second)
    np.testing.assert_allclose(c.token_probs[0], [0.4, 0.2])
    np.testing.assert_allclose(c.token_probs[1], [0.9])
    assert c.passage_score == 0.8 and c.passage_logit == pytest.approx(second.passage_logit)
    assert c.sentences is first.sentences and first.passage_score == 0.3  # first not modified


def test_evidence_sentences_pick_top_passages_then_top_sentences_in_passage_order():
    p0 = "Aa one. Bb two. Cc three."
    p1 = "Dd four. Ee five."
    p2 = "Ff six. Gg seven."
    sc = [
        scores(p0, [[0.9], [0.1], [0.8]], passage_score=0.6),
        scores(p1, [[0.2], [0.7]], passage_score=0.2),
        scores(p2, [[0.3], [0.95]], passage_score=0.9),
    ]
    assert evidence_sentences(sc) == ["Aa one.", "Gg seven."]
    assert evidence_sentences(sc, n_passages=1, n_sentences=2) == ["Ff six.", "Gg seven."]
    assert evidence_sentences(sc, n_passages=3) == ["Aa one.", "Ee five.", "Gg seven."]
    # with the title rule a passage's first sentence is never evidence
    assert evidence_sentences(sc, always_select_title=True) == ["Cc three.", "Gg seven."]
    # passages without an eligible sentence are skipped
    one = "Only a title."
    sc2 = [scores(one, [[0.9]], passage_score=0.99), sc[1]]
    assert evidence_sentences(sc2, n_passages=1, always_select_title=True) == ["Ee five."]
    assert evidence_sentences([]) == []


def test_extend_query_respects_max_query_tokens(tiny_pruner):
    tok = tiny_pruner.tokenizer

    def n(text):
        return len(tok(text, add_special_tokens=False)["input_ids"])

    q = "Where does the zebra live?"
    sents = ["The zebra lives in Africa.", "Paris is the capital of France."]
    assert extend_query(q, sents, tok, 100) == f"{q} {sents[0]} {sents[1]}"
    cut = extend_query(q, sents, tok, 12)
    assert cut.startswith(q + " ") and n(cut) <= 12
    words = cut[len(q) + 1 :].split()
    # as many whole words as fit: one more would go over
    longer = f"{q} {' '.join(' '.join(sents).split()[: len(words) + 1])}"
    assert n(longer) > 12
    assert extend_query(q, sents, tok, n(q)) == q  # the query already fills the limit
    assert extend_query(q, [], tok, 100) == q


def test_second_pass_off_is_unchanged(tiny_pruner):
    queries = ["Where does the zebra live?", "When was Warsaw founded?"]
    passages = [PASSAGES, PASSAGES[1:2]]
    raw = tiny_pruner.score(queries, passages)
    want = [select_passages(ps, sc) for ps, sc in zip(passages, raw)]
    got = tiny_pruner.prune_batch(queries, passages, threshold=0.1)
    for w, g in zip(want, got):
        assert [p.to_dict() for p in w] == [p.to_dict() for p in g]
        assert all(p.extra == {} for p in g)


def test_second_pass_is_one_batched_call_and_never_lowers_scores(tiny_pruner, caplog):
    queries = ["Where does the zebra live?", "When was Warsaw founded?"]
    passages = [PASSAGES, PASSAGES[1:2]]
    first = tiny_pruner.prune_batch(queries, passages, threshold=0.0)
    calls = []
    score = tiny_pruner.score

    def counting(qs, ps, **kw):
        calls.append(list(qs))
        return score(qs, ps, **kw)

    tiny_pruner.score = counting
    try:
        with caplog.at_level(logging.WARNING, logger="dataprune.rag.windows"):
            second = tiny_pruner.prune_batch(queries, passages, threshold=0.0, second_pass=True)
    finally:
        del tiny_pruner.score
    assert len(calls) == 2  # the first pass, then one call for every query's second pass
    extended = calls[1]
    assert len(extended) == 2
    tok = tiny_pruner.tokenizer
    for q, e in zip(queries, extended):
        assert e.startswith(q + " ") and e != q
        assert len(tok(e, add_special_tokens=False)["input_ids"]) <= tiny_pruner.max_query_tokens
    assert "cut to max_query_tokens" not in caplog.text  # fitted here, not cut by the encoder
    for f_q, s_q, e in zip(first, second, extended):
        for f, s in zip(f_q, s_q):
            assert s.extra == {"second_pass": True, "extended_query": e}
            assert s.passage_score >= f.passage_score
            assert all(b >= a - 1e-6 for a, b in zip(f.sentence_scores, s.sentence_scores))


def test_second_pass_scores_match_a_manual_combination(tiny_pruner):
    q, ps = "Where does the zebra live?", PASSAGES[:2]
    first = tiny_pruner.score([q], [ps])
    combined, (ext,) = second_pass_scores(
        tiny_pruner, [q], [ps], first, SecondPassConfig(passages=1, sentences=1)
    )
    assert ext == extend_query(
        q, evidence_sentences(first[0], n_passages=1), tiny_pruner.tokenizer, 12
    )
    again = tiny_pruner.score([ext], [ps])[0]
    for f, a, c in zip(first[0], again, combined[0]):
        for x, y, z in zip(f.token_probs, a.token_probs, c.token_probs):
            np.testing.assert_allclose(z, np.maximum(x, y), atol=1e-6)
        assert c.passage_score == pytest.approx(max(f.passage_score, a.passage_score))


@pytest.mark.parametrize("bad", [{"second_pass_passages": 0}, {"second_pass_sentences": 1.5}])
def test_bad_second_pass_options(tiny_pruner, bad):
    with pytest.raises(DataValidationError, match="second_pass_"):
        tiny_pruner.prune("zebra?", PASSAGES[:1], second_pass=True, **bad)


def test_second_pass_finds_the_bridge_answer(default_pruner):
    """A two-hop question: the answer sentence never names the company; the bridge sentence
    ("founded by John Miller") extends the query and lifts the answer sentence."""
    q = "Where was the founder of Acme Corp born?"
    ps = [
        "Acme Corp is a company that makes rockets. It was founded by John Miller in 1950. "
        "The company is based in Ohio.",
        "John Miller was born in Springfield. He studied engineering. He liked cats.",
        "The weather in Ohio is cold in winter. Visit the state park in summer.",
    ]
    one = default_pruner.prune(q, ps)
    two = default_pruner.prune(q, ps, second_pass=True)
    ext = two[0].extra["extended_query"]
    assert "founded by John Miller" in ext
    assert two[1].sentence_scores[0] > one[1].sentence_scores[0] + 0.1
    assert 0 in two[1].kept_sentences
    assert two[1].passage_score >= one[1].passage_score
