"""Build :class:`~dataprune.rag.labels.PruningExample` objects from sentence-labelled passages.

The evidence sets give a passage as a list of sentences (HotpotQA, SelQA, WikiQA, Climate-FEVER)
or as plain text with the evidence located otherwise (MuSiQue). Either way the passage text is
re-split with the toolkit's own splitter (what the pruner sees at inference), and a sentence of
that split is evidence when its character span overlaps an evidence span of the source.
"""

from __future__ import annotations

from collections.abc import Sequence

from dataprune.rag.labels import PruningExample, sentence_labels
from dataprune.rag.sentences import split_sentences

__all__ = ["example_from_sentences", "example_from_text", "join_sentences"]


def join_sentences(
    sentences: Sequence[str], title: str | None = None
) -> tuple[str, list[tuple[int, int]]]:
    """Join source sentences into one passage text, with each sentence's character span.

    Parameters
    ----------
    sentences : sequence of str
        In passage order. Leading/trailing whitespace of each is dropped; sentences are joined
        by one space.
    title : str, optional
        Written as the passage's first line (its own sentence for the splitter).

    Returns
    -------
    text : str
    spans : list of (int, int)
        ``[start, end)`` of every source sentence in ``text``, shape ``(len(sentences),)``; an
        empty sentence gets an empty span.
    """
    parts: list[str] = []
    pos = 0
    if title and title.strip():
        head = title.strip() + "\n"
        parts.append(head)
        pos = len(head)
    spans: list[tuple[int, int]] = []
    for i, s in enumerate(sentences):
        s = s.strip()
        if i and s and parts and not parts[-1].endswith(("\n", " ")):
            parts.append(" ")
            pos += 1
        spans.append((pos, pos + len(s)))
        parts.append(s)
        pos += len(s)
    return "".join(parts), spans


def example_from_text(
    query: str,
    text: str,
    evidence_spans: Sequence[tuple[int, int]],
    *,
    answers: Sequence[str] = (),
    kind: str | None = None,
    article: str = "",
    qid: str = "",
) -> PruningExample:
    """An example whose evidence is given as character spans of ``text``.

    Parameters
    ----------
    query, text : str
    evidence_spans : sequence of (int, int)
        ``[start, end)`` spans; every sentence overlapping one is labelled 1.
    answers : sequence of str
    kind : str, optional
        Default ``"answerable"`` when some sentence is evidence, else ``"hard_negative"``.
    article, qid : str

    Returns
    -------
    PruningExample
    """
    sents = split_sentences(text)
    labels = sentence_labels(sents, [(b, e) for b, e in evidence_spans if e > b])
    if kind is None:
        kind = "answerable" if any(labels) else "hard_negative"
    return PruningExample(query, text, sents, labels, list(answers), kind, article, qid)


def example_from_sentences(
    query: str,
    sentences: Sequence[str],
    evidence: Sequence[int],
    *,
    title: str | None = None,
    answers: Sequence[str] = (),
    kind: str | None = None,
    article: str = "",
    qid: str = "",
) -> PruningExample:
    """An example from source sentences and the indices of the evidence among them.

    Parameters
    ----------
    query : str
    sentences : sequence of str
    evidence : sequence of int
        0-based indices into ``sentences``.
    title : str, optional
        First line of the passage (never evidence).
    answers, kind, article, qid
        As for :func:`example_from_text`.

    Returns
    -------
    PruningExample
    """
    text, spans = join_sentences(sentences, title)
    ev = [spans[i] for i in sorted(set(evidence)) if 0 <= i < len(spans)]
    return example_from_text(query, text, ev, answers=answers, kind=kind, article=article, qid=qid)
