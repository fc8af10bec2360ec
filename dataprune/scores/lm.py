"""EL2N and last-layer GraNd for unlabelled SFT data, per response token of a causal LM.

The model's next-token distribution is the classifier and the response token is the label:
``EL2N_t = sqrt(1 - 2 p[y_t] + sum_v p_v^2)`` (from :func:`dataprune.lm_scoring.score_sft`, no
vocabulary-sized one-hot), and the last-layer gradient norm is ``EL2N_t * ||h_{t-1}||`` for an LM
head without bias (``h`` = the final hidden state that predicts ``y_t``). A record's score is the
mean over its response tokens. A pretrained LM needs no proxy training, so there is one run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dataprune.progress import progress
from dataprune.scores.el2n import _compute_token_el2n

logger = logging.getLogger(__name__)

__all__ = ["LMScores", "lm_el2n_scores", "lm_scores"]


@dataclass
class LMScores:
    """Per-record LM scores of SFT responses.

    Attributes
    ----------
    el2n : ndarray of shape (n_samples,)
        Mean response-token EL2N; higher = harder.
    nll : ndarray of shape (n_samples,)
        Mean response-token negative log-likelihood (log perplexity).
    n_tokens : ndarray of shape (n_samples,), int64
        Response tokens scored (after truncation to ``max_length``).
    token_el2n : list of ndarray
        Per-token EL2N of every record.
    grand : ndarray of shape (n_samples,) or None
        Mean response-token last-layer GraNd (when requested).
    model_id : str
    """

    el2n: np.ndarray
    nll: np.ndarray
    n_tokens: np.ndarray
    token_el2n: list[np.ndarray]
    grand: np.ndarray | None = None
    model_id: str = ""
    n_truncated: int = 0


def lm_scores(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    grand: bool = False,
    batch_size: int = 8,
    max_length: int = 1024,
    use_chat_template: bool | None = None,
    show_progress_bar: bool | None = None,
) -> LMScores:
    """Score SFT records by the per-token EL2N (and optionally GraNd) of their responses.

    Parameters
    ----------
    model, tokenizer
        A causal LM and its tokenizer (:func:`dataprune.models.load_causal_lm`).
    prompts, responses : sequence of str, length n_samples
        Non-empty responses (the response tokens carry the score).
    grand : bool, default=False
        Also compute last-layer GraNd (one more forward pass for the hidden states).
    batch_size, max_length, use_chat_template
        Passed to :func:`dataprune.lm_scoring.score_sft`.

    Returns
    -------
    LMScores
    """
    from dataprune.lm_scoring import score_sft

    ts = score_sft(
        model,
        tokenizer,
        prompts,
        responses,
        batch_size=batch_size,
        max_length=max_length,
        use_chat_template=use_chat_template,
        show_progress_bar=show_progress_bar,
    )
    token_el2n = [
        _compute_token_el2n(p.astype(np.float64), s.astype(np.float64))
        for p, s in zip(ts.p_true, ts.sum_p2)
    ]
    el2n = np.array([float(t.mean()) for t in token_el2n])
    nll = np.array([float(np.mean(x)) for x in ts.nll])
    n_tokens = np.array([len(t) for t in token_el2n], dtype=np.int64)
    g = None
    if grand:
        norms = _response_hidden_norms(
            model, ts.encodings, batch_size=batch_size, show_progress_bar=show_progress_bar
        )
        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        has_bias = getattr(head, "bias", None) is not None
        g = np.array(
            [
                float(np.mean(e * np.sqrt(h.astype(np.float64) ** 2 + (1.0 if has_bias else 0.0))))
                for e, h in zip(token_el2n, norms)
            ]
        )
    return LMScores(
        el2n=el2n,
        nll=nll,
        n_tokens=n_tokens,
        token_el2n=token_el2n,
        grand=g,
        model_id=ts.model_id,
        n_truncated=int(ts.meta.get("n_truncated", 0)),
    )


def lm_el2n_scores(
    model: Any, tokenizer: Any, prompts: Sequence[str], responses: Sequence[str], **kwargs: Any
) -> np.ndarray:
    """Mean response-token EL2N per record, shape (n_samples,); higher = harder.

    Keyword arguments go to :func:`lm_scores`.
    """
    return lm_scores(model, tokenizer, prompts, responses, **kwargs).el2n


def _last_hidden(model: Any, ids: Any, att: Any) -> Any:
    get_dec = getattr(model, "get_decoder", None)
    dec = None
    if get_dec is not None:
        try:
            dec = get_dec()
        except Exception:
            dec = None
    if dec is not None and dec is not model:
        return dec(input_ids=ids, attention_mask=att).last_hidden_state
    out = model(input_ids=ids, attention_mask=att, output_hidden_states=True)
    return out.hidden_states[-1]


def _response_hidden_norms(
    model: Any, encodings: list, *, batch_size: int, show_progress_bar: bool | None
) -> list[np.ndarray]:
    """``||h_{t-1}||`` for every response token ``t`` of every encoding (float32 arrays)."""
    import torch

    n = len(encodings)
    out: list[np.ndarray | None] = [None] * n
    order = np.argsort([len(e.input_ids) for e in encodings], kind="stable")
    device = next(model.parameters()).device
    bar = progress(total=n, show_progress_bar=show_progress_bar, desc="Hidden norms", unit="sample")
    try:
        with torch.inference_mode():
            for lo in range(0, n, batch_size):
                idx = order[lo : lo + batch_size].tolist()
                T = max(len(encodings[i].input_ids) for i in idx)
                ids = torch.zeros((len(idx), T), dtype=torch.long)
                att = torch.zeros((len(idx), T), dtype=torch.long)
                for b, i in enumerate(idx):
                    L = len(encodings[i].input_ids)
                    ids[b, :L] = torch.from_numpy(encodings[i].input_ids)
                    att[b, :L] = 1
                hidden = _last_hidden(model, ids.to(device), att.to(device))
                norms = hidden.float().norm(dim=-1).cpu().numpy()
                for b, i in enumerate(idx):
                    enc = encodings[i]
                    L = len(enc.input_ids)
                    # position t-1 predicts token t; keep the predictions of response tokens
                    out[i] = norms[b, : L - 1][enc.response_mask[1:L]].astype(np.float32)
                bar.update(len(idx))
    finally:
        bar.close()
    return out  # type: ignore[return-value]
