from __future__ import annotations

import pytest

from dataprune.errors import UnknownOptionError
from dataprune.qtuning import QTuningConfig


def test_defaults_follow_the_spec():
    c = QTuningConfig()
    assert (c.max_steps, c.tol, c.alpha_min, c.alpha_max) == (10, 0.01, 0.0, 0.49)
    # entropy_span and dedup: chosen on development data (benchmarks/qtuning_diagnostic.py); fill
    # on the development outcome pool (benchmarks/qtuning_outcome.py --split dev-fill)
    assert (c.drop, c.entropy_span, c.token_budget, c.neighbor_lambda) == (
        "high",
        "all",
        "sample",
        0.5,
    )
    assert (c.fill, c.dedup) == ("random", "fuzzy")
    # no token pruning: chosen on the development outcome pool (benchmarks/qtuning_outcome.py)
    assert c.token_ratio == 1.0
    # abrupt ends (truncated responses): chosen on development pools (qtuning_diagnostic.py)
    assert (c.abrupt_end, c.max_ifd) == (8.0, 0.95)


@pytest.mark.parametrize(
    ("B", "r", "K"),
    [
        (8, 0.25, 2),
        (1, 0.25, 1),
        (3, 0.01, 1),
        (10, 0.25, 2),
        (10, 0.35, 4),
        (7, 1.0, 7),
        (5, 0.5, 2),
    ],
)
def test_n_keep(B, r, K):
    # K = max(1, round(B * r)); Python's round (half to even) as in the authors' code
    assert QTuningConfig(sample_ratio=r).n_keep(B) == K


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sample_ratio": 0.0}, "sample_ratio"),
        ({"sample_ratio": 1.5}, "sample_ratio"),
        ({"token_ratio": -0.1}, "token_ratio"),
        ({"token_ratio": float("nan")}, "token_ratio"),
        ({"neighbor_lambda": 2.0}, "neighbor_lambda"),
        ({"max_steps": 0}, "max_steps"),
        ({"max_steps": 2.5}, "max_steps"),
        ({"tol": -1}, "tol"),
        ({"alpha_max": 0.5}, "alpha"),
        ({"alpha_min": 0.3, "alpha_max": 0.2}, "alpha"),
        ({"sample_ratio": True}, "sample_ratio"),
        ({"abrupt_end": 0.0}, "abrupt_end"),
        ({"abrupt_end": "4"}, "abrupt_end"),
        ({"abrupt_end": float("inf")}, "abrupt_end"),
        ({"max_ifd": -1.0}, "max_ifd"),
        ({"max_ifd": "1"}, "max_ifd"),
    ],
)
def test_bad_values_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        QTuningConfig(**kwargs)


def test_string_options_resolve_through_registries():
    assert QTuningConfig(drop="LOW").drop == "low"
    with pytest.raises(UnknownOptionError, match="valid: high, low"):
        QTuningConfig(drop="middle")
    with pytest.raises(UnknownOptionError, match="valid: all, response"):
        QTuningConfig(entropy_span="prompt")
    with pytest.raises(UnknownOptionError, match="valid: batch, sample"):
        QTuningConfig(token_budget="global")
    with pytest.raises(
        UnknownOptionError, match="valid: flat, margin, paper, random, rank, uniform"
    ):
        QTuningConfig(fill="zscore")


def test_dict_round_trip_and_unknown_keys():
    c = QTuningConfig(sample_ratio=0.5, drop="low")
    assert QTuningConfig.from_dict(c.to_dict()) == c
    with pytest.raises(UnknownOptionError, match="lambda"):
        QTuningConfig.from_dict({"lambda": 0.3})
