"""Tiny in-process models and tokenizers for wiring tests (random weights; never for quality claims)."""

from __future__ import annotations

CORPUS = [
    "the cat sat on the mat",
    "a dog ran in the park",
    "what is two plus two",
    "two plus two is four",
    "the answer is 42",
    "hello world how are you",
    "please write a short poem about the sea",
    "the sea is blue and wide",
]


def tiny_tokenizer(chat_template: bool = False):
    """A word-level fast tokenizer trained in-process on a tiny corpus (with unk/pad/eos)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]", "[EOS]", "[BOS]"])
    tok.train_from_iterator(CORPUS * 3, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        eos_token="[EOS]",
        bos_token="[BOS]",
    )
    if chat_template:
        fast.chat_template = (
            "{% for m in messages %}[BOS] {{ m['role'] }} {{ m['content'] }} [EOS] {% endfor %}"
            "{% if add_generation_prompt %}[BOS] assistant {% endif %}"
        )
    return fast


def tiny_llama(vocab_size: int, *, seed: int = 0, hidden_size: int = 32, n_layers: int = 2):
    """A random 2-layer Llama causal LM."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=n_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(cfg)
    model.eval()
    return model


def tiny_causal_lm(*, chat_template: bool = False, seed: int = 0):
    """(model, tokenizer) pair: a random tiny Llama and a word-level tokenizer."""
    tok = tiny_tokenizer(chat_template=chat_template)
    model = tiny_llama(len(tok), seed=seed)
    model.config.eos_token_id = tok.eos_token_id  # as in a real checkpoint
    model.generation_config.eos_token_id = tok.eos_token_id
    return model, tok
