"""Sentence-relevance labels from SQuAD v2 and an article-level train / validation / test split.

* A sentence is relevant to a question when it overlaps a gold answer span (all annotator spans
  are used); unanswerable questions (``is_impossible``) have no relevant sentence.
* Extra negatives pair an answerable question with another paragraph that does not contain any
  of its answer strings: a *hard* one (the BM25-nearest paragraph of the same article, what a
  retriever would return) or a *random* one from another article.
* The split is by article, so no held-out paragraph or topic is seen in training.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dataprune.errors import DataValidationError
from dataprune.rag.lexical import content_tokens
from dataprune.rag.sentences import Sentence, split_sentences

logger = logging.getLogger(__name__)

__all__ = [
    "ArticleSplit",
    "PruningExample",
    "build_examples",
    "load_squad_v2",
    "split_articles",
]


@dataclass
class PruningExample:
    """A (query, passage) pair with sentence labels.

    Attributes
    ----------
    query, passage : str
    sentences : list of Sentence
        ``split_sentences(passage)``.
    labels : list of int
        Shape ``(n_sentences,)``; 1 = the sentence holds (part of) the answer.
    answers : list of str
        Gold answer strings (empty for unanswerable questions and negatives).
    kind : str
        ``"answerable"``, ``"unanswerable"``, ``"hard_negative"`` or ``"random_negative"``.
    article : str
        Title of the question's article.
    qid : str
    """

    query: str
    passage: str
    sentences: list[Sentence]
    labels: list[int]
    answers: list[str] = field(default_factory=list)
    kind: str = "answerable"
    article: str = ""
    qid: str = ""

    @property
    def has_answer(self) -> bool:
        return any(self.labels)


@dataclass(frozen=True)
class ArticleSplit:
    """Article titles of each split (disjoint)."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def to_dict(self) -> dict[str, list[str]]:
        return {"train": list(self.train), "val": list(self.val), "test": list(self.test)}


def _squad_file(path: str | os.PathLike[str]) -> Path:
    p = Path(path).expanduser()
    if p.is_dir():
        for name in ("dev-v2.0.json", "train-v2.0.json"):
            if (p / name).is_file():
                return p / name
        hits = sorted(p.glob("*.json"))
        if not hits:
            raise DataValidationError("no SQuAD v2 JSON file in this folder", source=str(p))
        return hits[0]
    if not p.is_file():
        raise DataValidationError("file not found", source=str(p))
    return p


