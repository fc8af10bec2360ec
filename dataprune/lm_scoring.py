"""Per-token statistics of SFT responses under a causal LM (shared by EL2N-LM and Q-Tuning).

For every response token ``y_t`` of a (prompt, response) pair the model's predictive distribution
``p = softmax(logits_{t-1})`` gives:

* ``nll``     = -log p[y_t]                      (error; PPL = exp(mean nll))
* ``entropy`` = -sum_v p_v log p_v               (uncertainty)
* ``p_true``  = p[y_t]
* ``sum_p2``  = sum_v p_v^2                      (so EL2N = sqrt(1 - 2 p_true + sum_p2), no one-hot)

Prompt tokens are masked (tokenisation: :mod:`dataprune.sft_encoding`, the chat template when the
tokenizer has one). Logits are
never materialised for a whole batch: the decoder's last hidden states are projected through the
LM head a chunk of positions at a time, with one ``log_softmax`` per chunk in float32.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.progress import progress
from dataprune.sft_encoding import SFTEncoding, encode_sft_pairs

logger = logging.getLogger(__name__)

__all__ = [
    "TokenScores",
    "end_token_nll",
    "logit_statistics",
    "score_sft",
]

# Models whose logits are not a plain linear projection of the last hidden state.
_NON_LINEAR_HEAD_ATTRS = ("final_logit_softcapping", "logit_scale", "output_multiplier_scale")


def logit_statistics(
    logits: Any, targets: Any, *, chunk_size: int = 512, compile_stats: bool = False
) -> dict[str, Any]:
    """Per-row NLL, entropy, target probability and sum of squared probabilities.

    Parameters
    ----------
    logits : torch.Tensor of shape (n_rows, vocab)
        Any float dtype; processed in float32 ``chunk_size`` rows at a time.
    targets : torch.Tensor of shape (n_rows,), int64
        Target token per row.
    compile_stats : bool, default=False
        Compute the statistics with one fused ``torch.compile`` kernel (see :func:`score_sft`).

    Returns
    -------
    dict of torch.Tensor, each of shape (n_rows,), float32
        ``nll``, ``entropy``, ``p_true``, ``sum_p2``.
    """
    import torch

    n = logits.shape[0]
    out = {
        k: torch.empty(n, dtype=torch.float32, device=logits.device)
        for k in ("nll", "entropy", "p_true", "sum_p2")
    }
    for lo in range(0, n, chunk_size):
        hi = min(n, lo + chunk_size)
        _fill_stats(logits[lo:hi], targets[lo:hi], out, lo, hi, compile_stats=compile_stats)
    return out


def _stats_fused(logits: Any, targets: Any) -> tuple[Any, Any, Any, Any]:
    """The four statistics from one max-shifted exponential (written for torch.compile fusion)."""
    import torch

    z = logits.float()
    zc = z - z.amax(dim=-1, keepdim=True)
    e = zc.exp()
    s = e.sum(dim=-1)
    log_s = s.log()
    nll = log_s - zc.gather(1, targets[:, None].long()).squeeze(1)
    ez = torch.where(e > 0, e * zc, torch.zeros_like(zc)).sum(dim=-1)
    entropy = log_s - ez / s
    sum_p2 = (e * e).sum(dim=-1) / (s * s)
    return nll, entropy, torch.exp(-nll), sum_p2


_COMPILED: dict[str, Any] = {}


def _compiled_stats() -> Any:
    """``torch.compile``'d :func:`_stats_fused` (built once per process), or None if unavailable."""
    if "fn" not in _COMPILED:
        try:
            import torch

            _COMPILED["fn"] = torch.compile(_stats_fused, dynamic=True)
        except Exception as exc:  # no compiler / unsupported platform
            logger.warning("torch.compile unavailable (%s); using eager statistics", exc)
            _COMPILED["fn"] = None
    return _COMPILED["fn"]


def _fill_stats(
    logits: Any,
    targets: Any,
    out: dict[str, Any],
    lo: int,
    hi: int,
    *,
    compile_stats: bool = False,
) -> None:
    import torch

    fn = _compiled_stats() if compile_stats else None
    if fn is not None:
        try:
            nll, ent, p_true, sum_p2 = fn(logits, targets)
        except Exception as exc:  # compilation failed at first call: fall back for good
            logger.warning("compiled statistics failed (%s); using eager statistics", exc)
            _COMPILED["fn"] = None
        else:
            out["nll"][lo:hi] = nll
            out["entropy"][lo:hi] = ent
            out["p_true"][lo:hi] = p_true
            out["sum_p2"][lo:hi] = sum_p2
            return
    logp = torch.log_softmax(logits.float(), dim=-1)
    p = logp.exp()
    nll = -logp.gather(1, targets[:, None].long()).squeeze(1)
    out["nll"][lo:hi] = nll
    out["entropy"][lo:hi] = -(p * logp).sum(-1)
    out["p_true"][lo:hi] = torch.exp(-nll)
    out["sum_p2"][lo:hi] = (p * p).sum(-1)


