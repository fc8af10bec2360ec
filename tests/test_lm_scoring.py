from __future__ import annotations

import numpy as np
import pytest
import torch

from dataprune.errors import DataValidationError
from dataprune.lm_scoring import end_token_nll, logit_statistics, score_sft

from tiny_models import tiny_causal_lm

PROMPTS = ["what is two plus two", "hello world", "please write a short poem about the sea"]
RESPONSES = ["two plus two is four", "how are you", "the sea is blue and wide the sea is blue"]


def _reference(model, enc):
    """Plain full-logits computation for one sample."""
    ids = torch.from_numpy(enc.input_ids)[None]
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1].float()
    targets = ids[0, 1:]
    logp = torch.log_softmax(logits, -1)
    nll = -logp.gather(1, targets[:, None]).squeeze(1)
    p = logp.exp()
    ent = -(p * logp).sum(-1)
    m = torch.from_numpy(enc.response_mask[1:])
    return nll[m].numpy(), ent[m].numpy(), (p * p).sum(-1)[m].numpy(), ent.mean().item()


@pytest.mark.parametrize("chat", [False, True])
def test_scores_match_full_forward(chat):
    model, tok = tiny_causal_lm(chat_template=chat)
    scores = score_sft(model, tok, PROMPTS, RESPONSES, batch_size=2, chunk_size=3)
    assert len(scores) == 3
    for i, enc in enumerate(scores.encodings):
        nll, ent, sp2, ent_all = _reference(model, enc)
        assert len(scores.nll[i]) == enc.n_response_tokens == len(nll)
        np.testing.assert_allclose(scores.nll[i], nll, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(scores.entropy[i], ent, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(scores.sum_p2[i], sp2, rtol=1e-4, atol=1e-6)
        assert scores.entropy_all[i] == pytest.approx(ent_all, rel=1e-4)
    ppl = scores.perplexity()
    assert ppl.shape == (3,) and np.all(ppl > 1)
    el2n = scores.token_el2n()
    p = scores.p_true[0]
    np.testing.assert_allclose(el2n[0], np.sqrt(np.clip(1 - 2 * p + scores.sum_p2[0], 0, None)))


def test_batch_composition_does_not_change_scores():
    model, tok = tiny_causal_lm()
    a = score_sft(model, tok, PROMPTS, RESPONSES, batch_size=1)
    b = score_sft(model, tok, PROMPTS, RESPONSES, batch_size=3)
    for x, y in zip(a.nll, b.nll):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)


def test_logit_statistics_chunks_agree():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(37, 11, generator=g)
    targets = torch.randint(0, 11, (37,), generator=g)
    a = logit_statistics(logits, targets, chunk_size=5)
    b = logit_statistics(logits, targets, chunk_size=100)
    for k in a:
        torch.testing.assert_close(a[k], b[k])
    p = torch.softmax(logits, -1)
    torch.testing.assert_close(a["p_true"], p[torch.arange(37), targets])


def test_bad_inputs():
    model, tok = tiny_causal_lm()
    with pytest.raises(DataValidationError, match="equal lengths"):
        score_sft(model, tok, ["a"], ["b", "c"])
    with pytest.raises(DataValidationError, match="record 1"):
        score_sft(model, tok, ["a", "b"], ["the cat", ""], batch_size=1)


@pytest.mark.offline_models
def test_smollm2_fluent_vs_salad():
    from dataprune.models import load_causal_lm

    model, tok = load_causal_lm()
    fluent = "The capital of France is Paris. It is known for the Eiffel Tower."
    salad = "Tower Eiffel the France known of is Paris capital for It. the is"
    s = score_sft(model, tok, ["Tell me about Paris."] * 2, [fluent, salad])
    ppl = s.perplexity()
    assert ppl[0] * 10 < ppl[1]


def test_end_token_nll_reads_the_last_end_token():
    nll = [np.array([0.1, 0.2, 3.0, 0.4]), np.array([0.5, 0.6]), np.array([1.0, 2.0])]
    ids = [np.array([5, 9, 2, 7]), np.array([5, 6]), np.array([2, 2])]
    out = end_token_nll(nll, ids, 2)
    assert out[0] == 3.0 and np.isnan(out[1]) and out[2] == 2.0
    assert end_token_nll(nll, ids, [6, 7])[:2].tolist() == [0.4, 0.6]
    with pytest.raises(DataValidationError, match="one per token"):
        end_token_nll([np.zeros(3)], [np.zeros(2, dtype=int)], 2)


def test_token_scores_end_nll_is_the_end_of_turn_position():
    model, tok = tiny_causal_lm(chat_template=True)
    s = score_sft(model, tok, PROMPTS, RESPONSES)
    end = s.end_nll(tok.eos_token_id)
    for i, enc in enumerate(s.encodings):
        resp = enc.input_ids[enc.response_mask]
        j = np.flatnonzero(resp == tok.eos_token_id)[-1]
        assert end[i] == pytest.approx(float(s.nll[i][j]))


@pytest.mark.offline_models
def test_smollm2_truncated_response_has_a_surprising_end():
    from dataprune.models import load_causal_lm

    model, tok = load_causal_lm()
    full = [
        "The capital of France is Paris. It is known for the Eiffel Tower.",
        "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    ]
    cut = [
        "The capital of France is Paris. It is known for the",
        "Photosynthesis turns light, water and",
    ]
    prompts = ["Tell me about Paris.", "What is photosynthesis?"]
    end = score_sft(model, tok, prompts * 2, full + cut).end_nll(tok.eos_token_id)
    assert np.all(end[2:] > end[:2] + 2.0)  # p(end) at least e^2 times smaller after a cut
