"""IFD, the instruction-following difficulty of SFT pairs (Cherry LLM, Li et al. 2024; Superfiltering).

``IFD = PPL(response | prompt) / PPL(response)``: the perplexity of the response tokens with the
prompt as context, divided by their perplexity with no prompt. Both come from
:func:`dataprune.lm_scoring.score_sft`, run once with the real prompts and once with empty prompts
(with a chat template: an empty user turn), so the same response tokens are scored in both passes;
``IFD = exp(mean NLL conditioned - mean NLL unconditioned)``.

Aligning the two passes: with a chat template the response tokens are the same in both encodings.
Without one, an empty prompt has no tokens (unless the tokenizer adds a BOS token), and
:func:`~dataprune.sft_encoding.encode_sft` then uses the first response token as the context, so it is
not scored without the prompt; truncation to ``max_length`` can also cut more response tokens when
the prompt is present. Each record's mean NLLs are therefore taken over the response tokens scored
in *both* passes (``n_tokens``), so the ratio always compares the same tokens.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError

logger = logging.getLogger(__name__)

__all__ = ["IFDScores", "ifd_from_token_scores", "ifd_ratio", "ifd_scores"]


@dataclass
class IFDScores:
    """Per-record instruction-following difficulty of SFT pairs.

    Attributes
    ----------
    ifd : ndarray of shape (n_samples,), float64
        ``PPL(response | prompt) / PPL(response)`` over the same response tokens, ``> 0``. Lower =
        the prompt explains the response. Near or above 1 = the prompt does not help predict the
        response: Superfiltering drops pairs with ``ifd >= 1`` as misaligned, and Cherry LLM /
        Superfiltering then keep the *highest* IFD below 1 (the prompt helps, yet the response is
        still hard to produce from it).
    nll_conditioned : ndarray of shape (n_samples,), float64
        Mean response-token negative log-likelihood given the prompt (log perplexity).
    nll_unconditioned : ndarray of shape (n_samples,), float64
        Mean negative log-likelihood of the same response tokens with an empty prompt.
    n_tokens : ndarray of shape (n_samples,), int64
        Response tokens compared (scored in both passes, after truncation to ``max_length``).
    model_id : str
        The scoring model.
    n_truncated : int
        Records cut to ``max_length`` in either pass.
    """

    ifd: np.ndarray
    nll_conditioned: np.ndarray
    nll_unconditioned: np.ndarray
    n_tokens: np.ndarray
    model_id: str = ""
    n_truncated: int = 0


def ifd_scores(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    batch_size: int = 8,
    max_length: int = 1024,
    use_chat_template: bool | None = None,
    show_progress_bar: bool | None = None,
) -> IFDScores:
    """Score SFT records by IFD, ``PPL(response | prompt) / PPL(response)``.

    Two scoring passes over the data (with the prompts, and with empty prompts), each as
    expensive as :func:`dataprune.scores.lm_scores`.

    Parameters
    ----------
    model, tokenizer
        A causal LM and its tokenizer (:func:`dataprune.models.load_causal_lm`; the papers use a
        small model, e.g. the default SmolLM2-135M-Instruct or GPT-2).
    prompts, responses : sequence of str, length n_samples
        The SFT pairs; responses must be non-empty (their tokens carry the score). A prompt may be
        empty (its IFD is then 1).
    batch_size, max_length, use_chat_template, show_progress_bar
        Passed to :func:`dataprune.lm_scoring.score_sft`.

    Returns
    -------
    IFDScores

    Raises
    ------
    DataValidationError
        Unequal lengths, no records, a non-string prompt or response, or an empty response (the
        error names the record).
    """
    if len(prompts) != len(responses):
        raise DataValidationError(
            f"got {len(prompts)} prompts but {len(responses)} responses; expected equal lengths"
        )
    if len(prompts) == 0:
        raise DataValidationError("no samples to score; expected at least one")
    for i, (p, r) in enumerate(zip(prompts, responses)):
        if not isinstance(p, str):
            raise DataValidationError(
                f"expected a string prompt, got {type(p).__name__}", record=i, field="prompt"
            )
        if not isinstance(r, str):
            raise DataValidationError(
                f"expected a string response, got {type(r).__name__}", record=i, field="response"
            )
        if not r.strip():
            raise DataValidationError(
                "the response is empty; IFD needs response tokens", record=i, field="response"
            )
    return _compute_ifd(
        model,
        tokenizer,
        list(prompts),
        list(responses),
        batch_size=batch_size,
        max_length=max_length,
        use_chat_template=use_chat_template,
        show_progress_bar=show_progress_bar,
    )


def _compute_ifd(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    responses: list[str],
    *,
    batch_size: int,
    max_length: int,
    use_chat_template: bool | None,
    show_progress_bar: bool | None,
) -> IFDScores:
    from dataprune.lm_scoring import score_sft

    common = {
        "batch_size": batch_size,
        "max_length": max_length,
        "use_chat_template": use_chat_template,
        "show_progress_bar": show_progress_bar,
    }
    cond = score_sft(model, tokenizer, prompts, responses, **common)
    uncond = score_sft(model, tokenizer, [""] * len(responses), responses, **common)
    return ifd_from_token_scores(cond, uncond)


def ifd_from_token_scores(conditioned: Any, unconditioned: Any) -> IFDScores:
    """IFD from the two scoring passes of the same responses.

    Parameters
    ----------
    conditioned, unconditioned : dataprune.lm_scoring.TokenScores
        :func:`~dataprune.lm_scoring.score_sft` of the same responses (same order and settings),
        with their prompts and with empty prompts. Reuse a conditioned pass already computed (for
        example by Q-Tuning's triage) to pay only for the unconditioned one.

    Returns
    -------
    IFDScores
        Means over the response tokens scored in both passes (see the module docstring).
    """
    cond, uncond = conditioned, unconditioned
    if len(cond.encodings) != len(uncond.encodings):
        raise DataValidationError(
            f"the passes scored {len(cond.encodings)} and {len(uncond.encodings)} responses; "
            "expected the same responses in both"
        )
    n = len(cond.encodings)
    nll_c = np.empty(n, dtype=np.float64)
    nll_u = np.empty(n, dtype=np.float64)
    n_tokens = np.empty(n, dtype=np.int64)
    n_truncated = 0
    pairs = list(zip(cond.encodings, uncond.encodings))
    # The shift between the two spans is a property of the tokenizer and template; learn it from
    # the untruncated records (where the span lengths fix it) to align the truncated ones.
    shifts = [
        len(eu.input_ids[eu.response_mask]) - len(ec.input_ids[ec.response_mask])
        for ec, eu in pairs
        if not (ec.truncated or eu.truncated)
    ]
    counts = np.bincount([d + 1 for d in shifts if abs(d) <= 1], minlength=3)
    usual = int(counts.argmax()) - 1 if counts.any() else 0
    for i, (ec, eu) in enumerate(pairs):
        sc, su = _common_response_tokens(ec, eu, record=i, usual_shift=usual)
        nll_c[i] = float(np.mean(cond.nll[i][sc], dtype=np.float64))
        nll_u[i] = float(np.mean(uncond.nll[i][su], dtype=np.float64))
        n_tokens[i] = sc.stop - sc.start
        n_truncated += bool(ec.truncated or eu.truncated)
    return IFDScores(
        ifd=np.exp(nll_c - nll_u),
        nll_conditioned=nll_c,
        nll_unconditioned=nll_u,
        n_tokens=n_tokens,
        model_id=cond.model_id,
        n_truncated=n_truncated,
    )


def _common_response_tokens(
    enc_c: Any, enc_u: Any, *, record: int, usual_shift: int = 0
) -> tuple[slice, slice]:
    """Slices of the two encodings' response tokens that are the same tokens of the response.

    Both response spans are slices ``r[s:e]`` of the response's token ids ``r``, where ``s`` is 1
    when the encoding had no prompt token (the first response token became the context) and ``e``
    is shortened by truncation. So response token ``i`` of ``enc_c`` is token ``i + d`` of
    ``enc_u`` with ``d = s_c - s_u`` in {-1, 0, 1}. Without truncation ``e`` is the full length in
    both, which fixes ``d`` from the span lengths; otherwise the first ``d`` (``usual_shift``, then
    the others) whose overlap has identical ids is used.
    """
    a = enc_c.input_ids[enc_c.response_mask]
    b = enc_u.input_ids[enc_u.response_mask]
    if enc_c.truncated or enc_u.truncated:
        candidates = [usual_shift, *(d for d in (0, -1, 1) if d != usual_shift)]
    else:
        candidates = [len(b) - len(a)] if abs(len(b) - len(a)) <= 1 else []
    for d in candidates:
        lo, hi = max(0, -d), min(len(a), len(b) - d)
        if hi > lo and np.array_equal(a[lo:hi], b[lo + d : hi + d]):
            return slice(lo, hi), slice(lo + d, hi + d)
    raise DataValidationError(
        "the response tokenises differently with and without the prompt (does the chat "
        "template change the assistant turn depending on the user turn?); try "
        "use_chat_template=False",
        record=record,
        field="response",
    )


def ifd_ratio(
    model: Any, tokenizer: Any, prompts: Sequence[str], responses: Sequence[str], **kwargs: Any
) -> np.ndarray:
    """IFD per record, shape (n_samples,); lower = the prompt explains the response.

    Near or above 1 = the prompt does not help (Superfiltering drops ``>= 1``). Keyword arguments
    go to :func:`ifd_scores`.
    """
    return ifd_scores(model, tokenizer, prompts, responses, **kwargs).ifd
