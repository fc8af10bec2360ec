"""Cheap sentence filters that pruners are compared with (same inputs, same metrics).

Each ``*_scores`` function returns one float array per passage (higher = keep):

* :func:`lead_scores`: earlier sentences first (lead-k keeps the first k);
* :func:`random_scores`: a seeded random order (random-k);
* :func:`bm25_scores`: BM25 of each sentence for the query, IDF over all sentences given;
* :func:`embedding_scores`: cosine similarity of query and sentence embeddings (all-MiniLM-L6-v2
  by default), what LangChain's ``EmbeddingsFilter`` (global similarity threshold) and
  LlamaIndex's ``SentenceEmbeddingOptimizer`` (per-passage percentile / threshold cut-off) do.

:func:`keep_global_threshold` and :func:`keep_top_k` / :func:`keep_top_fraction` turn scores into
keep masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dataprune.rag.lexical import content_tokens

__all__ = [
    "bm25_scores",
    "embedding_scores",
    "keep_global_threshold",
    "keep_top_fraction",
    "keep_top_k",
    "lead_scores",
    "random_scores",
]


def lead_scores(n_sentences: Sequence[int]) -> list[np.ndarray]:
    """Score ``-position`` (first sentence highest)."""
    return [-np.arange(n, dtype=np.float64) for n in n_sentences]


def random_scores(n_sentences: Sequence[int], *, random_state: int = 0) -> list[np.ndarray]:
    """A seeded random score per sentence."""
    rng = np.random.default_rng(random_state)
    return [rng.random(n) for n in n_sentences]


def bm25_scores(queries: Sequence[str], sentences: Sequence[Sequence[str]]) -> list[np.ndarray]:
    """BM25 (Okapi, rank-bm25) of each passage's sentences for its query.

    Parameters
    ----------
    queries : sequence of str
        Shape ``(n_passages,)``.
    sentences : sequence of sequence of str
        Sentence texts of each passage; IDF statistics come from all of them (unique texts).
    """
    from rank_bm25 import BM25Okapi

    uniq = list(dict.fromkeys(s for ss in sentences for s in ss))
    if not uniq:
        return [np.zeros(0) for _ in sentences]
    pos = {s: i for i, s in enumerate(uniq)}
    bm25 = BM25Okapi([content_tokens(s) or ["<empty>"] for s in uniq])
    out = []
    for q, ss in zip(queries, sentences):
        ids = [pos[s] for s in ss]
        out.append(
            np.asarray(bm25.get_batch_scores(content_tokens(q), ids), dtype=np.float64)
            if ids
            else np.zeros(0)
        )
    return out


def embedding_scores(
    queries: Sequence[str],
    sentences: Sequence[Sequence[str]],
    *,
    encoder: Any = None,
    batch_size: int = 64,
    show_progress_bar: bool | None = None,
) -> list[np.ndarray]:
    """Cosine similarity of each sentence with its query (sentence-transformers encoder)."""
    from dataprune.embeddings import embed_texts

    uq = list(dict.fromkeys(queries))
    us = list(dict.fromkeys(s for ss in sentences for s in ss))
    Q = np.asarray(
        embed_texts(uq, encoder, batch_size=batch_size, show_progress_bar=show_progress_bar)
    )
    S = np.asarray(
        embed_texts(us, encoder, batch_size=batch_size, show_progress_bar=show_progress_bar)
    )
    qpos = {q: i for i, q in enumerate(uq)}
    spos = {s: i for i, s in enumerate(us)}
    return [
        S[[spos[s] for s in ss]] @ Q[qpos[q]] if ss else np.zeros(0)
        for q, ss in zip(queries, sentences)
    ]


def keep_global_threshold(scores: Sequence[np.ndarray], threshold: float) -> list[np.ndarray]:
    """Keep sentences scoring above one threshold shared by all passages."""
    return [np.asarray(s) > threshold for s in scores]


def keep_top_k(scores: Sequence[np.ndarray], k: int) -> list[np.ndarray]:
    """Keep the ``k`` best sentences of every passage (ties by position)."""
    out = []
    for s in scores:
        m = np.zeros(len(s), dtype=bool)
        if k > 0 and len(s):
            m[np.argsort(-np.asarray(s), kind="stable")[:k]] = True
        out.append(m)
    return out


def keep_top_fraction(scores: Sequence[np.ndarray], fraction: float) -> list[np.ndarray]:
    """Keep the best ``ceil(fraction * n)`` sentences of every passage (percentile cut-off)."""
    out = []
    for s in scores:
        n = len(s)
        k = int(np.ceil(fraction * n - 1e-9)) if n else 0
        m = np.zeros(n, dtype=bool)
        if k:
            m[np.argsort(-np.asarray(s), kind="stable")[:k]] = True
        out.append(m)
    return out
