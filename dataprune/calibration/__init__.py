"""Calibration sets for model-side pruners, chosen by data pruning.

>>> from dataprune.calibration import build_calibration_set
>>> calib = build_calibration_set(texts, tokenizer, n_samples=128, seq_len=512, selector="kcenter")
>>> calib.to_tensor(), calib.to_list(), calib.to_dataset(), calib.forward_loop
"""

from __future__ import annotations

from dataprune.calibration.build import CHUNKING, build_calibration_set, extract_texts
from dataprune.calibration.calibration_set import CalibrationSet, as_calibration_set

__all__ = [
    "CHUNKING",
    "CalibrationSet",
    "as_calibration_set",
    "build_calibration_set",
    "extract_texts",
]