def load_squad_v2(path: str | os.PathLike[str]) -> list[dict]:
    """Read a SQuAD v2 JSON file (or a folder holding one); returns the ``data`` list.

    Raises
    ------
    DataValidationError
        When the file is not SQuAD-shaped (naming the article / paragraph / field).
    """
    src = _squad_file(path)
    try:
        raw = json.loads(src.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataValidationError(f"malformed JSON ({exc.msg})", source=str(src)) from exc
    data = raw.get("data") if isinstance(raw, dict) else None
    if not isinstance(data, list) or not data:
        raise DataValidationError(
            "expected a SQuAD JSON object with a non-empty 'data' list", source=str(src)
        )
    for a_i, art in enumerate(data):
        if not isinstance(art, dict) or not isinstance(art.get("paragraphs"), list):
            raise DataValidationError(
                "expected an article with a 'paragraphs' list", source=str(src), record=a_i
            )
        for p_i, para in enumerate(art["paragraphs"]):
            if not isinstance(para.get("context"), str) or not isinstance(para.get("qas"), list):
                raise DataValidationError(
                    f"paragraph {p_i}: expected 'context' (string) and 'qas' (list)",
                    source=str(src),
                    record=a_i,
                )
    return data


def split_articles(
    titles: Sequence[str], *, n_test: int = 4, n_val: int = 1, random_state: int = 0
) -> ArticleSplit:
    """Seeded article-level split."""
    import numpy as np

    titles = list(dict.fromkeys(titles))
    if n_test + n_val >= len(titles):
        raise DataValidationError(
            f"cannot hold out {n_test} test + {n_val} validation articles out of {len(titles)}"
        )
    order = np.random.default_rng(random_state).permutation(len(titles))
    shuffled = [titles[i] for i in order]
    test = tuple(sorted(shuffled[:n_test]))
    val = tuple(sorted(shuffled[n_test : n_test + n_val]))
    train = tuple(sorted(shuffled[n_test + n_val :]))
    return ArticleSplit(train, val, test)


def sentence_labels(sentences: list[Sentence], spans: list[tuple[int, int]]) -> list[int]:
    """1 for every sentence overlapping one of the ``[start, end)`` character spans."""
    return [int(any(s.start < e and s.end > b for b, e in spans)) for s in sentences]


def build_examples(
    data: list[dict],
    articles: Sequence[str],
    *,
    negatives_per_question: int = 1,
    negative_kinds: Sequence[str] = ("hard_negative", "random_negative"),
    unanswerable_share: float = 1.0,
    negative_pool: list[dict] | None = None,
    random_state: int = 0,
) -> list[PruningExample]:
    """Examples for the questions of ``articles``.

    Parameters
    ----------
    data : list of dict
        SQuAD ``data`` list (:func:`load_squad_v2`).
    articles : sequence of str
        Titles to build from.
    negatives_per_question : int
        Extra negatives per answerable question, cycling through ``negative_kinds``.
    negative_kinds : sequence of str
        ``"hard_negative"`` (BM25-nearest other paragraph of the same article) and/or
        ``"random_negative"`` (a paragraph of another article among ``articles``, or of
        ``negative_pool`` when given).
    unanswerable_share : float
        Share of unanswerable questions kept (seeded subsample).
    negative_pool : list of dict, optional
        Articles to draw random negatives from (default: the selected ones).
    random_state : int

    Returns
    -------
    list of PruningExample
        In article / paragraph / question order, each question followed by its negatives.
    """
    import numpy as np
    from rank_bm25 import BM25Okapi

    for kind in negative_kinds:
        if kind not in ("hard_negative", "random_negative"):
            raise DataValidationError(f"unknown negative kind {kind!r}")
    rng = np.random.default_rng(random_state)
    wanted = set(articles)
    chosen = [a for a in data if a.get("title") in wanted]
    missing = wanted - {a.get("title") for a in chosen}
    if missing:
        raise DataValidationError(f"articles not in the data: {sorted(missing)}")
    pool = negative_pool if negative_pool is not None else chosen
    pool_paras = [(a["title"], p["context"]) for a in pool for p in a["paragraphs"]]
    sent_cache: dict[str, list[Sentence]] = {}

    def sents(text: str) -> list[Sentence]:
        if text not in sent_cache:
            sent_cache[text] = split_sentences(text)
        return sent_cache[text]

    out: list[PruningExample] = []
    for art in chosen:
        title = art["title"]
        contexts = [p["context"] for p in art["paragraphs"]]
        bm25 = BM25Okapi([content_tokens(c) for c in contexts])
        for p_i, para in enumerate(art["paragraphs"]):
            ctx = para["context"]
            ss = sents(ctx)
            for qa in para["qas"]:
                q = qa["question"].strip()
                if not q:
                    continue
                answers = [a for a in qa.get("answers", []) if a.get("text")]
                if qa.get("is_impossible") or not answers:
                    if rng.random() >= unanswerable_share:
                        continue
                    out.append(
                        PruningExample(
                            q, ctx, ss, [0] * len(ss), [], "unanswerable", title, qa["id"]
                        )
                    )
                    continue
                spans = [(a["answer_start"], a["answer_start"] + len(a["text"])) for a in answers]
                texts = list(dict.fromkeys(a["text"] for a in answers))
                out.append(
                    PruningExample(
                        q, ctx, ss, sentence_labels(ss, spans), texts, "answerable", title, qa["id"]
                    )
                )
                low = [t.lower() for t in texts]
                for k in range(negatives_per_question):
                    kind = negative_kinds[k % len(negative_kinds)]
                    neg = None
                    if kind == "hard_negative":
                        scores = bm25.get_scores(content_tokens(q))
                        for j in np.argsort(-scores, kind="stable"):
                            if j != p_i and not any(t in contexts[j].lower() for t in low):
                                neg = contexts[j]
                                break
                    else:
                        for _ in range(20):
                            t2, c2 = pool_paras[int(rng.integers(len(pool_paras)))]
                            if t2 != title and not any(t in c2.lower() for t in low):
                                neg = c2
                                break
                    if neg is None:
                        continue
                    ns = sents(neg)
                    out.append(PruningExample(q, neg, ns, [0] * len(ns), [], kind, title, qa["id"]))
    return out
