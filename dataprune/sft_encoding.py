"""Tokenisation of SFT (prompt, response) pairs with the response positions marked: the one
encoding the LM scores (:mod:`dataprune.lm_scoring`), IFD, Q-Tuning and the SFT benchmarks share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError

__all__ = ["SFTEncoding", "empty_prompt_ids", "encode_sft", "encode_sft_pairs"]


@dataclass
class SFTEncoding:
    """A tokenised SFT sample.

    Attributes
    ----------
    input_ids : ndarray of shape (seq_len,), int64
        Prompt then response tokens.
    response_mask : ndarray of shape (seq_len,), bool
        True at response positions (the tokens that carry loss).
    truncated : bool
        Whether the sample was cut to ``max_length``.
    """

    input_ids: np.ndarray
    response_mask: np.ndarray
    truncated: bool = False

    @property
    def n_response_tokens(self) -> int:
        return int(self.response_mask.sum())


def _has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def _chat_prefix(tokenizer: Any, prompt: str) -> str:
    """The chat template's rendering of a user turn and the generation prompt."""
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )


def _plain_prompt_ids(tokenizer: Any, prompt: str) -> list[int]:
    return list(tokenizer(prompt, add_special_tokens=True)["input_ids"])


def empty_prompt_ids(tokenizer: Any, *, use_chat_template: bool | None = None) -> list[int]:
    """Token ids :func:`encode_sft` puts before a response when the prompt is empty.

    With a chat template: an empty user turn and the generation prompt; without one: the
    tokenizer's special tokens for empty text (a BOS token, or nothing). This is the context of
    the unconditioned pass of IFD (:func:`dataprune.scores.ifd_scores`); the Q-Tuning trainer
    prepends it to each response to score it without its prompt.

    Returns
    -------
    list of int
        Possibly empty (then :func:`encode_sft` uses the first response token as context).
    """
    if use_chat_template is None:
        use_chat_template = _has_chat_template(tokenizer)
    if use_chat_template:
        return list(tokenizer(_chat_prefix(tokenizer, ""), add_special_tokens=False)["input_ids"])
    return _plain_prompt_ids(tokenizer, "")


def encode_sft(
    tokenizer: Any,
    prompt: str,
    response: str,
    *,
    max_length: int = 1024,
    use_chat_template: bool | None = None,
) -> SFTEncoding:
    """Tokenise one prompt/response pair with the response positions marked.

    With a chat template the pair becomes a user turn and an assistant turn; the response span is
    everything after the generation prompt (including the end-of-turn token). Without one, the
    response is followed by the EOS token. Over-long samples lose prompt tokens from the left
    first (keeping at least half the window for the response), then response tokens from the right.

    Raises
    ------
    DataValidationError
        When the response is empty or has no tokens.
    """
    if not isinstance(prompt, str) or not isinstance(response, str):
        raise DataValidationError("prompt and response must be strings")
    if not response.strip():
        raise DataValidationError("the response is empty; expected non-empty text")
    if use_chat_template is None:
        use_chat_template = _has_chat_template(tokenizer)
    if use_chat_template:
        prefix = _chat_prefix(tokenizer, prompt)
        full = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}],
            tokenize=False,
        )
        if not full.startswith(prefix):
            raise DataValidationError(
                "the chat template renders the assistant turn in a way that does not extend the "
                "generation prompt; pass use_chat_template=False"
            )
        p_ids = tokenizer(prefix, add_special_tokens=False)["input_ids"]
        r_ids = tokenizer(full[len(prefix) :], add_special_tokens=False)["input_ids"]
    else:
        p_ids = _plain_prompt_ids(tokenizer, prompt)
        r_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
        if tokenizer.eos_token_id is not None:
            r_ids = [*r_ids, tokenizer.eos_token_id]
    if not r_ids:
        raise DataValidationError("the response has no tokens; expected a non-empty response")
    truncated = False
    if len(p_ids) + len(r_ids) > max_length:
        truncated = True
        keep_r = min(len(r_ids), max(max_length - len(p_ids), max_length // 2))
        keep_p = max_length - keep_r
        p_ids = p_ids[len(p_ids) - keep_p :] if keep_p > 0 else []
        r_ids = r_ids[:keep_r]
    if not p_ids:
        # Position 0 has no prediction; keep at least one context token.
        p_ids, r_ids = r_ids[:1], r_ids[1:]
        if not r_ids:
            raise DataValidationError("max_length leaves no response token to score")
    ids = np.asarray([*p_ids, *r_ids], dtype=np.int64)
    mask = np.zeros(len(ids), dtype=bool)
    mask[len(p_ids) :] = True
    return SFTEncoding(ids, mask, truncated)


def encode_sft_pairs(
    tokenizer: Any,
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    max_length: int = 1024,
    use_chat_template: bool | None = None,
) -> list[SFTEncoding]:
    """:func:`encode_sft` for every pair; errors name the record.

    Raises
    ------
    DataValidationError
        Unequal lengths, no pairs, or a pair :func:`encode_sft` rejects (with its record index).
    """
    if len(prompts) != len(responses):
        raise DataValidationError(
            f"got {len(prompts)} prompts but {len(responses)} responses; expected equal lengths"
        )
    if not prompts:
        raise DataValidationError("no samples to score; expected at least one")
    encodings = []
    for i, (p, r) in enumerate(zip(prompts, responses)):
        try:
            encodings.append(
                encode_sft(
                    tokenizer, p, r, max_length=max_length, use_chat_template=use_chat_template
                )
            )
        except DataValidationError as exc:
            raise DataValidationError(exc.reason, record=i, field="response") from None
    return encodings
