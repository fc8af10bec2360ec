"""Calibration sets for model-side pruners, chosen by data pruning.

>>> from dataprune.calibration import build_calibration_set
>>> calib = build_calibration_set(texts, tokenizer, n_samples=128, seq_len=512)  # random: the default
>>> calib.to_tensor(), calib.to_list(), calib.to_dataset(), calib.forward_loop
>>> calib = build_calibration_set(texts, tokenizer, selector="kcenter", space="activations",
...                               model=model, sources=names, mix="balanced")
>>> calibration_report({"random": a, "kcenter": calib}, model, tokenizer, heldout).to_markdown()
"""

from __future__ import annotations

from dataprune.calibration.activations import SPACES, activation_embeddings, default_layers
from dataprune.calibration.build import CHUNKING, build_calibration_set, extract_texts
from dataprune.calibration.calibration_set import CalibrationSet, as_calibration_set
from dataprune.calibration.input_moments import input_moment_features
from dataprune.calibration.mixing import MIXES, balanced_quotas, proportional_quotas
from dataprune.calibration.report import (
    CalibrationReport,
    activation_coverage,
    calibration_report,
    load_calibration_sets,
    token_diversity,
)

__all__ = [
    "CHUNKING",
    "MIXES",
    "SPACES",
    "CalibrationReport",
    "CalibrationSet",
    "activation_coverage",
    "activation_embeddings",
    "as_calibration_set",
    "balanced_quotas",
    "build_calibration_set",
    "calibration_report",
    "default_layers",
    "extract_texts",
    "input_moment_features",
    "load_calibration_sets",
    "proportional_quotas",
    "token_diversity",
]
