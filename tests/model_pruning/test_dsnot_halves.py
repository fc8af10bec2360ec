"""DSnoT's ``agree_halves``: the halves' statistics and the swaps both halves must support."""

from __future__ import annotations

import copy

import pytest
import torch
from model_pruning_helpers import random_layer

from dataprune.calibration import CalibrationSet
from dataprune.errors import DataValidationError
from dataprune.model_pruning import (
    DSnoTConfig,
    FeatureMoments,
    InputMoments,
    WandaPruner,
    dsnot_refine_mask,
    expected_reconstruction_error,
    get_mask_refiner,
)
from dataprune.model_pruning.masks import prune_mask, wanda_scores
from dataprune.model_pruning.patterns import resolve_sparsity
from dataprune.model_pruning.structure import PrunableLayer


def _stats(x):
    return x.mean(0), x.var(0, unbiased=False)


def test_input_moments_keep_even_and_odd_sequences_apart():
    lin = torch.nn.Linear(8, 4)
    g = torch.Generator().manual_seed(0)
    # batches of 3, 2 and 3 rows: the halves follow the running sequence number, not the row
    batches = [torch.randn(n, 5, 8, generator=g) * 2 + 1 for n in (3, 2, 3)]
    masks = [torch.ones(n, 5, dtype=torch.bool) for n in (3, 2, 3)]
    masks[0][2, 3:] = False  # padding
    masks[1][0, :] = False  # an all-padding sequence (sequence 3, odd)
    with InputMoments([PrunableLayer("lin", lin)], halves=True) as moments, torch.no_grad():
        for xb, mb in zip(batches, masks):
            moments.token_mask = mb
            lin(xb)
    seqs = [(xb[r][mb[r]]) for xb, mb in zip(batches, masks) for r in range(xb.shape[0])]
    stats = moments.pop("lin")
    assert stats.halves is not None and stats.n_sequences == 7
    for half, h in enumerate(stats.halves):
        real = torch.cat(seqs[half::2]).double()
        assert h.n_tokens == real.shape[0]
        assert h.n_sequences == sum(len(s) > 0 for s in seqs[half::2])
        assert torch.allclose(h.mean.double(), real.mean(0), atol=1e-5)
        assert torch.allclose(h.var.double(), real.var(0, unbiased=False), rtol=1e-4)
    assert stats.halves[0].n_tokens + stats.halves[1].n_tokens == stats.n_tokens
    assert stats.halves[1].n_sequences == 3  # sequences 1, 5, 7; 3 holds no token
    with InputMoments([PrunableLayer("lin", lin)]) as plain, torch.no_grad():
        lin(batches[0])
    assert plain.pop("lin").halves is None  # only when asked for


def test_input_moments_halves_with_second_moments_and_shared_inputs():
    a, b = torch.nn.Linear(6, 3), torch.nn.Linear(6, 3)
    g = torch.Generator().manual_seed(4)
    batches = [torch.randn(3, 4, 6, generator=g) + 0.5 for _ in range(2)]
    masks = [torch.ones(3, 4, dtype=torch.bool), torch.tensor([[1, 1, 0, 0]] * 3).bool()]
    layers = [PrunableLayer("a", a), PrunableLayer("b", b)]
    with InputMoments(layers, second_moment=True, halves=True) as moments, torch.no_grad():
        for xb, mb in zip(batches, masks):
            moments.token_mask = mb
            a(xb), b(xb)  # b reuses a's products
    seqs = [xb[r][mb[r]] for xb, mb in zip(batches, masks) for r in range(3)]
    for name in "ab":
        stats = moments.pop(name)
        real = torch.cat(seqs)
        assert torch.allclose(stats.second_moment, real.T @ real / real.shape[0], atol=1e-5)
        for half, h in enumerate(stats.halves):
            part = torch.cat(seqs[half::2])
            assert h.n_tokens == part.shape[0] and h.n_sequences == 3
            assert torch.allclose(h.second_moment, part.T @ part / part.shape[0], atol=1e-5)
            assert torch.allclose(h.mean, part.mean(0), atol=1e-6)


def _refine(w, x, halves, pattern=None, **config):
    spec = resolve_sparsity(None if pattern else 0.6, pattern)
    wanda = prune_mask(wanda_scores(w, (x * x).sum(0)), spec)
    kw = {"pattern": pattern, "tokens_per_sequence": x.shape[0] / 4}
    if config.get("objective") == "mse_full":
        kw["second_moment"] = x.T @ x / x.shape[0]
    config = {"agree_halves": halves is not None, **config}  # plain DSnoT without halves
    refined = dsnot_refine_mask(w, wanda, *_stats(x), config=config, halves=halves, **kw)
    return wanda, refined


@pytest.mark.parametrize(
    ("pattern", "objective"), [(None, "mse"), ("2:4", "mse"), (None, "mean"), (None, "mse_full")]
)
def test_identical_halves_change_nothing(pattern, objective):
    w, x = random_layer(0)
    same = (*_stats(x), x.T @ x / x.shape[0])
    wanda, plain = _refine(w, x, None, pattern, objective=objective)
    _, agreed = _refine(w, x, [same, same], pattern, objective=objective, agree_halves=True)
    assert torch.equal(plain, agreed) and not torch.equal(plain, wanda)


