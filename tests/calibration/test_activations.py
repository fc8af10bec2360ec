from __future__ import annotations

import numpy as np
import pytest

from dataprune.calibration import activation_embeddings, build_calibration_set, default_layers
from dataprune.errors import DataValidationError, UnknownOptionError

from tiny_models import tiny_llama


def _blocks(n=5, width=8, seed=0, vocab=35):
    return np.random.default_rng(seed).integers(4, vocab, size=(n, width))


def test_default_layers_rule():
    assert default_layers(30) == [9, 19, 29]
    assert default_layers(24) == [7, 15, 23]
    assert default_layers(6) == [1, 3, 5]
    assert default_layers(3) == [0, 1, 2]
    assert default_layers(2) == [0, 1]
    assert default_layers(1) == [0]


def test_shapes_unit_rows_and_layers(lm):
    ids = _blocks()
    X = activation_embeddings(lm, ids)
    assert X.shape == (5, 3 * 32) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    P = activation_embeddings(lm, ids, per_layer=True)
    assert P.shape == (5, 3, 32) and P.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(P, axis=2), 1.0, atol=1e-5)
    np.testing.assert_allclose(X, P.reshape(5, -1) / np.sqrt(3), atol=1e-6)
    # explicit layers, negative from the end, in any order: the same blocks
    Q = activation_embeddings(lm, ids, layers=[-1, 1, 3], per_layer=True)
    np.testing.assert_allclose(Q, P, atol=1e-6)
    one = activation_embeddings(lm, ids, layers=0)
    assert one.shape == (5, 32)
    assert not np.allclose(one, P[:, 0])  # block 0 is not block 1


def test_padding_and_batch_partners_are_ignored(lm):
    ids = _blocks(n=4, width=6)
    base = activation_embeddings(lm, ids, batch_size=1)
    padded = np.full((4, 11), 1)  # [PAD] = 1
    padded[:, :6] = ids
    mask = np.zeros_like(padded)
    mask[:, :6] = 1
    # a ragged batch: the other blocks of a batch are longer
    mixed = np.vstack([padded, np.random.default_rng(3).integers(4, 35, size=(3, 11))])
    mixed_mask = np.vstack([mask, np.ones((3, 11), dtype=int)])
    got = activation_embeddings(lm, padded, mask, batch_size=3)
    got_mixed = activation_embeddings(lm, mixed, mixed_mask, batch_size=7)[:4]
    np.testing.assert_allclose(got, base, atol=1e-5)
    np.testing.assert_allclose(got_mixed, base, atol=1e-5)
    # torch tensors work too
    import torch

    t = activation_embeddings(lm, torch.from_numpy(padded), torch.from_numpy(mask))
    np.testing.assert_allclose(t, base, atol=1e-5)


def test_depends_on_the_model(lm):
    other = tiny_llama(35, seed=1, hidden_size=32, n_layers=6)
    ids = _blocks()
    a, b = activation_embeddings(lm, ids), activation_embeddings(other, ids)
    assert a.shape == b.shape
    assert np.abs(a - b).max() > 0.1
    np.testing.assert_array_equal(a, activation_embeddings(lm, ids))  # deterministic


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"layers": 6}, DataValidationError, r"layer 6 is out of range: .* 6 decoder blocks"),
        ({"layers": [-7]}, DataValidationError, "out of range"),
        ({"layers": "middle"}, UnknownOptionError, "unknown layers 'middle'; valid: 'auto'"),
        ({"layers": []}, DataValidationError, "layers is empty"),
        ({"layers": [1.5]}, DataValidationError, "layers must be integers"),
        ({"batch_size": 0}, DataValidationError, "batch_size must be a positive integer"),
        ({"input_ids": np.zeros(5, dtype=int)}, DataValidationError, r"shape \(n_samples"),
        (
            {"input_ids": np.full((2, 3), 99)},
            DataValidationError,
            r"token ids must be in \[0, 35\)",
        ),
        (
            {"attention_mask": np.array([[0, 1, 1, 1, 1, 1, 1, 1]] * 5)},
            DataValidationError,
            "record 0: attention_mask must be right-padded",
        ),
        (
            {"attention_mask": np.zeros((5, 8), dtype=int)},
            DataValidationError,
            "block has no tokens",
        ),
    ],
)
def test_bad_arguments(lm, kwargs, exc, message):
    args = {"input_ids": _blocks(), **kwargs}
    with pytest.raises(exc, match=message):
        activation_embeddings(lm, **args)


def test_not_a_model():
    with pytest.raises(DataValidationError, match="model must be a causal LM"):
        activation_embeddings(object(), _blocks())


def test_build_in_activation_space_with_kcenter(tok, pool, lm):
    from dataprune.selection import KCenterGreedy

    c = build_calibration_set(
        pool,
        tok,
        n_samples=4,
        seq_len=8,
        selector="kcenter",
        space="activations",
        model=lm,
        random_state=0,
    )
    p = c.provenance
    assert c.input_ids.shape == (4, 8)
    assert p["space"] == "activations" and p["activation_layers"] == [1, 3, 5]
    assert p["activation_model"] == "LlamaForCausalLM" and p["encoder"] is None
    assert p["selector"] == "kcenter" and p["fit_input"] == "embeddings"
    # the same as k-center on the candidates' activation embeddings by hand
    full = build_calibration_set(pool, tok, n_samples=1, seq_len=8, random_state=0)
    n = full.provenance["n_candidates"]
    everything = build_calibration_set(pool, tok, n_samples=n, seq_len=8, selector="longest")
    order = np.argsort(everything.provenance["candidate_indices"])
    X = activation_embeddings(lm, everything.input_ids[order])
    ref = KCenterGreedy(n_samples=4, random_state=0).fit(X).selected_indices_
    assert p["candidate_indices"] == ref.tolist()
    # explicit layers, deterministic
    again = build_calibration_set(
        pool, tok, n_samples=4, seq_len=8, selector="kcenter", space="activations", model=lm,
        layers=[-1], random_state=0,
    )  # fmt: skip
    assert again.provenance["activation_layers"] == [5]
    same = build_calibration_set(
        pool, tok, n_samples=4, seq_len=8, selector="kcenter", space="activations", model=lm,
        layers=[5], random_state=0,
    )  # fmt: skip
    np.testing.assert_array_equal(again.input_ids, same.input_ids)
    # the default space records itself
    assert full.provenance["space"] == "embeddings" and full.provenance["activation_layers"] is None


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"space": "activations"}, DataValidationError, "space='activations' needs model="),
        ({"space": "hidden"}, UnknownOptionError, "unknown space 'hidden'; valid: embeddings, act"),
        ({"model": "LM"}, DataValidationError, "model= and layers= are for space='activations'"),
        ({"layers": [1]}, DataValidationError, "model= and layers= are for space='activations'"),
        (
            {"space": "activations", "model": "LM", "encoder": "minilm"},
            DataValidationError,
            "encoder= and embeddings= are for space='embeddings'",
        ),
        (
            {"space": "activations", "model": "LM", "layers": [9]},
            DataValidationError,
            "layer 9 is out of range",
        ),
    ],
)
def test_bad_space_arguments(tok, pool, lm, kwargs, exc, message):
    if kwargs.get("model") == "LM":
        kwargs = {**kwargs, "model": lm}
    with pytest.raises(exc, match=message):
        build_calibration_set(pool, tok, n_samples=2, seq_len=8, selector="kcenter", **kwargs)
