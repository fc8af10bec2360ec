from __future__ import annotations

import numpy as np
import pytest

from dataprune.embeddings import embed_texts, embedding_cache_key, texts_sha256
from dataprune.errors import DataValidationError

from fakes import HashingEncoder

TEXTS = [f"sentence number {i}" for i in range(25)]


def test_embeddings_are_normalised_float32_memmap(tmp_path, hashing_encoder):
    X = embed_texts(TEXTS, hashing_encoder, chunk_size=10, cache_dir=tmp_path)
    assert isinstance(X, np.memmap)
    assert X.shape == (25, 16) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, rtol=1e-5)


def test_cache_hit_does_not_encode_again(tmp_path, hashing_encoder):
    X1 = np.array(embed_texts(TEXTS, hashing_encoder, chunk_size=10, cache_dir=tmp_path))
    assert hashing_encoder.encoded == 25
    X2 = np.array(embed_texts(TEXTS, hashing_encoder, chunk_size=10, cache_dir=tmp_path))
    assert hashing_encoder.encoded == 25
    np.testing.assert_array_equal(X1, X2)


def test_interrupted_run_resumes_from_finished_chunks(tmp_path):
    enc = HashingEncoder(fail_on_call=3)
    with pytest.raises(KeyboardInterrupt):
        embed_texts(TEXTS, enc, chunk_size=10, cache_dir=tmp_path)
    assert enc.encoded == 20  # two chunks finished before the interruption
    enc2 = HashingEncoder()
    X = embed_texts(TEXTS, enc2, chunk_size=10, cache_dir=tmp_path)
    assert enc2.encoded == 5  # only the last chunk is computed
    ref = embed_texts(TEXTS, HashingEncoder(), cache=False)
    np.testing.assert_allclose(np.asarray(X), ref, rtol=1e-6)


def test_key_depends_on_model_and_texts():
    k = embedding_cache_key("m1", TEXTS)
    assert k != embedding_cache_key("m2", TEXTS)
    assert k != embedding_cache_key("m1", TEXTS[:-1])
    assert k != embedding_cache_key("m1", TEXTS, normalize=False)
    # boundaries matter: ["ab", "c"] != ["a", "bc"]
    assert texts_sha256(["ab", "c"]) != texts_sha256(["a", "bc"])


def test_bad_texts():
    with pytest.raises(DataValidationError, match="record 1"):
        embed_texts(["a", 3], HashingEncoder(), cache=False)
    with pytest.raises(DataValidationError, match="no texts"):
        embed_texts([], HashingEncoder(), cache=False)


@pytest.mark.offline_models
def test_real_minilm_embeddings(tmp_path):
    X = embed_texts(
        [
            "A cat sits on the mat.",
            "A kitten is sitting on a rug.",
            "Quarterly revenue rose by 4%.",
        ],
        cache_dir=tmp_path,
    )
    assert X.shape == (3, 384)
    sims = X @ X.T
    assert sims[0, 1] > sims[0, 2] + 0.2


def test_small_runs_resume_with_the_default_chunking(tmp_path):
    """A run far below 2,048 texts is still split into resumable chunks."""
    from dataprune.embeddings import default_chunk_size

    texts = [f"line {i}" for i in range(300)]
    size = default_chunk_size(len(texts), batch_size=8)
    assert 8 <= size < len(texts) and default_chunk_size(10**7, 64) == 2048
    enc = HashingEncoder(fail_on_call=3)
    with pytest.raises(KeyboardInterrupt):
        embed_texts(texts, enc, batch_size=8, cache_dir=tmp_path)
    assert enc.encoded == 2 * size
    enc2 = HashingEncoder()
    embed_texts(texts, enc2, batch_size=8, cache_dir=tmp_path)
    assert enc2.encoded == len(texts) - 2 * size


class _RecordingEncoder(HashingEncoder):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    def encode(self, texts, **kwargs):
        self.batches.append(list(texts))
        return super().encode(texts, **kwargs)


@pytest.mark.parametrize("cache", [False, True])
def test_chunks_hold_texts_of_similar_length(tmp_path, cache):
    """Chunks follow the texts sorted by length (little padding per batch); rows stay in input
    order and equal a one-chunk run."""
    rng = np.random.default_rng(0)
    texts = [" ".join(["word"] * int(n)) + f" {i}" for i, n in enumerate(rng.integers(1, 40, 37))]
    enc = _RecordingEncoder()
    X = np.asarray(embed_texts(texts, enc, chunk_size=10, cache=cache, cache_dir=tmp_path))
    lengths = sorted((len(t) for t in texts), reverse=True)
    assert [sorted(len(t) for t in b) for b in enc.batches] == [
        sorted(lengths[lo : lo + 10]) for lo in range(0, 37, 10)
    ]
    one = embed_texts(texts, HashingEncoder(), chunk_size=37, cache=False)
    np.testing.assert_array_equal(X, one)


def test_a_cache_written_with_another_chunk_order_starts_over(tmp_path):
    import json

    embed_texts(TEXTS, HashingEncoder(), chunk_size=10, cache_dir=tmp_path)
    (meta_path,) = tmp_path.glob("*/meta.json")
    meta = json.loads(meta_path.read_text())
    meta.pop("chunk_order")  # as written before chunks followed text length
    meta_path.write_text(json.dumps(meta))
    enc = HashingEncoder()
    X = embed_texts(TEXTS, enc, chunk_size=10, cache_dir=tmp_path)
    assert enc.encoded == len(TEXTS)
    np.testing.assert_array_equal(np.asarray(X), embed_texts(TEXTS, HashingEncoder(), cache=False))
