"""Multi-hop second pass: re-score with the query extended by the best first-pass evidence.

A multi-hop question ("Where was the founder of X born?") often needs a bridge sentence ("X was
founded by Y.") before the sentence that answers it ("Y was born in Z.") looks relevant. After
the first scoring, for each query:

1. take its ``passages`` passages with the highest passage score (among passages with at least
   one eligible sentence; with ``always_select_title`` a passage's first sentence, its title, is
   not eligible);
2. from each, its ``sentences`` highest-scoring sentences (mean token keep-probability);
3. extend the query: ``query + " " + " ".join(those sentences)``, in passage order then sentence
   order, cut at a word boundary so the extended query fits ``max_query_tokens`` (the window
   encoder would otherwise cut the query's tail at that many tokens, with a warning);
4. re-score every passage of the query with the extended query (one batched forward for all
   queries) and combine: per-sentence token keep-probabilities are the elementwise maximum of
   the two passes (:func:`combine_token_probs`), the passage score the maximum of the two.

Selection (threshold, title rule, budgets, keep patterns) then runs on the combined scores.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.rag.inference import PassageScores

if TYPE_CHECKING:
    from dataprune.rag.pruner import ContextPruner

logger = logging.getLogger(__name__)

__all__ = [
    "SecondPassConfig",
    "combine_scores",
    "combine_token_probs",
    "evidence_sentences",
    "extend_query",
    "second_pass_scores",
]


@dataclass(frozen=True)
class SecondPassConfig:
    """Options of the multi-hop second pass.

    Parameters
    ----------
    passages : int, default=2
        Passages per query whose best sentences extend the query (highest passage score first).
    sentences : int, default=1
        Highest-scoring sentences taken from each of those passages.
    """

    passages: int = 2
    sentences: int = 1

    def __post_init__(self) -> None:
        for name in ("passages", "sentences"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise DataValidationError(f"second_pass_{name} must be an integer >= 1, got {v!r}")


def evidence_sentences(
    scores: Sequence[PassageScores],
    *,
    n_passages: int = 2,
    n_sentences: int = 1,
    always_select_title: bool = False,
) -> list[str]:
    """The first-pass sentences that extend one query.

    Parameters
    ----------
    scores : sequence of PassageScores
        First-pass scores of the query's passages, shape ``(n_passages_total,)``.
    n_passages, n_sentences : int
        See :class:`SecondPassConfig`.
    always_select_title : bool
        Skip each passage's first sentence (its title).

    Returns
    -------
    list of str
        At most ``n_passages * n_sentences`` sentences, in passage order, then sentence order.
        Passages rank by passage score (higher first; ties: earlier passage), sentences by mean
        token keep-probability (higher first; ties: earlier sentence).
    """
    first = 1 if always_select_title else 0
    eligible = [p for p, s in enumerate(scores) if len(s.sentences) > first]
    top = sorted(eligible, key=lambda p: (-scores[p].passage_score, p))[:n_passages]
    picked: list[tuple[int, int]] = []
    for p in top:
        ss = scores[p].sentence_scores[first:]
        order = sorted(range(len(ss)), key=lambda j: (-float(ss[j]), j))[:n_sentences]
        picked += [(p, j + first) for j in order]
    return [scores[p].sentences[j].text for p, j in sorted(picked)]


def _n_tokens(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def extend_query(
    query: str, sentences: Sequence[str], tokenizer: Any, max_query_tokens: int
) -> str:
    """``query + " " + " ".join(sentences)``, cut at a word boundary to fit ``max_query_tokens``.

    The window encoder keeps only the first ``max_query_tokens`` tokens of a query; cutting here
    keeps whole words and avoids its warning. When the query alone already reaches the limit,
    the query is returned unchanged (nothing can be added).
    """
    words = " ".join(sentences).split()
    if not words:
        return query
    full = f"{query} {' '.join(words)}"
    if _n_tokens(tokenizer, full) <= max_query_tokens:
        return full
    lo, hi = 0, len(words)  # the largest k with query + k words within the limit: lo
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _n_tokens(tokenizer, f"{query} {' '.join(words[:mid])}") <= max_query_tokens:
            lo = mid
        else:
            hi = mid - 1
    return f"{query} {' '.join(words[:lo])}" if lo else query


def combine_token_probs(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Combine one sentence's token keep-probabilities from the two passes.

    Parameters
    ----------
    first, second : numpy.ndarray
        Shapes ``(n_tokens_first,)`` and ``(n_tokens_second,)`` (higher = keep).

    Returns
    -------
    numpy.ndarray
        Shape ``(n_tokens_first,)``, float32: the elementwise maximum when the shapes agree;
        otherwise the larger of the two sentence means, repeated over ``first``'s tokens.
    """
    a = np.asarray(first, dtype=np.float32)
    b = np.asarray(second, dtype=np.float32)
    if a.shape == b.shape:
        return np.maximum(a, b)
    means = [float(x.mean()) for x in (a, b) if x.size]
    if not a.size or not means:
        return a.copy()
    return np.full(a.shape, max(means), dtype=np.float32)


