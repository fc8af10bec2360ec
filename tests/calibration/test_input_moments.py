from __future__ import annotations

import numpy as np
import pytest

from dataprune.calibration import build_calibration_set, input_moment_features
from dataprune.errors import DataValidationError
from dataprune.model_pruning.activations import ActivationNorms
from dataprune.model_pruning.structure import all_prunable_layers


def _blocks(n=12, width=9, seed=0, vocab=35):
    return np.random.default_rng(seed).integers(4, vocab, size=(n, width))


def _per_block_norms(lm, ids):
    """The pruners' own statistic, one block at a time: sum_t x_tj^2 / n_tokens per layer."""
    import torch

    _, _, per_block = all_prunable_layers(lm)
    layers = [lay for blk in per_block for lay in blk]
    rows = []
    for row in ids:
        with torch.no_grad(), ActivationNorms(layers) as rec:
            lm(input_ids=torch.from_numpy(row[None].copy()))
            rows.append({k: (v / rec.n_tokens[k]).numpy() for k, v in rec.sq_norms.items()})
    return layers, rows


def test_shape_and_groups(lm):
    F = input_moment_features(lm, _blocks())
    # per block: q/k/v read one input (32), o_proj (32), gate/up one input (32), down (64)
    assert F.shape == (12, 6 * (32 + 32 + 32 + 64)) and F.dtype == np.float32
    assert (F >= 0).all()
    means = F.mean(axis=0).reshape(6, -1)  # equal-length blocks: token mean = row mean
    expected = np.concatenate(
        [np.full(32, np.sqrt(3)), np.ones(32), np.full(32, np.sqrt(2)), np.ones(64)]
    )
    np.testing.assert_allclose(means, np.tile(expected, (6, 1)), rtol=1e-4)


def test_features_are_the_pruners_statistic_relative_to_the_pool(lm):
    ids = _blocks()
    F = input_moment_features(lm, ids, batch_size=5)
    layers, rows = _per_block_norms(lm, ids)
    by_name = {lay.name: lay for lay in layers}
    block0 = [n for n in by_name if ".0." in n]
    q = next(n for n in block0 if n.endswith("q_proj"))
    down = next(n for n in block0 if n.endswith("down_proj"))
    ref_q = np.stack([r[q] for r in rows])
    ref_down = np.stack([r[down] for r in rows])
    # block 0's columns: q/k/v group first (scaled by sqrt(3)), then o, gate/up, down
    np.testing.assert_allclose(F[:, :32], np.sqrt(3) * ref_q / ref_q.mean(axis=0), rtol=2e-4)
    np.testing.assert_allclose(F[:, 96:160], ref_down / ref_down.mean(axis=0), rtol=2e-4)


def test_padding_batch_partners_and_layers(lm):
    ids = _blocks(n=4, width=6)
    padded = np.full((4, 11), 1)
    padded[:, :6] = ids
    mask = np.zeros_like(padded)
    mask[:, :6] = 1
    base = input_moment_features(lm, ids, batch_size=1)
    np.testing.assert_allclose(
        input_moment_features(lm, padded, mask, batch_size=3), base, rtol=1e-4
    )
    one = input_moment_features(lm, ids, layers=[2])
    assert one.shape == (4, 160)
    np.testing.assert_allclose(one, base[:, 320:480], rtol=1e-4)
    with pytest.raises(DataValidationError, match="batch_size"):
        input_moment_features(lm, ids, batch_size=0)
    with pytest.raises(DataValidationError, match="out of range"):
        input_moment_features(lm, ids, layers=[6])


def test_herding_in_moment_space_matches_the_pools_wanda_norms(lm):
    """The point of the space: a herded subset's pooled input norms are the pool's more closely
    than a random subset's of the same size."""
    rng = np.random.default_rng(0)
    ids = rng.integers(4, 35, size=(60, 10))
    F = input_moment_features(lm, ids)
    _, rows = _per_block_norms(lm, ids)
    names = list(rows[0])
    pool = {n: np.mean([r[n] for r in rows], axis=0) for n in names}

    def rel_error(subset):
        return float(
            np.mean(
                [
                    np.mean((np.mean([rows[i][n] for i in subset], 0) / pool[n] - 1) ** 2)
                    for n in names
                ]
            )
        )

    from dataprune.selection import Herding

    herded = Herding(n_samples=8).fit(F).selected_indices_
    random_errors = [rel_error(rng.choice(60, 8, replace=False)) for _ in range(30)]
    assert rel_error(herded) < np.percentile(random_errors, 10)


def test_build_calibration_set_in_moment_space(lm, tok, pool):
    c = build_calibration_set(
        pool, tok, n_samples=6, seq_len=8, selector="herding", space="input_moments", model=lm
    )
    assert c.n_samples == 6
    assert c.provenance["space"] == "input_moments"
    assert c.provenance["activation_layers"] == list(range(6))
    again = build_calibration_set(
        pool, tok, n_samples=6, seq_len=8, selector="herding", space="input_moments", model=lm
    )
    assert again.provenance["candidate_indices"] == c.provenance["candidate_indices"]
    with pytest.raises(DataValidationError, match="needs model="):
        build_calibration_set(pool, tok, n_samples=6, seq_len=8, space="input_moments")
