from __future__ import annotations

import numpy as np
import pytest

from dataprune.errors import DataValidationError, UnknownOptionError
from dataprune.rag.inference import PassageScores
from dataprune.rag.selection import render, select_passages, select_sentences
from dataprune.rag.sentences import split_sentences

TEXT = "Title here. The zebra lives in Africa. Cats sit.\nDogs bark."


def scores(probs, text=TEXT, passage_score=0.7):
    sents = split_sentences(text)
    assert len(sents) == len(probs)
    tp = [np.asarray(p, dtype=np.float32) for p in probs]
    return PassageScores(sents, tp, np.array([len(p) for p in probs]), passage_score, 0.85, 1)


def test_mean_prob_vs_vote():
    # mean 0.3 > 0.1 but only 1 of 3 tokens above 0.1 -> mean_prob keeps, vote drops
    s = scores([[0.0, 0.0], [0.9, 0.0, 0.0], [0.05, 0.05], [0.2, 0.2]])
    assert select_sentences(s, threshold=0.1).tolist() == [False, True, False, True]
    assert select_sentences(s, threshold=0.1, aggregation="vote").tolist() == [
        False,
        False,
        False,
        True,
    ]
    assert select_sentences(s, threshold=0.5).tolist() == [False, False, False, False]


def test_title_rule():
    s = scores([[0.0], [0.9], [0.0], [0.0]])
    assert select_sentences(s, threshold=0.1, always_select_title=True).tolist() == [
        True,
        True,
        False,
        False,
    ]
    s2 = scores([[0.9], [0.0], [0.0], [0.0]])
    # the title alone is never kept
    assert not select_sentences(s2, threshold=0.1, always_select_title=True).any()
    assert select_sentences(s2, threshold=0.1).tolist() == [True, False, False, False]


def test_render_keeps_order_and_separators():
    s = scores([[0.0], [0.9], [0.9], [0.0]])
    p = render(TEXT, s, np.array([False, True, True, False]))
    assert p.text == "The zebra lives in Africa. Cats sit."
    p2 = render(TEXT, s, np.array([True, False, True, True]))
    assert p2.text == "Title here. Cats sit.\nDogs bark."
    assert p2.kept_sentences == [0, 2, 3]
    n = sum(len(x.text) for x in s.sentences)
    assert p2.compression_chars == pytest.approx(1 - (n - len("The zebra lives in Africa.")) / n)
    assert p2.compression_tokens == pytest.approx(1 / 4)
    empty = render(TEXT, s, np.zeros(4, bool))
    assert empty.text == "" and empty.is_empty and empty.compression_chars == 1.0


def test_budget_drops_lowest_scores_across_passages():
    a = scores([[0.2, 0.2], [0.9, 0.9, 0.9], [0.3, 0.3], [0.4, 0.4]])
    b = scores([[0.95], [0.15, 0.15, 0.15], [0.0, 0.0], [0.0, 0.0]])
    out = select_passages([TEXT, TEXT], [a, b], threshold=0.1, max_tokens=6)
    kept_tokens = sum(p.n_tokens * (1 - p.compression_tokens) for p in out)
    assert kept_tokens <= 6
    assert out[0].kept_sentences == [1, 3] and out[1].kept_sentences == [0]
    r = select_passages([TEXT], [a], threshold=0.0, rate=0.5)
    assert r[0].n_tokens * (1 - r[0].compression_tokens) <= 0.5 * 9


@pytest.mark.parametrize("bad", [-0.1, 1.5, "0.1", True])
def test_bad_threshold(bad):
    with pytest.raises(DataValidationError, match="threshold"):
        select_sentences(scores([[0.1]] * 4), threshold=bad)


def test_unknown_aggregation_lists_valid_names():
    with pytest.raises(UnknownOptionError, match="mean_prob, vote"):
        select_sentences(scores([[0.1]] * 4), aggregation="max")


def test_bad_budget():
    with pytest.raises(DataValidationError, match="max_tokens"):
        select_passages([TEXT], [scores([[0.1]] * 4)], max_tokens=-1)
    with pytest.raises(DataValidationError, match="rate"):
        select_passages([TEXT], [scores([[0.1]] * 4)], rate=2.0)