@dataclass
class TokenScores:
    """Per-token statistics of SFT responses, one array per sample (ragged).

    Attributes
    ----------
    nll, entropy, p_true, sum_p2 : list of ndarray, each of shape (n_response_tokens_i,)
        See the module docstring. Lower ``nll`` = the model already predicts the token.
    encodings : list of SFTEncoding
        Token ids and response masks.
    entropy_all : ndarray of shape (n_samples,)
        Mean entropy over every predicted position (prompt and response), for
        ``entropy_span="all"``.
    """

    nll: list[np.ndarray]
    entropy: list[np.ndarray]
    p_true: list[np.ndarray]
    sum_p2: list[np.ndarray]
    encodings: list[SFTEncoding]
    entropy_all: np.ndarray
    model_id: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.nll)

    def perplexity(self) -> np.ndarray:
        """Per-sample PPL = exp(mean response-token NLL), shape (n_samples,). Higher = harder."""
        return np.array([math.exp(float(np.mean(x))) for x in self.nll])

    def mean_entropy(self, span: str = "response") -> np.ndarray:
        """Per-sample mean predictive entropy over ``"response"`` or ``"all"`` positions."""
        if span == "response":
            return np.array([float(np.mean(x)) for x in self.entropy])
        if span == "all":
            return self.entropy_all.copy()
        raise DataValidationError(f"span must be 'response' or 'all', got {span!r}")

    def end_nll(self, end_token_id: int | Sequence[int]) -> np.ndarray:
        """NLL of each response's end-of-turn token, shape (n_samples,); NaN where it is absent.

        See :func:`end_token_nll`. Higher = the model did not expect the response to end there
        (an abrupt end, e.g. a truncated response).
        """
        responses = [enc.input_ids[enc.response_mask] for enc in self.encodings]
        return end_token_nll(self.nll, responses, end_token_id)

    def token_el2n(self) -> list[np.ndarray]:
        """EL2N per response token, ``sqrt(1 - 2 p_true + sum_p2)``; higher = harder."""
        return [
            np.sqrt(np.clip(1.0 - 2.0 * p + s, 0.0, None)) for p, s in zip(self.p_true, self.sum_p2)
        ]


def end_token_nll(
    nll: Sequence[np.ndarray],
    response_ids: Sequence[np.ndarray],
    end_token_id: int | Sequence[int],
) -> np.ndarray:
    """NLL of the last end-of-turn token in every response.

    Parameters
    ----------
    nll : sequence of ndarray, each of shape (n_response_tokens_i,)
        Per-token NLL of the response tokens (as in :class:`TokenScores`).
    response_ids : sequence of ndarray, each of shape (n_response_tokens_i,)
        The response token ids the NLLs belong to (with a chat template: the response, the
        end-of-turn token and whatever the template adds after it).
    end_token_id : int or sequence of int
        The end-of-turn / EOS token id(s), e.g. ``tokenizer.eos_token_id``.

    Returns
    -------
    ndarray of shape (n_samples,)
        ``-log p(end token)`` at its last occurrence in each response, in nats (higher = the model
        did not expect the response to end there); NaN when the response holds no end token
        (the token window cut it off, or the template ends turns with another token).
    """
    ends = np.atleast_1d(np.asarray(end_token_id, dtype=np.int64))
    if len(nll) != len(response_ids):
        raise DataValidationError(
            f"got {len(nll)} NLL rows but {len(response_ids)} id rows; expected equal lengths"
        )
    out = np.full(len(nll), np.nan)
    for i, (x, ids) in enumerate(zip(nll, response_ids)):
        ids = np.asarray(ids)
        if len(ids) != len(x):
            raise DataValidationError(
                f"response {i} has {len(ids)} token ids but {len(x)} NLLs; expected one per token"
            )
        where = np.flatnonzero(np.isin(ids, ends))
        if len(where):
            out[i] = float(x[where[-1]])
    return out


def _hidden_path_ok(model: Any) -> bool:
    cfg = getattr(model, "config", None)
    if any(getattr(cfg, a, None) for a in _NON_LINEAR_HEAD_ATTRS):
        return False
    get_dec = getattr(model, "get_decoder", None)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    try:
        dec = get_dec() if get_dec is not None else None
    except Exception:
        dec = None
    return dec is not None and head is not None and dec is not model


