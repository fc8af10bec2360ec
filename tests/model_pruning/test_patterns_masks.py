from __future__ import annotations

import math

import pytest
import torch

from dataprune.errors import DataValidationError
from dataprune.model_pruning import resolve_sparsity
from dataprune.model_pruning.masks import prune_mask, wanda_scores


@pytest.mark.parametrize(
    ("sparsity", "pattern", "message"),
    [
        (1.5, None, "strictly between 0 and 1"),
        (0.0, None, "strictly between 0 and 1"),
        (1.0, None, "strictly between 0 and 1"),
        (-0.2, None, "strictly between 0 and 1"),
        (math.nan, None, "strictly between 0 and 1"),
        ("0.5", None, "must be a number"),
        (True, None, "must be a number"),
        (None, None, "give a sparsity"),
        (None, "2-4", "'N:M' with integers"),
        (None, "abc", "'N:M' with integers"),
        (None, "4:2", "need 0 < N < M"),
        (None, "0:4", "need 0 < N < M"),
        (None, "4:4", "need 0 < N < M"),
        (0.7, "2:4", "contradicts pattern '2:4'"),
    ],
)
def test_bad_sparsity_and_pattern(sparsity, pattern, message):
    with pytest.raises(DataValidationError, match=message):
        resolve_sparsity(sparsity, pattern)


def test_good_specs():
    assert resolve_sparsity(0.5).describe() == "unstructured 50%"
    s = resolve_sparsity(None, "2:4")
    assert (s.n, s.m, s.sparsity, s.pattern) == (2, 4, 0.5, "2:4")
    assert resolve_sparsity(0.5, " 4 : 8 ").pattern == "4:8"
    one_of_four = resolve_sparsity(None, "1:4")
    assert one_of_four.sparsity == 0.75 and one_of_four.n_pruned_per_group == 3
    assert resolve_sparsity(0.3, "unstructured").structured is False


def test_row_mask_prunes_lowest_scores_of_every_row():
    g = torch.Generator().manual_seed(0)
    s = torch.rand(7, 20, generator=g)
    mask = prune_mask(s, resolve_sparsity(0.3))
    assert mask.sum(dim=1).tolist() == [6] * 7
    for r in range(7):
        assert s[r][mask[r]].max() < s[r][~mask[r]].min()


def test_row_mask_ties_go_to_lower_columns():
    mask = prune_mask(torch.ones(2, 8), resolve_sparsity(0.5))
    assert mask[:, :4].all() and not mask[:, 4:].any()


def test_layer_mask_is_global():
    s = torch.arange(40, dtype=torch.float32).reshape(4, 10)
    mask = prune_mask(s, resolve_sparsity(0.25), comparison="layer")
    assert mask.sum() == 10 and mask[0].all() and not mask[1:].any()


@pytest.mark.parametrize(("pattern", "n_zero"), [("2:4", 2), ("1:4", 3), ("4:8", 4)])
def test_nm_mask_groups(pattern, n_zero):
    g = torch.Generator().manual_seed(1)
    s = torch.rand(5, 16, generator=g)
    spec = resolve_sparsity(None, pattern)
    mask = prune_mask(s, spec)
    m = spec.m
    groups_mask = mask.reshape(5, 16 // m, m)
    groups_s = s.reshape(5, 16 // m, m)
    assert (groups_mask.sum(dim=2) == n_zero).all()
    assert (
        groups_s.masked_fill(~groups_mask, -1).amax(dim=2)
        < groups_s.masked_fill(groups_mask, 2).amin(dim=2)
    ).all()


def test_nm_needs_divisible_width():
    with pytest.raises(DataValidationError, match="divisible by 4"):
        prune_mask(torch.rand(3, 10), resolve_sparsity(None, "2:4"))


def test_unknown_comparison_group():
    with pytest.raises(DataValidationError, match="comparison must be one of"):
        prune_mask(torch.rand(3, 8), resolve_sparsity(0.5), comparison="block")


def test_wanda_scores_formula():
    w = torch.tensor([[1.0, -2.0], [-3.0, 0.5]], dtype=torch.bfloat16)
    sq = torch.tensor([4.0, 9.0])
    s = wanda_scores(w, sq)
    assert s.dtype == torch.float32
    assert torch.allclose(s, torch.tensor([[2.0, 6.0], [6.0, 1.5]]))
    with pytest.raises(ValueError, match="disagree"):
        wanda_scores(w, torch.ones(3))
