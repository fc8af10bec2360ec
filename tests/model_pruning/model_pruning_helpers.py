"""Helpers shared by the model-pruning tests."""

from __future__ import annotations


def tiny_gpt2(vocab_size: int, seed: int = 0):
    """A random 2-block GPT-2 (Conv1D layers, blocks at ``transformer.h``)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=vocab_size, n_embd=32, n_layer=2, n_head=4, n_positions=64)
    return GPT2LMHeadModel(cfg).eval()


def zero_masks(model) -> dict:
    return {k: (v == 0) for k, v in model.state_dict().items() if v.ndim == 2}


def random_layer(
    seed: int, *, out: int = 48, inp: int = 96, tokens: int = 384, mean_scale: float = 1.0
):
    """A random weight and correlated calibration inputs with non-zero feature means (as in
    LLMs, where DSnoT's expected-error criterion has something to correct)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(inp, inp, generator=g) / inp**0.5
    x = torch.randn(tokens, inp, generator=g) @ mix + mean_scale * torch.randn(inp, generator=g)
    return torch.randn(out, inp, generator=g), x
