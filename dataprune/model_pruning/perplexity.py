"""Perplexity of a causal LM on held-out text (non-overlapping windows, the WikiText protocol)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from dataprune.errors import DataValidationError
from dataprune.progress import progress

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["PerplexityResult", "perplexity", "perplexity_of_ids", "tokenize_eval_texts"]


@dataclass
class PerplexityResult:
    """Perplexity over a token stream.

    Attributes
    ----------
    perplexity : float
        ``exp(mean_nll)``; lower is better.
    mean_nll : float
        Mean negative log-likelihood (nats) per predicted token.
    n_tokens : int
        Predicted tokens (each window's first token has no prediction).
    n_windows : int
        Windows of ``seq_len`` tokens evaluated.
    """

    perplexity: float
    mean_nll: float
    n_tokens: int
    n_windows: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tokenize_eval_texts(
    tokenizer: Any,
    texts: Sequence[str],
    *,
    max_tokens: int | None = None,
    separator: str = "\n\n",
) -> np.ndarray:
    """Join ``texts`` with ``separator`` and tokenise (no special tokens); cut at ``max_tokens``.

    Returns
    -------
    ndarray of shape (n_tokens,), int64
    """
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        raise DataValidationError("no evaluation texts given")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise DataValidationError(
                f"expected a string, got {type(t).__name__}", record=i, source="evaluation texts"
            )
    ids: list[int] = []
    for t in texts:  # tokenise per text so huge strings are never built; stop early at the cap
        if ids:
            ids.extend(tokenizer(separator, add_special_tokens=False)["input_ids"])
        ids.extend(tokenizer(t, add_special_tokens=False)["input_ids"])
        if max_tokens is not None and len(ids) >= max_tokens:
            break
    import numpy as np

    arr = np.asarray(ids if max_tokens is None else ids[:max_tokens], dtype=np.int64)
    if len(arr) < 2:
        raise DataValidationError("the evaluation texts hold fewer than 2 tokens")
    return arr


def perplexity_of_ids(
    model: Any,
    ids: np.ndarray,
    *,
    seq_len: int = 512,
    batch_size: int = 4,
    show_progress_bar: bool | None = None,
) -> PerplexityResult:
    """Perplexity of ``model`` on a token stream cut into non-overlapping ``seq_len`` windows.

    A final window shorter than ``seq_len`` is evaluated too (when it has >= 2 tokens). Log-softmax
    runs in float32 on chunks of positions, so the full vocabulary logits of a batch are never
    upcast at once.
    """
    import torch

    if seq_len < 2:
        raise DataValidationError(f"seq_len must be >= 2, got {seq_len}")
    import numpy as np

    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    windows = [ids[i : i + seq_len] for i in range(0, len(ids), seq_len)]
    windows = [w for w in windows if len(w) >= 2]
    if not windows:
        raise DataValidationError("need at least 2 tokens to measure perplexity")
    device = next(model.parameters()).device
    total_nll = 0.0
    n_tok = 0
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            groups = [windows[i : i + batch_size] for i in range(0, len(windows), batch_size)]
            for group in progress(groups, show_progress_bar=show_progress_bar, desc="perplexity"):
                width = max(len(w) for w in group)
                x = torch.zeros((len(group), width), dtype=torch.long)
                mask = torch.zeros((len(group), width), dtype=torch.long)
                for r, w in enumerate(group):
                    x[r, : len(w)] = torch.from_numpy(w)
                    mask[r, : len(w)] = 1
                logits = model(
                    input_ids=x.to(device), attention_mask=mask.to(device), use_cache=False
                ).logits
                for r, w in enumerate(group):
                    lg = logits[r, : len(w) - 1]
                    tgt = x[r, 1 : len(w)].to(lg.device)
                    for lo in range(0, lg.shape[0], 256):
                        chunk = lg[lo : lo + 256].float()
                        total_nll += float(
                            torch.nn.functional.cross_entropy(
                                chunk, tgt[lo : lo + 256], reduction="sum"
                            )
                        )
                    n_tok += len(w) - 1
    finally:
        model.train(was_training)
    mean = total_nll / n_tok
    return PerplexityResult(
        float(math.exp(mean)) if mean < 700 else float("inf"), mean, n_tok, len(windows)
    )


def perplexity(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    seq_len: int = 512,
    max_tokens: int | None = None,
    batch_size: int = 4,
    show_progress_bar: bool | None = None,
) -> PerplexityResult:
    """Perplexity of a causal LM on held-out texts (lower is better).

    Parameters
    ----------
    model : transformers.PreTrainedModel
    tokenizer : tokenizer
    texts : sequence of str
        Joined with blank lines and cut into non-overlapping windows of ``seq_len`` tokens.
    seq_len : int, default=512
    max_tokens : int, optional
        Evaluate only the first ``max_tokens`` tokens (a fixed slice for quick comparisons).
    batch_size : int, default=4

    Returns
    -------
    PerplexityResult
    """
    ids = tokenize_eval_texts(tokenizer, texts, max_tokens=max_tokens)
    return perplexity_of_ids(
        model, ids, seq_len=seq_len, batch_size=batch_size, show_progress_bar=show_progress_bar
    )
