from __future__ import annotations

import pytest

from dataprune.errors import DataValidationError
from dataprune.sft_encoding import empty_prompt_ids, encode_sft, encode_sft_pairs

from tiny_models import tiny_causal_lm


def test_chat_template_masks_prompt():
    _, tok = tiny_causal_lm(chat_template=True)
    enc = encode_sft(tok, "hello world", "how are you")
    resp_tokens = tok.convert_ids_to_tokens(enc.input_ids[enc.response_mask].tolist())
    assert resp_tokens[:3] == ["how", "are", "you"]
    prompt_tokens = tok.convert_ids_to_tokens(enc.input_ids[~enc.response_mask].tolist())
    assert "hello" in prompt_tokens and "how" not in prompt_tokens


def test_truncation_keeps_response():
    _, tok = tiny_causal_lm()
    enc = encode_sft(tok, " ".join(["the cat sat"] * 20), "the answer is 42", max_length=16)
    assert len(enc.input_ids) == 16 and enc.truncated
    assert enc.n_response_tokens == 5  # 4 words + eos


def test_pair_errors_name_the_record_and_an_empty_prompt_keeps_one_context_token():
    _, tok = tiny_causal_lm()
    with pytest.raises(DataValidationError, match=r"record 1.*response.*empty"):
        encode_sft_pairs(tok, ["a", "b"], ["the cat", "  "])
    with pytest.raises(DataValidationError, match="equal lengths"):
        encode_sft_pairs(tok, ["a"], ["b", "c"])
    enc = encode_sft(tok, "", "the cat sat")
    assert empty_prompt_ids(tok, use_chat_template=False) == list(
        tok("", add_special_tokens=True)["input_ids"]
    )
    assert not enc.response_mask[0] and enc.response_mask[1:].all()
