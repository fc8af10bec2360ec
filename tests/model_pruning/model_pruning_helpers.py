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
