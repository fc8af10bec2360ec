"""Lexical tokens shared by the BM25 pieces (baseline filter, hard-negative mining)."""

from __future__ import annotations

import re

__all__ = ["STOPWORDS", "content_tokens"]

#: Function words dropped before BM25: question words and articles carry no topical signal.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "by",
        "with",
        "from",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "did",
        "do",
        "does",
        "that",
        "this",
        "these",
        "those",
        "it",
        "its",
        "as",
    ]
)


def content_tokens(text: str) -> list[str]:
    """Lower-cased word tokens of ``text`` without :data:`STOPWORDS`."""
    return [w for w in re.findall(r"\w+", text.lower()) if w not in STOPWORDS]
