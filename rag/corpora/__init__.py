"""Sentence-labelled evidence sets beyond SQuAD (HotpotQA, MuSiQue, SelQA, WikiQA, Climate-FEVER)."""

from __future__ import annotations

from dataprune.rag.corpora.build import example_from_sentences, example_from_text, join_sentences
from dataprune.rag.corpora.sets import EVIDENCE_SETS, EvidenceSet, load_evidence_set

__all__ = [
    "EVIDENCE_SETS",
    "EvidenceSet",
    "example_from_sentences",
    "example_from_text",
    "join_sentences",
    "load_evidence_set",
]