@pytest.mark.parametrize("objective", ["mse", "mean"])
def test_no_half_ends_worse_and_fewer_swaps_are_made(objective):
    # mse_full: see test_full_objective_with_halves_lowers_each_half_exactly
    key = "mean_sq_error" if objective == "mse" else "mean_abs_error"
    fewer = 0
    for seed in range(4):
        w, x = random_layer(seed, tokens=512)
        # two halves of the tokens from differently shifted inputs: they disagree on some swaps
        shift = 0.5 * torch.randn(x.shape[1], generator=torch.Generator().manual_seed(seed + 9))
        x = torch.cat([x[:256] + shift, x[256:] - shift])
        halves = [_stats(x[:256]), _stats(x[256:])]
        wanda, plain = _refine(w, x, None, objective=objective)
        _, agreed = _refine(w, x, halves, objective=objective, agree_halves=True)
        assert torch.equal(agreed.sum(1), wanda.sum(1))
        for mu, var in halves:  # every swap lowered each half's error: none ends above Wanda's
            d = w * agreed - w * wanda  # (signs of d only matter through the error below)
            assert d.abs().sum() > 0
            before = expected_reconstruction_error(w, wanda, mu, var)[key]
            after = expected_reconstruction_error(w, agreed, mu, var)[key]
            assert after <= before * (1 + 1e-5), (seed, before, after)
        full = _stats(x)
        assert expected_reconstruction_error(w, agreed, *full)[key] <= (
            expected_reconstruction_error(w, wanda, *full)[key] * (1 + 1e-5)
        )
        fewer += int((agreed & ~wanda).sum()) < int((plain & ~wanda).sum())
    assert fewer == 4


def test_agree_halves_validation():
    w, x = random_layer(1)
    with pytest.raises(DataValidationError, match="needs halves"):
        _refine(w, x, None, agree_halves=True)
    with pytest.raises(DataValidationError, match=r"halves\[1\] var must be a tensor of shape"):
        _refine(w, x, [_stats(x), (x.mean(0), x.var(0)[:5])], agree_halves=True)
    with pytest.raises(DataValidationError, match=r"halves\[0\] second_moment must be a tensor"):
        _refine(w, x, [_stats(x), _stats(x)], objective="mse_full", agree_halves=True)
    with pytest.raises(DataValidationError, match="agree_halves must be True or False"):
        DSnoTConfig(agree_halves=1)
    assert get_mask_refiner("dsnot").needs_halves  # the default
    assert not get_mask_refiner("dsnot", {"agree_halves": False}).needs_halves


def test_wanda_with_agree_halves_end_to_end(model, calib, tok):
    plain, agreed = copy.deepcopy(model), copy.deepcopy(model)
    base = WandaPruner(sparsity=0.6, refine="dsnot", refine_config={"agree_halves": False}).prune(
        plain, calib
    )
    report = WandaPruner(sparsity=0.6, refine="dsnot").prune(agreed, calib)
    assert report.refine.config["agree_halves"] is True
    assert 0 < report.refine.n_swaps < base.refine.n_swaps
    assert report.n_zeros == base.n_zeros
    one = CalibrationSet(calib.input_ids[:1], calib.attention_mask[:1], {}, tokenizer=tok)
    with pytest.raises(DataValidationError, match="needs at least 2 calibration sequences, got 1"):
        WandaPruner(sparsity=0.6, refine="dsnot").prune(copy.deepcopy(model), one)
    off = WandaPruner(sparsity=0.6, refine="dsnot", refine_config={"agree_halves": False})
    assert off.prune(copy.deepcopy(model), one).refine.config["agree_halves"] is False
    # a refiner handed moments without halves names the default and the way out
    refiner = get_mask_refiner("dsnot")
    w = torch.randn(4, 8)
    stats = FeatureMoments(torch.zeros(8), torch.ones(8), 16, 2)
    with pytest.raises(DataValidationError, match=r"on by default.*'agree_halves': False"):
        refiner.refine(w, torch.zeros(4, 8, dtype=torch.bool), stats, resolve_sparsity(0.5))


def test_full_objective_with_halves_lowers_each_half_exactly():
    for seed in range(3):
        w, x = random_layer(seed, tokens=512)
        shift = 0.5 * torch.randn(x.shape[1], generator=torch.Generator().manual_seed(seed))
        parts = [x[:256] + shift, x[256:] - shift]
        x = torch.cat(parts)
        halves = [(*_stats(p), p.T @ p / p.shape[0]) for p in parts]
        wanda, plain = _refine(w, x, None, objective="mse_full")
        _, agreed = _refine(w, x, halves, objective="mse_full", agree_halves=True)
        for p in parts:  # every swap lowered each half's exact error, row by row
            before = ((p @ (w * wanda).T) ** 2).sum(0)
            after = ((p @ (w * agreed).T) ** 2).sum(0)
            assert (after <= before * (1 + 1e-5)).all(), seed
        assert int((agreed & ~wanda).sum()) < int((plain & ~wanda).sum())
