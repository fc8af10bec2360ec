"""Fixtures for the RAG pruning tests: tiny in-process models for wiring, the shipped pruner for
behaviour. LlamaIndex may fetch NLTK data lazily for some of its components; point its caches at
a temporary folder so nothing is written to (or downloaded into) the user's home."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest

_NLTK_TMP = tempfile.mkdtemp(prefix="dataprune-nltk-")
os.environ.setdefault("NLTK_DATA", _NLTK_TMP)
os.environ.setdefault("LLAMA_INDEX_CACHE_DIR", _NLTK_TMP)

CORPUS = [
    "The",
    "zebra",
    "lives",
    "in",
    "Africa.",
    "Paris",
    "is",
    "the",
    "capital",
    "of",
    "France.",
    "Berlin",
    "is",
    "in",
    "Germany.",
    "Warsaw",
    "was",
    "founded",
    "in",
    "the",
    "13th",
    "century.",
    "The",
    "river",
    "Vistula",
    "flows",
    "through",
    "Warsaw.",
    "What",
    "is",
    "the",
    "capital",
    "of",
    "France?",
    "Where",
    "does",
    "the",
    "zebra",
    "live?",
    "When",
    "was",
    "Warsaw",
    "founded?",
    "Steam",
    "engines",
    "use",
    "boilers.",
    "Dr.",
    "Smith",
    "arrived",
    "at",
    "3.30",
    "p.m.",
    "on",
    "Monday.",
    "It",
    "rained",
    "all",
    "day.",
    "A",
    "cat",
    "sat",
    "on",
    "the",
    "mat.",
    "Dogs",
    "bark",
    "loudly",
    "at",
    "night.",
    "Water",
    "boils",
    "at",
    "100",
    "degrees.",
]


def _make_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation()]
    )
    words = [w.lower() for w in CORPUS] + [re.sub(r"\W", "", w).lower() for w in CORPUS]
    trainer = trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"])
    tok.train_from_iterator([" ".join(words)] * 2, trainer)
    from tokenizers import normalizers

    tok.normalizer = normalizers.Lowercase()
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
    )


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> Path:
    """A folder with a random 2-layer BERT (hidden 32) and a WordLevel tokenizer."""
    import torch
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-backbone")
    tok = _make_tokenizer()
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        type_vocab_size=2,
    )
    BertModel(cfg, add_pooling_layer=False).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture()
def one_thread():
    """Tiny models run faster on one thread (and do not fight other jobs for the cores)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture()
def tiny_pruner(tiny_backbone, one_thread):
    """A ContextPruner on the tiny random backbone (windows of 48 tokens)."""
    from dataprune.rag.config import PrunerConfig
    from dataprune.rag.model import build_pruner_model
    from dataprune.rag.pruner import ContextPruner

    cfg = PrunerConfig(
        backbone=str(tiny_backbone), max_length=48, max_query_tokens=12, trainable_layers=1
    )
    model, tok, _ = build_pruner_model(cfg, random_state=0)
    model.eval()
    return ContextPruner(model, tok, max_length=48, max_query_tokens=12, batch_size=4)


@pytest.fixture(scope="session")
def default_pruner():
    """The pruner shipped inside the package (all-MiniLM-L6-v2 base, offline)."""
    from dataprune.rag.pruner import ContextPruner

    return ContextPruner.from_pretrained("default")


@pytest.fixture()
def restore_logging():
    """main() installs a stderr handler on the dataprune logger; do not leak it to other tests."""
    import logging

    log = logging.getLogger("dataprune")
    saved = (log.handlers[:], log.level, log.propagate)
    yield
    log.handlers[:], log.level, log.propagate = saved[0], saved[1], saved[2]


@pytest.fixture()
def tiny_ckpt(tiny_pruner, tmp_path):
    """The tiny pruner saved as a checkpoint folder (what ``--model`` takes)."""
    from dataprune.rag.model import save_pruner_model

    return save_pruner_model(tiny_pruner.model, tmp_path / "ckpt")
