from __future__ import annotations

import pytest

from dataprune.errors import DataValidationError
from dataprune.rag.labelled import evidence_spans, examples_from_records

PASSAGE = "Warsaw was founded in 1300. The Vistula flows through WARSAW. It rained all day."


def test_strings_mark_every_sentence_they_occur_in_case_insensitively():
    (ex,) = examples_from_records(["where?"], [PASSAGE], [["warsaw"]])
    assert [s.text for s in ex.sentences][1].startswith("The Vistula")
    assert ex.labels == [1, 1, 0] and ex.has_answer and ex.qid == "where?"


def test_spans_and_no_evidence():
    start = PASSAGE.index("It rained")
    a, b = examples_from_records(["q", "q"], [PASSAGE, PASSAGE], [[[start, start + 5]], []])
    assert a.labels == [0, 0, 1]
    assert b.labels == [0, 0, 0] and not b.has_answer
    assert evidence_spans(PASSAGE, None) == []


@pytest.mark.parametrize(
    "evidence, message",
    [
        (["Kraków"], "'Kraków' does not occur in the passage"),
        ([[5, 500]], r"span \[5, 500\] is not within the passage"),
        ([[9, 3]], "start < end"),
        ("Warsaw", "expected a list of evidence strings"),
        ([["a", 1]], "a string or a \\[start, end\\] pair of integers"),
        ([" "], "an evidence string is empty"),
    ],
)
def test_bad_evidence_names_the_record_and_field(evidence, message):
    with pytest.raises(DataValidationError, match=message) as err:
        examples_from_records(
            ["q", "q"], [PASSAGE, PASSAGE], [[], evidence], source="x.jsonl", record_ids=[4, 7]
        )
    assert str(err.value).startswith("x.jsonl, record 7, field 'evidence': ")


def test_lengths_must_agree():
    with pytest.raises(DataValidationError, match="one of each per record"):
        examples_from_records(["q"], [PASSAGE, PASSAGE], [[], []])
