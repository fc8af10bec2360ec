"""CLI options generated from config dataclasses: defaults, help and choices from one source."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from dataprune.cli.config_options import add_config_options, config_from_args, field_help
from dataprune.cli.main import main
from dataprune.qtuning.config import QTuningConfig


@dataclass
class Demo:
    """A config.

    Parameters
    ----------
    ratio : float, default=0.5
        Fraction kept, in (0, 1]. More text here.
    lo, hi : int, default=1 and 9
        Bounds of the range.
    mode : {"a", "b"}, default="a"
        Which mode.
    flag : bool, default=False
        Whether to do it.

    Attributes
    ----------
    unused : int
        Not a parameter.
    """

    ratio: float = 0.5
    lo: int = 1
    hi: int = 9
    mode: str = "a"
    flag: bool = False


def test_help_and_defaults_come_from_the_dataclass():
    assert field_help(Demo) == {
        "ratio": "Fraction kept, in (0, 1]",
        "lo": "Bounds of the range",
        "hi": "Bounds of the range",
        "mode": "Which mode",
        "flag": "Whether to do it",
    }
    p = argparse.ArgumentParser()
    add_config_options(p, Demo, choices={"mode": ["a", "b"]}, flags={"hi": "--upper"})
    args = p.parse_args(["--ratio", "0.25", "--upper", "7", "--mode", "b", "--flag"])
    assert config_from_args(Demo, args) == Demo(ratio=0.25, hi=7, mode="b", flag=True)
    assert config_from_args(Demo, p.parse_args([])) == Demo()
    text = " ".join(p.format_help().split())
    assert "--ratio RATIO Fraction kept, in (0, 1] (default 0.5)" in text
    with pytest.raises(SystemExit):
        p.parse_args(["--mode", "c"])


def test_triage_options_follow_qtuning_config(capsys):
    with pytest.raises(SystemExit):
        main(["triage", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    from dataprune.qtuning.config import FILLS

    cfg = QTuningConfig()
    assert "uniform" in FILLS.names()
    for flag, value in [
        ("--sample-ratio", cfg.sample_ratio),
        ("--token-ratio", cfg.token_ratio),
        ("--lambda", cfg.neighbor_lambda),
        ("--fill {" + ",".join(FILLS.names()) + "}", cfg.fill),
        ("--max-steps", cfg.max_steps),
    ]:
        assert flag in out
        assert f"(default {value})" in out