def combine_scores(first: PassageScores, second: PassageScores) -> PassageScores:
    """Per-sentence :func:`combine_token_probs` and the larger passage score of two passes.

    Sentences, token counts, windows and truncation come from ``first``.
    """
    if len(first.token_probs) != len(second.token_probs):
        raise ValueError(
            f"the two passes split the passage differently ({len(first.token_probs)} vs "
            f"{len(second.token_probs)} sentences)"
        )
    probs = [combine_token_probs(a, b) for a, b in zip(first.token_probs, second.token_probs)]
    logit = max(first.passage_logit, second.passage_logit)
    return replace(
        first,
        token_probs=probs,
        passage_score=max(first.passage_score, second.passage_score),
        passage_logit=logit,
    )


def second_pass_scores(
    pruner: ContextPruner,
    queries: Sequence[str],
    passages: Sequence[Sequence[str]],
    first: Sequence[Sequence[PassageScores]],
    config: SecondPassConfig,
    *,
    always_select_title: bool = False,
    show_progress_bar: bool | None = None,
) -> tuple[list[list[PassageScores]], list[str]]:
    """Run the second pass for all queries (one batched :meth:`ContextPruner.score` call).

    Parameters
    ----------
    pruner : ContextPruner
    queries : sequence of str
        Shape ``(n_queries,)``.
    passages : sequence of sequence of str
        ``passages[i]`` are the passages of ``queries[i]``.
    first : sequence of sequence of PassageScores
        First-pass scores, same nesting as ``passages``.
    config : SecondPassConfig
    always_select_title : bool
        Passages' first sentences are titles and do not extend the query.

    Returns
    -------
    scores : list of list of PassageScores
        Combined scores, same nesting as ``passages``.
    extended_queries : list of str
        Shape ``(n_queries,)``; equal to the query when nothing could be added (no passage
        with an eligible sentence, or the query already fills ``max_query_tokens``), and then
        that query is not re-scored.
    """
    extended = [
        extend_query(
            q,
            evidence_sentences(
                sc,
                n_passages=config.passages,
                n_sentences=config.sentences,
                always_select_title=always_select_title,
            ),
            pruner.tokenizer,
            pruner.max_query_tokens,
        )
        for q, sc in zip(queries, first)
    ]
    redo = [i for i, (q, e) in enumerate(zip(queries, extended)) if e != q and passages[i]]
    out = [list(sc) for sc in first]
    if redo:
        again = pruner.score(
            [extended[i] for i in redo],
            [passages[i] for i in redo],
            show_progress_bar=show_progress_bar,
        )
        for i, sc in zip(redo, again):
            out[i] = [combine_scores(a, b) for a, b in zip(first[i], sc)]
    logger.debug("second pass re-scored %d of %d queries", len(redo), len(queries))
    return out, extended
