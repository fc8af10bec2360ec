"""Q-Tuning: error-uncertainty triage of SFT samples and tokens, static and inside training.

Implements "Winning the Pruning Gamble" (arXiv 2509.23873). Each sample is placed on the
Error-Uncertainty plane (PPL and mean predictive entropy of its response under a causal LM):
Q2 (high error, low uncertainty: valuable misconceptions) is kept and token-pruned, Q4 (low error,
high uncertainty: calibration) is kept whole, Q1 (harmful noise) and Q3 (redundant) are dropped.

* Static: :class:`QTuningTriage` / :func:`write_triage` / ``dataprune triage`` score a dataset once.
* Dynamic: :class:`QTuningTrainer` (a ``transformers.Trainer``) triages each micro-batch from the
  forward pass it already computes.

Example
-------
>>> from dataprune.qtuning import QTuningConfig, QTuningTriage
>>> tri = QTuningTriage(QTuningConfig(sample_ratio=0.25, token_ratio=0.7)).fit(prompts, responses)
>>> tri.kept_indices_, tri.quadrant_            # doctest: +SKIP
"""

from __future__ import annotations

from dataprune.lazy import lazy_exports

__all__ = [
    "DROP_POLICIES",
    "ENTROPY_SPANS",
    "Q1",
    "Q2",
    "Q3",
    "Q4",
    "QUADRANT_NAMES",
    "TOKEN_BUDGETS",
    "QTuningConfig",
    "QTuningMixin",
    "QTuningTrainer",
    "QTuningTriage",
    "SFTCollator",
    "SampleTriage",
    "TriageResult",
    "corner_masks",
    "coupled_random_subset",
    "neighbor_token_scores",
    "plot_eu_plane",
    "qtuning_loss",
    "quantile_thresholds",
    "random_baseline",
    "sft_features",
    "token_keep_masks",
    "triage_samples",
    "triage_token_scores",
    "write_triage",
]

_LAZY = {
    **dict.fromkeys(
        ("DROP_POLICIES", "ENTROPY_SPANS", "TOKEN_BUDGETS", "QTuningConfig"),
        "dataprune.qtuning.config",
    ),
    **dict.fromkeys(
        ("Q1", "Q2", "Q3", "Q4", "QUADRANT_NAMES", "SampleTriage"),
        "dataprune.qtuning.sample_triage",
    ),
    **dict.fromkeys(
        ("corner_masks", "quantile_thresholds", "triage_samples"), "dataprune.qtuning.quadrants"
    ),
    **dict.fromkeys(("neighbor_token_scores", "token_keep_masks"), "dataprune.qtuning.tokens"),
    "QTuningTriage": "dataprune.qtuning.static",
    "TriageResult": "dataprune.qtuning.static",
    "triage_token_scores": "dataprune.qtuning.static",
    "write_triage": "dataprune.qtuning.report",
    "SFTCollator": "dataprune.qtuning.collate",
    "sft_features": "dataprune.qtuning.collate",
    "plot_eu_plane": "dataprune.qtuning.plot",
    **dict.fromkeys(("coupled_random_subset", "random_baseline"), "dataprune.qtuning.baseline"),
    "QTuningMixin": "dataprune.qtuning.trainer",
    "QTuningTrainer": "dataprune.qtuning.trainer",
    "qtuning_loss": "dataprune.qtuning.loss",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
