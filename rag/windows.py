"""Encode (query, passage) pairs into model windows with an exact token -> sentence map.

A window is ``[CLS] query [SEP] sentences... [SEP]`` (or the tokenizer's own pair template).
Sentences are tokenised one by one, so every passage token belongs to exactly one sentence.
Passages that do not fit one window are split at sentence boundaries into several windows, each
repeating the query; a single sentence longer than a window is split into consecutive pieces.
Nothing is ever truncated silently (only an over-long query is cut, with a warning).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from dataprune.rag.lexical import STOPWORDS
from dataprune.rag.sentences import Sentence, split_sentences

logger = logging.getLogger(__name__)

__all__ = ["QUERY_SEGMENT", "EncodedPair", "PairTemplate", "Window", "encode_pairs"]

#: Segment id of query tokens in :meth:`Window.segment_ids` (sentences are ``>= 0``, the rest -1).
QUERY_SEGMENT = -2


@dataclass(frozen=True)
class PairTemplate:
    """Special tokens around a (query, passage) pair, derived from the tokenizer itself."""

    prefix: tuple[int, ...]
    prefix_types: tuple[int, ...]
    middle: tuple[int, ...]
    middle_types: tuple[int, ...]
    suffix: tuple[int, ...]
    suffix_types: tuple[int, ...]
    query_type: int
    passage_type: int

    @property
    def n_special(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> PairTemplate:
        """Read the pair template by encoding a probe pair ``("a", "b")``."""
        enc = tokenizer("a", "b", return_token_type_ids=True, add_special_tokens=True)
        ids = list(enc["input_ids"])
        types = list(enc.get("token_type_ids") or [0] * len(ids))
        seq = enc.sequence_ids() if hasattr(enc, "sequence_ids") else None
        if seq is None:  # slow tokenizer: locate the two probe tokens
            a = tokenizer("a", add_special_tokens=False)["input_ids"]
            b = tokenizer("b", add_special_tokens=False)["input_ids"]
            ia = _find(ids, a, 0)
            ib = _find(ids, b, ia + len(a))
            seq = [None] * len(ids)
            for k in range(ia, ia + len(a)):
                seq[k] = 0
            for k in range(ib, ib + len(b)):
                seq[k] = 1
        a_pos = [k for k, s in enumerate(seq) if s == 0]
        b_pos = [k for k, s in enumerate(seq) if s == 1]
        if not a_pos or not b_pos:
            raise ValueError("could not derive the pair template of this tokenizer")
        a0, a1, b0, b1 = a_pos[0], a_pos[-1] + 1, b_pos[0], b_pos[-1] + 1
        return cls(
            prefix=tuple(ids[:a0]),
            prefix_types=tuple(types[:a0]),
            middle=tuple(ids[a1:b0]),
            middle_types=tuple(types[a1:b0]),
            suffix=tuple(ids[b1:]),
            suffix_types=tuple(types[b1:]),
            query_type=types[a0],
            passage_type=types[b0],
        )


def _find(seq: list[int], sub: list[int], start: int) -> int:
    for k in range(start, len(seq) - len(sub) + 1):
        if seq[k : k + len(sub)] == sub:
            return k
    raise ValueError("probe token not found in the encoded pair")


@dataclass
class Window:
    """One model input.

    Attributes
    ----------
    pair : int
        Index of the (query, passage) pair it belongs to.
    input_ids, token_type_ids : list of int
        Shape ``(seq_len,)``.
    sentence_of_token : list of int
        Shape ``(seq_len,)``: sentence index of each passage token, ``-1`` for query and special
        tokens.
    query_span : tuple of int
        ``(start, stop)`` positions of the query tokens.
    exact_match : list of int
        Shape ``(seq_len,)``: 1 for a passage token whose id is a content token of the query
        (not a stop word, punctuation or a one-letter piece), else 0 (DrQA-style exact match).
    """

    pair: int
    input_ids: list[int]
    token_type_ids: list[int]
    sentence_of_token: list[int]
    query_span: tuple[int, int] = (0, 0)
    exact_match: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.input_ids)

    def segment_ids(self) -> list[int]:
        """Shape ``(seq_len,)``: sentence index per passage token, ``-2`` query, ``-1`` other."""
        seg = list(self.sentence_of_token)
        a, b = self.query_span
        seg[a:b] = [QUERY_SEGMENT] * (b - a)
        return seg


@dataclass
class EncodedPair:
    """A (query, passage) pair split into sentences and windows.

    Attributes
    ----------
    sentences : list of Sentence
    sentence_n_tokens : list of int
        Tokens per sentence (passage tokenizer), used for token-level compression.
    windows : list of int
        Indices into the flat window list returned by :func:`encode_pairs`.
    query_truncated : bool
    """

    sentences: list[Sentence]
    sentence_n_tokens: list[int]
    windows: list[int] = field(default_factory=list)
    query_truncated: bool = False

    @property
    def n_tokens(self) -> int:
        return sum(self.sentence_n_tokens)


def encode_pairs(
    tokenizer: Any,
    queries: list[str],
    passages: list[str],
    *,
    max_length: int = 512,
    max_query_tokens: int = 128,
    sentences: list[list[Sentence]] | None = None,
    template: PairTemplate | None = None,
) -> tuple[list[EncodedPair], list[Window]]:
    """Split passages into sentences and pack them into windows.

    Parameters
    ----------
    tokenizer : transformers tokenizer
    queries, passages : list of str
        Same length ``n_pairs``; ``queries[i]`` goes with ``passages[i]``.
    max_length : int
        Tokens per window including the query and special tokens.
    max_query_tokens : int
        Longer queries are cut to this many tokens (a warning is logged).
    sentences : list of list of Sentence, optional
        Pre-split sentences (the splitter is used otherwise).
    template : PairTemplate, optional
        Cached pair template of ``tokenizer``.

    Returns
    -------
    pairs : list of EncodedPair
        Shape ``(n_pairs,)``.
    windows : list of Window
        All windows, in pair order.
    """
    if len(queries) != len(passages):
        raise ValueError(f"{len(queries)} queries for {len(passages)} passages")
    template = template or PairTemplate.from_tokenizer(tokenizer)
    uniq_q = list(dict.fromkeys(queries))
    q_ids = dict(zip(uniq_q, _tokenize(tokenizer, uniq_q)))
    sents = sentences if sentences is not None else [split_sentences(p) for p in passages]
    flat = [s.text for ss in sents for s in ss]
    flat_ids = _tokenize(tokenizer, flat)
    pairs: list[EncodedPair] = []
    windows: list[Window] = []
    pos = 0
    warned = False
    content_cache: dict[int, bool] = {}
    for i, (q, ss) in enumerate(zip(queries, sents)):
        s_ids = flat_ids[pos : pos + len(ss)]
        pos += len(ss)
        qi = q_ids[q]
        truncated = len(qi) > max_query_tokens
        if truncated:
            if not warned:
                logger.warning(
                    "query of %d tokens cut to max_query_tokens=%d", len(qi), max_query_tokens
                )
                warned = True
            qi = qi[:max_query_tokens]
        terms = frozenset(t for t in qi if _is_content(tokenizer, t, content_cache))
        pair = EncodedPair(ss, [len(x) for x in s_ids], query_truncated=truncated)
        capacity = max_length - len(qi) - template.n_special
        for chunk in _pack(s_ids, capacity):
            pair.windows.append(len(windows))
            windows.append(_window(i, qi, chunk, template, terms))
        pairs.append(pair)
    return pairs, windows


def _tokenize(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    if not texts:
        return []
    return [list(x) for x in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def _pack(s_ids: list[list[int]], capacity: int) -> list[list[tuple[int, list[int]]]]:
    """Greedy packing of sentences into windows of at most ``capacity`` passage tokens."""
    out: list[list[tuple[int, list[int]]]] = []
    cur: list[tuple[int, list[int]]] = []
    used = 0
    for j, ids in enumerate(s_ids):
        if len(ids) > capacity:
            if cur:
                out.append(cur)
                cur, used = [], 0
            for k in range(0, len(ids), capacity):
                out.append([(j, ids[k : k + capacity])])
            continue
        if used + len(ids) > capacity and cur:
            out.append(cur)
            cur, used = [], 0
        cur.append((j, ids))
        used += len(ids)
    if cur or not out:
        out.append(cur)
    return out


def _is_content(tokenizer: Any, token_id: int, cache: dict[int, bool]) -> bool:
    """Whether a query token counts for exact match: a word piece of >= 3 letters or a number."""
    hit = cache.get(token_id)
    if hit is None:
        piece = str(tokenizer.convert_ids_to_tokens(int(token_id)) or "")
        word = piece.lstrip("#").lstrip("\u2581\u0120").lower()
        hit = (word.isalnum() and len(word) >= 3 and word not in STOPWORDS) or word.isdigit()
        cache[token_id] = hit
    return hit


def _window(
    pair: int,
    q: list[int],
    chunk: list[tuple[int, list[int]]],
    t: PairTemplate,
    terms: frozenset[int] = frozenset(),
) -> Window:
    ids = [*t.prefix, *q, *t.middle]
    types = [*t.prefix_types, *([t.query_type] * len(q)), *t.middle_types]
    sent = [-1] * len(ids)
    for j, piece in chunk:
        ids.extend(piece)
        types.extend([t.passage_type] * len(piece))
        sent.extend([j] * len(piece))
    ids.extend(t.suffix)
    types.extend(t.suffix_types)
    sent.extend([-1] * len(t.suffix))
    em = [int(sent[k] >= 0 and ids[k] in terms) for k in range(len(ids))]
    return Window(pair, ids, types, sent, (len(t.prefix), len(t.prefix) + len(q)), em)
