"""Model-side pruning: Wanda and magnitude pruners for causal LMs, an llm-compressor adapter, and
perplexity comparisons of calibration sets.

>>> from dataprune.calibration import build_calibration_set
>>> from dataprune.model_pruning import WandaPruner
>>> calib = build_calibration_set(texts, tokenizer, n_samples=64, seq_len=512, selector="kcenter")
>>> report = WandaPruner(sparsity=0.5).prune(model, calib)          # or pattern="2:4"
>>> model.save_pretrained("pruned")
"""

from __future__ import annotations

from dataprune.model_pruning.base import (
    MODEL_PRUNERS,
    LayerReport,
    ModelPruner,
    PruneReport,
    get_model_pruner,
    model_sparsity,
)
from dataprune.model_pruning.compare import CalibrationComparison, compare_calibration
from dataprune.model_pruning.llmcompressor_adapter import LLMCompressorPruner
from dataprune.model_pruning.magnitude import MagnitudePruner
from dataprune.model_pruning.patterns import SparsitySpec, resolve_sparsity
from dataprune.model_pruning.perplexity import PerplexityResult, perplexity
from dataprune.model_pruning.structure import (
    UnsupportedModelError,
    find_decoder_blocks,
    prunable_layers,
)
from dataprune.model_pruning.wanda import WandaPruner

__all__ = [
    "MODEL_PRUNERS",
    "CalibrationComparison",
    "LLMCompressorPruner",
    "LayerReport",
    "MagnitudePruner",
    "ModelPruner",
    "PerplexityResult",
    "PruneReport",
    "SparsitySpec",
    "UnsupportedModelError",
    "WandaPruner",
    "compare_calibration",
    "find_decoder_blocks",
    "get_model_pruner",
    "model_sparsity",
    "perplexity",
    "prunable_layers",
    "resolve_sparsity",
]
