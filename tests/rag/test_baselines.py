"""The simple sentence filters the pruner is compared with (dataprune.rag.baselines)."""

from __future__ import annotations

import numpy as np

from dataprune.rag import baselines as bl


def test_keep_rules_on_scores():
    scores = [np.array([0.2, 0.9, 0.5, 0.9]), np.array([]), np.array([0.1])]
    # top-k: the k best of every passage, ties by position
    assert [m.tolist() for m in bl.keep_top_k(scores, 2)] == [
        [False, True, False, True],
        [],
        [True],
    ]
    assert [m.tolist() for m in bl.keep_top_k(scores, 0)] == [[False] * 4, [], [False]]
    # top fraction: ceil(fraction * n) of every passage, at least one of a non-empty passage
    assert [int(m.sum()) for m in bl.keep_top_fraction(scores, 0.5)] == [2, 0, 1]
    assert [int(m.sum()) for m in bl.keep_top_fraction(scores, 0.26)] == [2, 0, 1]
    assert bl.keep_top_fraction(scores, 0.25)[0].tolist() == [False, True, False, False]
    # one global threshold: strictly above it
    assert [m.tolist() for m in bl.keep_global_threshold(scores, 0.5)] == [
        [False, True, False, True],
        [],
        [False],
    ]


def test_lead_and_random_scores():
    lead = bl.lead_scores([3, 0, 1])
    assert [s.tolist() for s in lead] == [[0.0, -1.0, -2.0], [], [0.0]]
    a, b = bl.random_scores([4, 2], random_state=5), bl.random_scores([4, 2], random_state=5)
    assert [len(s) for s in a] == [4, 2] and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], bl.random_scores([4, 2], random_state=6)[0])


def test_bm25_prefers_the_sentence_that_shares_the_query_words():
    other = ["The river flows north.", "Bread needs flour.", "Cats sleep a lot.", "Snow is cold."]
    sents = [["Paris is the capital of France.", "It rained all day."], [], other]
    got = bl.bm25_scores(["What is the capital of France?", "anything", "snow"], sents)
    assert got[0][0] > got[0][1] and got[1].shape == (0,)
    assert got[2].argmax() == 3
    assert [s.shape for s in bl.bm25_scores(["q"], [[]])] == [(0,)]
