from __future__ import annotations

import pytest

from tiny_models import CORPUS, tiny_llama, tiny_tokenizer

POOL = [f"{a} and {b}" for a in CORPUS for b in CORPUS]  # 64 distinct short texts


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread (and do not fight other jobs for the cores)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture()
def pool():
    return list(POOL)


@pytest.fixture(scope="module")
def lm(tok):
    """A random 6-block Llama (hidden size 32): ``layers="auto"`` gives blocks [1, 3, 5]."""
    return tiny_llama(len(tok), seed=0, hidden_size=32, n_layers=6)


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory, lm, tok):
    """``lm`` and ``tok`` saved as a local model folder (for the CLI)."""
    d = tmp_path_factory.mktemp("tiny-lm")
    lm.save_pretrained(d)
    tok.save_pretrained(d)
    return d
