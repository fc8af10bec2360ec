"""The fused (torch.compile) statistics kernel added to lm_scoring for large static runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dataprune.lm_scoring import _stats_fused, logit_statistics, score_sft

from tiny_models import tiny_causal_lm


def test_fused_formula_matches_eager_without_compiling():
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(37, 101, generator=g) * 4).bfloat16()
    targets = torch.randint(0, 101, (37,), generator=g)
    ref = logit_statistics(logits, targets)
    nll, ent, p_true, sum_p2 = _stats_fused(logits, targets)
    torch.testing.assert_close(nll, ref["nll"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ent, ref["entropy"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(p_true, ref["p_true"], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(sum_p2, ref["sum_p2"], rtol=1e-5, atol=1e-7)
    masked = logits.float()
    masked[:, :10] = float("-inf")  # masked vocabulary entries have p = 0 and contribute 0
    _, ent_m, _, _ = _stats_fused(masked, torch.full((37,), 50))
    assert torch.isfinite(ent_m).all()


@pytest.mark.slow
def test_compiled_scoring_matches_eager():
    model, tok = tiny_causal_lm(chat_template=True)
    prompts = ["what is two plus two", "hello world", "the cat sat"]
    responses = ["two plus two is four", "how are you", "on the mat the cat sat"]
    a = score_sft(model, tok, prompts, responses, chunk_size=4)
    b = score_sft(model, tok, prompts, responses, chunk_size=4, compile_stats=True)
    for k in ("nll", "entropy", "p_true", "sum_p2"):
        for x, y in zip(getattr(a, k), getattr(b, k)):
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
