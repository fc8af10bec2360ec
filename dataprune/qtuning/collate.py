"""SFT features (token ids + labels with -100 on the prompt) and a padding collator for training.

Both the static triage output (``input_ids`` / ``labels`` per kept sample) and freshly tokenised
prompt/response pairs go through :class:`SFTCollator`, so the same batches feed a plain
``transformers.Trainer`` and :class:`~dataprune.qtuning.QTuningTrainer`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dataprune.errors import DataValidationError
from dataprune.sft_encoding import encode_sft

__all__ = ["IGNORE_INDEX", "SFTCollator", "sft_features"]

IGNORE_INDEX = -100


def sft_features(
    tokenizer: Any,
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    max_length: int = 1024,
    use_chat_template: bool | None = None,
) -> list[dict[str, list[int]]]:
    """Tokenise SFT pairs into ``{"input_ids", "labels"}`` dicts (labels -100 on the prompt).

    Tokenisation is :func:`dataprune.sft_encoding.encode_sft` (chat template when the tokenizer has
    one), so positions match the static scorer exactly.

    Returns
    -------
    list of dict
        ``input_ids`` and ``labels``, lists of int of equal length.
    """
    if len(prompts) != len(responses):
        raise DataValidationError(
            f"got {len(prompts)} prompts but {len(responses)} responses; expected equal lengths"
        )
    out = []
    for i, (p, r) in enumerate(zip(prompts, responses)):
        try:
            enc = encode_sft(
                tokenizer, p, r, max_length=max_length, use_chat_template=use_chat_template
            )
        except DataValidationError as exc:
            raise DataValidationError(exc.reason, record=i, field="response") from None
        ids = enc.input_ids.tolist()
        labels = [t if m else IGNORE_INDEX for t, m in zip(ids, enc.response_mask.tolist())]
        out.append({"input_ids": ids, "labels": labels})
    return out


class SFTCollator:
    """Right-pad ``input_ids`` / ``labels`` features into tensors with an attention mask.

    Parameters
    ----------
    pad_token_id : int
        Id written at padded ``input_ids`` positions (masked out by ``attention_mask``).
    max_length : int, optional
        Truncate longer features from the right.

    Returns (when called)
    ---------------------
    dict of torch.Tensor of shape (batch, seq_len)
        ``input_ids`` (int64), ``attention_mask`` (int64), ``labels`` (int64, -100 on padding).
    """

    def __init__(self, pad_token_id: int, *, max_length: int | None = None) -> None:
        self.pad_token_id = int(pad_token_id)
        self.max_length = max_length

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        import torch

        if not features:
            raise DataValidationError("cannot collate an empty batch")
        rows = []
        for i, f in enumerate(features):
            if "input_ids" not in f or "labels" not in f:
                raise DataValidationError(
                    "expected 'input_ids' and 'labels' in every feature", record=i
                )
            ids, labels = list(f["input_ids"]), list(f["labels"])
            if len(ids) != len(labels):
                raise DataValidationError(
                    f"input_ids has {len(ids)} tokens but labels has {len(labels)}; expected equal",
                    record=i,
                )
            if self.max_length is not None:
                ids, labels = ids[: self.max_length], labels[: self.max_length]
            rows.append((ids, labels))
        T = max(len(ids) for ids, _ in rows)
        input_ids = torch.full((len(rows), T), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(rows), T), dtype=torch.long)
        lab = torch.full((len(rows), T), IGNORE_INDEX, dtype=torch.long)
        for b, (ids, labels) in enumerate(rows):
            L = len(ids)
            input_ids[b, :L] = torch.tensor(ids, dtype=torch.long)
            attention[b, :L] = 1
            lab[b, :L] = torch.tensor(labels, dtype=torch.long)
        return {"input_ids": input_ids, "attention_mask": attention, "labels": lab}
