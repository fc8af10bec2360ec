"""Sentence labels from a user's own evidence: (query, passage, evidence) records to
:class:`~dataprune.rag.labels.PruningExample` objects that the pruning metrics score.

Evidence for a passage is one of:

* a list of strings: evidence sentences, excerpts or short answers; every occurrence in the passage
  (case-insensitive) marks the sentences it overlaps as evidence, so an answer string marks each
  sentence that contains it;
* a list of ``[start, end]`` character spans of the passage (end exclusive);
* an empty list (or null): a passage with no evidence, e.g. a retrieved distractor.

A string that does not occur in its passage, or a span outside it, is an error naming the record:
a silently unlabelled passage would count as a distractor and flatter the pruner.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from dataprune.errors import DataValidationError
from dataprune.rag.labels import PruningExample, sentence_labels
from dataprune.rag.sentences import split_sentences

__all__ = ["evidence_spans", "examples_from_records"]


def evidence_spans(passage: str, evidence: Any) -> list[tuple[int, int]]:
    """Character spans ``[start, end)`` of ``evidence`` in ``passage`` (see the module docstring).

    Raises
    ------
    DataValidationError
        For evidence of another type, an empty string, a string that does not occur in the
        passage, or a span that is not ``start < end`` within it (the message says which).
    """
    if evidence is None:
        return []
    if isinstance(evidence, str) or not isinstance(evidence, Sequence):
        raise DataValidationError(
            "expected a list of evidence strings or of [start, end] character spans, got "
            f"{type(evidence).__name__}"
        )
    spans: list[tuple[int, int]] = []
    for item in evidence:
        if isinstance(item, str):
            if not item.strip():
                raise DataValidationError("an evidence string is empty")
            found = [
                (m.start(), m.end())
                for m in re.finditer(re.escape(item.strip()), passage, re.IGNORECASE)
            ]
            if not found:
                shown = item if len(item) <= 60 else item[:57] + "..."
                raise DataValidationError(f"evidence {shown!r} does not occur in the passage")
            spans += found
        elif (
            isinstance(item, Sequence)
            and len(item) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in item)
        ):
            b, e = int(item[0]), int(item[1])
            if not 0 <= b < e <= len(passage):
                raise DataValidationError(
                    f"evidence span [{b}, {e}] is not within the passage's {len(passage)} "
                    "characters with start < end"
                )
            spans.append((b, e))
        else:
            raise DataValidationError(
                "each evidence item must be a string or a [start, end] pair of integers, got "
                f"{item!r}"
            )
    return spans


def examples_from_records(
    queries: Sequence[str],
    passages: Sequence[str],
    evidence: Sequence[Any],
    *,
    source: str | None = None,
    record_ids: Sequence[int] | None = None,
    field: str = "evidence",
) -> list[PruningExample]:
    """One labelled example per (query, passage, evidence) record.

    Parameters
    ----------
    queries, passages : sequence of str
        Shape ``(n_records,)``.
    evidence : sequence
        Shape ``(n_records,)``; each entry as in :func:`evidence_spans`.
    source, record_ids, field : optional
        Where the records came from, for error messages (``record_ids[i]`` is record ``i``'s
        position in the input; default ``i``).

    Returns
    -------
    list of PruningExample
        Sentences from :func:`~dataprune.rag.split_sentences` (what the pruner scores), label 1 for
        each sentence overlapping the evidence; ``qid`` is the query, so the passages of one
        query group together.
    """
    if not len(queries) == len(passages) == len(evidence):
        raise DataValidationError(
            f"got {len(queries)} queries, {len(passages)} passages and {len(evidence)} evidence "
            "entries; expected one of each per record"
        )
    out = []
    for i, (q, p, ev) in enumerate(zip(queries, passages, evidence)):
        rec = i if record_ids is None else int(record_ids[i])
        try:
            spans = evidence_spans(p, ev)
        except DataValidationError as exc:
            raise DataValidationError(exc.reason, source=source, record=rec, field=field) from None
        sentences = split_sentences(p)
        out.append(
            PruningExample(
                query=q,
                passage=p,
                sentences=sentences,
                labels=sentence_labels(sentences, spans),
                answers=[x for x in (ev or []) if isinstance(x, str)],
                kind="answerable" if spans else "negative",
                qid=q,
            )
        )
    return out
