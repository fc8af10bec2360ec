"""keep_patterns: sentences matching a pattern survive the threshold, the title rule and budgets."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest

from dataprune.errors import DataValidationError
from dataprune.rag import KEEP_PATTERNS
from dataprune.rag.inference import PassageScores
from dataprune.rag.patterns import compile_keep_patterns, forced_mask
from dataprune.rag.selection import select_passages
from dataprune.rag.sentences import split_sentences

TEXT = "Title 7 here. The zebra lives in Africa. It cost 42 dollars.\nDogs bark."


def scores(probs, text=TEXT, passage_score=0.7):
    sents = split_sentences(text)
    assert len(sents) == len(probs)
    tp = [np.asarray(p, dtype=np.float32) for p in probs]
    return PassageScores(sents, tp, np.array([len(p) for p in probs]), passage_score, 0.85, 1)


def test_forced_sentence_is_kept_below_threshold_and_listed():
    s = scores([[0.0], [0.9, 0.9], [0.0, 0.0, 0.0], [0.0]])
    (plain,) = select_passages([TEXT], [s], threshold=0.1)
    assert plain.kept_sentences == [1] and plain.forced_sentences == []
    (p,) = select_passages([TEXT], [s], threshold=0.1, keep_patterns=[r"\b42\b"])
    assert p.kept_sentences == [1, 2]
    assert p.forced_sentences == [2]
    assert p.text == "The zebra lives in Africa. It cost 42 dollars."
    assert p.to_dict()["forced_sentences"] == [2]
    # even at threshold 1 (nothing passes) the matching sentence stays
    (q,) = select_passages([TEXT], [s], threshold=1.0, keep_patterns=[r"dollars"])
    assert q.kept_sentences == [2] and q.forced_sentences == [2]


def test_sentence_kept_by_score_is_not_listed_as_forced():
    s = scores([[0.0], [0.9, 0.9], [0.5, 0.5, 0.5], [0.0]])
    (p,) = select_passages([TEXT], [s], threshold=0.1, keep_patterns=[r"\d"])
    # sentence 0 ("Title 7 here.") is forced, sentence 2 also matches but passes the threshold
    assert p.kept_sentences == [0, 1, 2]
    assert p.forced_sentences == [0]


def test_forced_sentences_count_as_kept_for_the_title_rule():
    s = scores([[0.0], [0.0, 0.0], [0.0, 0.0, 0.0], [0.0]])
    (p,) = select_passages(
        [TEXT], [s], threshold=0.1, always_select_title=True, keep_patterns=["dollars"]
    )
    assert p.kept_sentences == [0, 2]  # the title follows the forced sentence
    assert p.forced_sentences == [2]
    # a forced title is kept on its own, whatever the title rule says
    (t,) = select_passages(
        [TEXT], [s], threshold=0.1, always_select_title=True, keep_patterns=["Title"]
    )
    assert t.kept_sentences == [0] and t.forced_sentences == [0]
    # without patterns the title alone is never kept
    (n,) = select_passages([TEXT], [s], threshold=0.1, always_select_title=True)
    assert n.kept_sentences == []


def test_budget_drops_only_unforced_sentences(caplog):
    # token counts per sentence: 1, 2, 3, 1
    a = scores([[0.2], [0.9, 0.9], [0.3, 0.3, 0.3], [0.4]])
    (p,) = select_passages([TEXT], [a], threshold=0.1, max_tokens=4, keep_patterns=["dollars"])
    # lowest scores go first: 0 (0.2), then 2 (0.3, forced: skipped), 3 (0.4), 1 (0.9) until
    # at most 4 tokens remain; the budget would have dropped sentence 2, so it is listed
    assert p.kept_sentences == [2] and p.forced_sentences == [2]
    # forced sentences alone over the budget: kept anyway, and that is logged at INFO
    with caplog.at_level(logging.INFO, logger="dataprune.rag.selection"):
        (q,) = select_passages([TEXT], [a], threshold=0.1, max_tokens=1, keep_patterns=["dollars"])
    assert q.kept_sentences == [2] and q.forced_sentences == [2]
    assert any("over the budget" in r.message for r in caplog.records)
    assert all(r.levelno == logging.INFO for r in caplog.records)


def test_budget_across_passages_and_rate_keep_forced():
    a = scores([[0.2], [0.9, 0.9], [0.3, 0.3, 0.3], [0.4]])
    b = scores([[0.95], [0.15, 0.15], [0.5, 0.5, 0.5], [0.0]])
    out = select_passages(
        [TEXT, TEXT], [a, b], threshold=0.1, rate=0.0, keep_patterns=[re.compile("Title")]
    )
    assert [p.kept_sentences for p in out] == [[0], [0]]
    # both titles pass the threshold, but rate=0 would have dropped them: the pattern kept them
    assert [p.forced_sentences for p in out] == [[0], [0]]


def test_no_patterns_gives_exactly_the_old_selection():
    a = scores([[0.2], [0.9, 0.9], [0.3, 0.3, 0.3], [0.4]])
    b = scores([[0.95], [0.15, 0.15], [0.0, 0.0, 0.0], [0.0]])
    for kw in ({}, {"max_tokens": 4}, {"always_select_title": True, "rate": 0.5}):
        old = select_passages([TEXT, TEXT], [a, b], threshold=0.1, **kw)
        new = select_passages([TEXT, TEXT], [a, b], threshold=0.1, keep_patterns=[], **kw)
        assert [p.to_dict() for p in old] == [p.to_dict() for p in new]


@pytest.mark.parametrize(
    ("patterns", "match"),
    [
        (["ok", "(unclosed"], r"keep_patterns\[1\]: '\(unclosed' is not a valid regular"),
        ([""], r"keep_patterns\[0\]: the pattern is empty"),
        ([3], r"keep_patterns\[0\]: expected a regular expression string, got int"),
        (5, "keep_patterns: expected a list of regular expressions, got int"),
    ],
)
def test_bad_patterns_give_one_line_errors(patterns, match):
    with pytest.raises(DataValidationError, match=match) as err:
        compile_keep_patterns(patterns)
    assert "\n" not in str(err.value)


def test_one_pattern_string_counts_as_a_list_of_one():
    assert [p.pattern for p in compile_keep_patterns(r"\d")] == [r"\d"]
    assert compile_keep_patterns(None) == []


@pytest.mark.parametrize(
    ("name", "hits", "misses"),
    [
        ("numbers", ["It cost 42 dollars.", "Pi is 3.14.", "In the 13th century."], ["No."]),
        (
            "dates",
            ["On 2024-01-31.", "Due 31/01/2024.", "Born 5 Jan 1990.", "In March 1816."],
            ["It may rain.", "Version 1.2 is out."],
        ),
        ("urls", ["See https://example.org/x.", "Visit www.example.com today."], ["Use http."]),
        (
            "ids",
            ["Order SKU-1234 shipped.", "Fixed CVE-2024-3094.", "ISO9001 applies.", "At 1a2b3c4d."],
            ["A well-known fact.", "In 1816.", "The 13th day."],
        ),
    ],
)
def test_ready_made_patterns(name, hits, misses):
    pats = compile_keep_patterns([KEEP_PATTERNS[name]])
    assert forced_mask(hits, pats).all(), name
    assert not forced_mask(misses, pats).any(), name


def test_keep_patterns_through_the_pruner(default_pruner):
    q = "What is the capital of France?"
    ps = ["Paris is the capital of France. The Louvre opened on 10 August 1793. Dogs bark."]
    (plain,) = default_pruner.prune(q, ps, threshold=0.5)
    assert 0 in plain.kept_sentences and 1 not in plain.kept_sentences
    (p,) = default_pruner.prune(q, ps, threshold=0.5, keep_patterns=[KEEP_PATTERNS["dates"]])
    assert p.kept_sentences == sorted(set(plain.kept_sentences) | {1})
    assert p.forced_sentences == [1]
    out = default_pruner.prune_batch([q, q], [ps, ps], threshold=0.5, keep_patterns=["Dogs"])
    assert all(r[0].forced_sentences == [2] for r in out)
    with pytest.raises(DataValidationError, match=r"keep_patterns\[0\]: '\[' is not"):
        default_pruner.prune(q, ps, keep_patterns=["["])
