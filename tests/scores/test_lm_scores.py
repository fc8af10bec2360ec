from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dataprune.scores import lm_el2n_scores, lm_scores

from tiny_models import tiny_causal_lm

PROMPTS = ["what is two plus two", "hello world", "please write a short poem about the sea"]
RESPONSES = ["two plus two is four", "how are you", "the sea is blue and wide"]


def _reference(model, enc):
    """Per response token: EL2N and the norm of d loss_t / d lm_head.weight, by autograd."""
    ids = torch.from_numpy(enc.input_ids)[None]
    positions = np.flatnonzero(enc.response_mask[1:])  # position t-1 predicts token t
    el2n, grads = [], []
    for pos in positions.tolist():
        model.zero_grad()
        logits = model(input_ids=ids).logits[0, pos].float()
        target = ids[0, pos + 1]
        p = torch.softmax(logits, -1)
        onehot = torch.nn.functional.one_hot(target, p.shape[-1]).float()
        el2n.append(float((p - onehot).norm().detach()))
        torch.nn.functional.cross_entropy(logits[None], target[None]).backward()
        grads.append(float(model.get_output_embeddings().weight.grad.norm()))
    return np.array(el2n), np.array(grads)


def test_el2n_and_grand_match_autograd():
    model, tok = tiny_causal_lm()
    model.float()
    res = lm_scores(model, tok, PROMPTS, RESPONSES, grand=True, batch_size=2)
    model.zero_grad()
    from dataprune.sft_encoding import encode_sft

    for i, (p, r) in enumerate(zip(PROMPTS, RESPONSES)):
        enc = encode_sft(tok, p, r)
        el2n, grads = _reference(model, enc)
        np.testing.assert_allclose(res.token_el2n[i], el2n, rtol=1e-4, atol=1e-5)
        assert res.el2n[i] == pytest.approx(el2n.mean(), rel=1e-4)
        assert res.grand[i] == pytest.approx(grads.mean(), rel=1e-3)
        assert res.n_tokens[i] == len(el2n)
    assert np.all(res.nll > 0)
    np.testing.assert_allclose(lm_el2n_scores(model, tok, PROMPTS, RESPONSES), res.el2n)


def test_batching_does_not_change_scores():
    model, tok = tiny_causal_lm(chat_template=True)
    a = lm_scores(model, tok, PROMPTS, RESPONSES, grand=True, batch_size=1)
    b = lm_scores(model, tok, PROMPTS, RESPONSES, grand=True, batch_size=3)
    np.testing.assert_allclose(a.el2n, b.el2n, rtol=1e-4)
    np.testing.assert_allclose(a.grand, b.grand, rtol=1e-3)


@pytest.mark.offline_models
@pytest.mark.shared_data
def test_real_lm_scores_corrupted_answers_higher(shared_data):
    """SmolLM2: a GSM8K solution paired with another question's problem is harder to predict."""
    from dataprune.models import load_causal_lm

    rows = [
        json.loads(line)
        for line in (shared_data / "gsm8k" / "train.jsonl").read_text().splitlines()[:6]
    ]
    prompts = [r["question"] for r in rows]
    answers = [r["answer"] for r in rows]
    shuffled = answers[1:] + answers[:1]
    model, tok = load_causal_lm(dtype="float32")  # faster than bf16 on most CPUs
    good = lm_scores(model, tok, prompts, answers, batch_size=6)
    bad = lm_scores(model, tok, prompts, shuffled, batch_size=6)
    # the same answer text scores worse under the wrong question (paired by answer)
    worse = bad.el2n > np.roll(good.el2n, -1)
    assert worse.mean() >= 5 / 6, (good.el2n, bad.el2n)
