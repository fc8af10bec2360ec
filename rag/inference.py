"""Batched, length-sorted scoring of (query, passage) pairs with a pruner model.

This is the threshold-free part of pruning: it returns, per pair, every sentence's token
keep-probabilities and the passage relevance; :mod:`dataprune.rag.selection` turns those into
kept sentences for any threshold, so a threshold sweep costs one forward pass.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from dataprune.precision import resolve_dtype
from dataprune.rag.sentences import Sentence
from dataprune.rag.windows import EncodedPair, PairTemplate, encode_pairs

logger = logging.getLogger(__name__)

__all__ = [
    "PassageScores",
    "forward_windows",
    "resolve_precision",
    "score_pairs",
]


@dataclass
class PassageScores:
    """Threshold-free scores of one passage for one query.

    Attributes
    ----------
    sentences : list of Sentence
    token_probs : list of numpy.ndarray
        One float32 array per sentence: keep-probability of each of its tokens (higher = keep).
    sentence_n_tokens : numpy.ndarray
        Shape ``(n_sentences,)``.
    passage_score : float
        Relevance of the passage in [0, 1] (sigmoid of the ranking head; max over windows).
    passage_logit : float
        The raw ranking logit behind ``passage_score``.
    n_windows : int
    query_truncated : bool
    """

    sentences: list[Sentence]
    token_probs: list[np.ndarray]
    sentence_n_tokens: np.ndarray
    passage_score: float
    passage_logit: float
    n_windows: int
    query_truncated: bool = False

    @property
    def sentence_scores(self) -> np.ndarray:
        """Mean token keep-probability per sentence, shape ``(n_sentences,)``."""
        return np.array(
            [float(p.mean()) if p.size else 0.0 for p in self.token_probs], dtype=np.float32
        )


def resolve_precision(precision: str, device: Any) -> str:
    """Resolve ``precision`` for ``device``; ``"float32"`` and ``"bfloat16"`` pass through.

    ``"auto"`` -> :func:`dataprune.precision.resolve_dtype`'s choice: ``"bfloat16"`` (autocast)
    where bf16 matrix products are fast (CUDA GPUs with native bf16, CPUs with ``amx_bf16`` or
    ``avx512_bf16``), ``"float32"`` elsewhere.
    """
    if precision not in ("auto", "float32", "bfloat16"):
        from dataprune.errors import UnknownOptionError

        raise UnknownOptionError(f"unknown precision {precision!r}; valid: auto, bfloat16, float32")
    return resolve_dtype(precision, device)


def _autocast(device: Any, precision: str) -> Any:
    import torch

    if precision != "bfloat16":
        return contextlib.nullcontext()
    dev_type = "cuda" if str(device).startswith("cuda") else "cpu"
    return torch.autocast(dev_type, dtype=torch.bfloat16)


def forward_windows(
    model: Any,
    windows: list[Any],
    *,
    batch_size: int = 32,
    device: Any = "cpu",
    precision: str = "float32",
    pad_id: int = 0,
    show_progress_bar: bool | None = False,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Run ``model`` over windows in length-sorted batches.

    Returns
    -------
    token_probs : list of numpy.ndarray
        Keep-probability of every token of each window (input order).
    rank_logits : numpy.ndarray
        Shape ``(n_windows,)``.
    """
    import torch

    from dataprune.progress import progress

    order = sorted(range(len(windows)), key=lambda i: len(windows[i]), reverse=True)
    probs: list[np.ndarray | None] = [None] * len(windows)
    ranks = np.zeros(len(windows), dtype=np.float32)
    batches = [order[k : k + batch_size] for k in range(0, len(order), batch_size)]
    with torch.inference_mode(), _autocast(device, precision):
        for idx in progress(
            batches, show_progress_bar=show_progress_bar, desc="pruning", unit="batch"
        ):
            width = max(len(windows[i]) for i in idx)
            ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
            types = torch.zeros((len(idx), width), dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            segs = torch.full((len(idx), width), -1, dtype=torch.long)
            em = torch.zeros((len(idx), width), dtype=torch.float32)
            for r, i in enumerate(idx):
                w = windows[i]
                n = len(w)
                ids[r, :n] = torch.tensor(w.input_ids)
                types[r, :n] = torch.tensor(w.token_type_ids)
                segs[r, :n] = torch.tensor(w.segment_ids())
                if w.exact_match:
                    em[r, :n] = torch.tensor(w.exact_match, dtype=torch.float32)
                mask[r, :n] = 1
            out = model(
                ids.to(device), mask.to(device), types.to(device), segs.to(device), em.to(device)
            )
            p = torch.sigmoid(out.token_logits.float()).cpu().numpy()
            rk = out.rank_logits.float().cpu().numpy()
            for r, i in enumerate(idx):
                probs[i] = p[r, : len(windows[i])]
                ranks[i] = rk[r]
    return probs, ranks  # type: ignore[return-value]


def score_pairs(
    model: Any,
    tokenizer: Any,
    queries: list[str],
    passages: list[str],
    *,
    max_length: int = 512,
    max_query_tokens: int = 128,
    batch_size: int = 32,
    device: Any = "cpu",
    precision: str = "float32",
    sentences: list[list[Sentence]] | None = None,
    template: PairTemplate | None = None,
    show_progress_bar: bool | None = False,
) -> list[PassageScores]:
    """Score ``n_pairs`` (query, passage) pairs; see :class:`PassageScores`.

    Parameters
    ----------
    model : PrunerModel
        Any module returning ``token_logits`` ``(batch, seq_len)`` and ``rank_logits``
        ``(batch,)``.
    tokenizer : transformers tokenizer
    queries, passages : list of str
        Same length.
    """
    pairs, windows = encode_pairs(
        tokenizer,
        queries,
        passages,
        max_length=max_length,
        max_query_tokens=max_query_tokens,
        sentences=sentences,
        template=template,
    )
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    probs, ranks = forward_windows(
        model,
        windows,
        batch_size=batch_size,
        device=device,
        precision=precision,
        pad_id=pad,
        show_progress_bar=show_progress_bar,
    )
    return [_collect(pair, windows, probs, ranks) for pair in pairs]


def _collect(
    pair: EncodedPair, windows: list[Any], probs: list[np.ndarray], ranks: np.ndarray
) -> PassageScores:
    n = len(pair.sentences)
    parts: list[list[np.ndarray]] = [[] for _ in range(n)]
    for w_i in pair.windows:
        sent = np.asarray(windows[w_i].sentence_of_token)
        p = probs[w_i]
        if not n:
            continue
        valid = sent >= 0
        s_valid, p_valid = sent[valid], p[valid]
        # Consecutive runs of one sentence id (pieces of a long sentence span windows).
        if s_valid.size:
            cuts = np.flatnonzero(np.diff(s_valid)) + 1
            for seg_s, seg_p in zip(np.split(s_valid, cuts), np.split(p_valid, cuts)):
                parts[int(seg_s[0])].append(seg_p.astype(np.float32))
    token_probs = [np.concatenate(ps) if ps else np.zeros(0, dtype=np.float32) for ps in parts]
    logit = float(max(ranks[w] for w in pair.windows)) if pair.windows else float("-inf")
    return PassageScores(
        sentences=pair.sentences,
        token_probs=token_probs,
        sentence_n_tokens=np.asarray(pair.sentence_n_tokens, dtype=np.int64),
        passage_score=float(1.0 / (1.0 + np.exp(-logit))),
        passage_logit=logit,
        n_windows=len(pair.windows),
        query_truncated=pair.query_truncated,
    )