def score_sft(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    batch_size: int = 8,
    max_length: int = 1024,
    chunk_size: int = 512,
    use_chat_template: bool | None = None,
    show_progress_bar: bool | None = None,
    compile_stats: bool = False,
) -> TokenScores:
    """Score every response token of SFT samples with a causal LM.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A causal LM (e.g. from :func:`dataprune.models.load_causal_lm`).
    tokenizer : transformers.PreTrainedTokenizerBase
        Its tokenizer.
    prompts, responses : sequence of str, length n_samples
        The SFT pairs.
    batch_size : int, default=8
        Samples per forward pass; batches are formed from length-sorted samples.
    max_length : int, default=1024
        Token window per sample (see :func:`encode_sft` for truncation).
    chunk_size : int, default=512
        Positions projected to the vocabulary at once (memory: chunk_size x vocab floats).
    use_chat_template : bool, optional
        Default: use it when the tokenizer has one.
    show_progress_bar : bool, optional
        ``None`` follows the log level.
    compile_stats : bool, default=False
        Compute the per-position statistics with one fused ``torch.compile`` kernel instead of
        several vocabulary-wide eager passes (about 10x less time for that part on CPU; the first
        call compiles, which takes seconds to minutes and is cached on disk by torch). Worth it
        for large datasets; falls back to eager with a warning where compilation fails.

    Returns
    -------
    TokenScores
    """
    import torch

    if batch_size < 1 or chunk_size < 1 or max_length < 2:
        raise DataValidationError("batch_size and chunk_size must be >= 1 and max_length >= 2")
    encodings = encode_sft_pairs(
        tokenizer, prompts, responses, max_length=max_length, use_chat_template=use_chat_template
    )
    n_trunc = sum(e.truncated for e in encodings)
    if n_trunc:
        logger.warning(
            "%d of %d samples were truncated to max_length=%d tokens",
            n_trunc,
            len(encodings),
            max_length,
        )

    n = len(encodings)
    results: list[dict[str, np.ndarray] | None] = [None] * n
    entropy_all = np.zeros(n, dtype=np.float64)
    order = np.argsort([len(e.input_ids) for e in encodings], kind="stable")
    use_hidden = _hidden_path_ok(model)
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    was_training = model.training
    model.eval()
    bar = progress(total=n, show_progress_bar=show_progress_bar, desc="Scoring", unit="sample")
    try:
        with torch.inference_mode():
            for lo in range(0, n, batch_size):
                idx = order[lo : lo + batch_size].tolist()
                T = max(len(encodings[i].input_ids) for i in idx)
                ids = torch.full((len(idx), T), pad_id, dtype=torch.long)
                att = torch.zeros((len(idx), T), dtype=torch.long)
                for b, i in enumerate(idx):
                    L = len(encodings[i].input_ids)
                    ids[b, :L] = torch.from_numpy(encodings[i].input_ids)
                    att[b, :L] = 1
                ids, att = ids.to(device), att.to(device)
                if use_hidden:
                    hidden = model.get_decoder()(
                        input_ids=ids, attention_mask=att
                    ).last_hidden_state
                    head = model.get_output_embeddings()
                else:
                    hidden = model(input_ids=ids, attention_mask=att).logits
                    head = None
                # predicted positions: t-1 predicts t, for t in 1..L-1 (every non-pad position)
                rows_b, rows_t = torch.nonzero(att[:, 1:], as_tuple=True)
                targets = ids[rows_b, rows_t + 1]
                stats = {
                    k: torch.empty(len(rows_b), dtype=torch.float32)
                    for k in ("nll", "entropy", "p_true", "sum_p2")
                }
                for c in range(0, len(rows_b), chunk_size):
                    sl = slice(c, c + chunk_size)
                    h = hidden[rows_b[sl], rows_t[sl]]
                    logits = head(h) if head is not None else h
                    _fill_stats(
                        logits,
                        targets[sl],
                        stats,
                        c,
                        min(c + chunk_size, len(rows_b)),
                        compile_stats=compile_stats,
                    )
                stats = {k: v.cpu().numpy() for k, v in stats.items()}
                rows_b_np = rows_b.cpu().numpy()
                for b, i in enumerate(idx):
                    sel = rows_b_np == b
                    # position t+1 is the predicted token; keep those that are response tokens
                    resp = encodings[i].response_mask[1:]
                    per = {k: v[sel] for k, v in stats.items()}
                    entropy_all[i] = float(per["entropy"].mean())
                    results[i] = {k: v[resp].astype(np.float32) for k, v in per.items()}
                bar.update(len(idx))
    finally:
        bar.close()
        if was_training:
            model.train()
    src = getattr(model, "dataprune_source", None)
    return TokenScores(
        nll=[r["nll"] for r in results],  # type: ignore[index]
        entropy=[r["entropy"] for r in results],  # type: ignore[index]
        p_true=[r["p_true"] for r in results],  # type: ignore[index]
        sum_p2=[r["sum_p2"] for r in results],  # type: ignore[index]
        encodings=encodings,
        entropy_all=entropy_all,
        model_id=f"{src.name}@{src.version or src.source}"
        if src is not None
        else type(model).__name__,
        meta={
            "max_length": max_length,
            "n_truncated": n_trunc,
            "hidden_path": use_hidden,
            "eos_token_id": getattr(tokenizer, "eos_token_id", None),
        },
    )
