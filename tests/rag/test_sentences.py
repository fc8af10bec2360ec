from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataprune.rag.sentences import split_sentences


def texts(t):
    return [s.text for s in split_sentences(t)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Dr. Smith went to Washington. He arrived at 3.30 p.m. on Jan. 5. Then he left!",
            [
                "Dr. Smith went to Washington.",
                "He arrived at 3.30 p.m. on Jan. 5.",
                "Then he left!",
            ],
        ),
        (
            "The U.S. economy grew 2.5% in 2019. It was the best year.",
            ["The U.S. economy grew 2.5% in 2019.", "It was the best year."],
        ),
        (
            '"Stop." She left. "Is it?" she asked. Yes.',
            ['"Stop."', "She left.", '"Is it?" she asked.', "Yes."],
        ),
        (
            "J. R. R. Tolkien wrote books, e.g. The Hobbit. He taught.",
            ["J. R. R. Tolkien wrote books, e.g. The Hobbit.", "He taught."],
        ),
        ("Wait... what? Really?! Yes.", ["Wait... what?", "Really?!", "Yes."]),
        (
            "Items: apples, pears, etc. The store closed. See No. 5 here.",
            ["Items: apples, pears, etc.", "The store closed.", "See No. 5 here."],
        ),
        (
            "Version 1.2.3 shipped (see Fig. 2). Pi is 3.14159.",
            ["Version 1.2.3 shipped (see Fig. 2).", "Pi is 3.14159."],
        ),
        ("这是第一句。这是第二句！第三句？", ["这是第一句。", "这是第二句！", "第三句？"]),
        ("", []),
        ("   \n\n ", []),
        ("no final punctuation here", ["no final punctuation here"]),
    ],
)
def test_known_cases(text, expected):
    assert texts(text) == expected


def test_newlines():
    t = "Title line\nFirst sentence here. Second\nwrapped line continues.\n\nNew paragraph\n- bullet one\n- bullet two\n1. item"
    assert texts(t) == [
        "Title line",
        "First sentence here.",
        "Second\nwrapped line continues.",
        "New paragraph",
        "- bullet one",
        "- bullet two",
        "1. item",
    ]


def test_rejects_non_string():
    with pytest.raises(TypeError, match="expected a string"):
        split_sentences(None)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab .!?\n\"'A1,")), max_size=80))
def test_offsets_cover_text_in_order(text):
    sents = split_sentences(text)
    prev_end = 0
    for s in sents:
        assert text[s.start : s.end] == s.text
        assert s.text == s.text.strip() and s.text
        assert s.start >= prev_end
        assert text[prev_end : s.start].strip() == ""
        prev_end = s.end
    assert text[prev_end:].strip() == ""
