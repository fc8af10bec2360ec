"""Model-side pruning: Wanda and magnitude pruners for causal LMs, DSnoT mask refinement, an
llm-compressor adapter, and perplexity comparisons of calibration sets.

>>> from dataprune.calibration import build_calibration_set
>>> from dataprune.model_pruning import WandaPruner
>>> calib = build_calibration_set(texts, tokenizer, n_samples=64, seq_len=512)  # random blocks
>>> report = WandaPruner(sparsity=0.5).prune(model, calib)          # or pattern="2:4"
>>> report = WandaPruner(sparsity=0.6, refine="dsnot").prune(model, calib)  # + DSnoT swaps
>>> model.save_pretrained("pruned")

Every name is imported on first use (``dataprune --help`` imports no numpy or torch); the
registries ``MODEL_PRUNERS`` and ``MASK_REFINERS`` come with the built-in entries registered.
"""

from __future__ import annotations

from typing import Any

from dataprune.lazy import lazy_exports

__all__ = [
    "MASK_REFINERS",
    "MODEL_PRUNERS",
    "CalibrationComparison",
    "DSnoTConfig",
    "DSnoTRefiner",
    "FeatureMoments",
    "InputMoments",
    "LLMCompressorPruner",
    "LayerReport",
    "MagnitudePruner",
    "ModelPruner",
    "PerplexityResult",
    "PruneReport",
    "RefineReport",
    "RefinedLayer",
    "SparsitySpec",
    "UnsupportedModelError",
    "WandaPruner",
    "compare_calibration",
    "dsnot_refine_mask",
    "expected_reconstruction_error",
    "find_decoder_blocks",
    "get_mask_refiner",
    "get_model_pruner",
    "model_sparsity",
    "perplexity",
    "prunable_layers",
    "resolve_sparsity",
]

_BASE = "dataprune.model_pruning.base"
_LAZY = {
    "MASK_REFINERS": _BASE,
    "MODEL_PRUNERS": _BASE,
    "LayerReport": _BASE,
    "ModelPruner": _BASE,
    "PruneReport": _BASE,
    "RefineReport": _BASE,
    "RefinedLayer": _BASE,
    "get_mask_refiner": _BASE,
    "get_model_pruner": _BASE,
    "model_sparsity": _BASE,
    "CalibrationComparison": "dataprune.model_pruning.compare",
    "compare_calibration": "dataprune.model_pruning.compare",
    "DSnoTConfig": "dataprune.model_pruning.dsnot",
    "DSnoTRefiner": "dataprune.model_pruning.dsnot",
    "dsnot_refine_mask": "dataprune.model_pruning.dsnot",
    "expected_reconstruction_error": "dataprune.model_pruning.dsnot",
    "FeatureMoments": "dataprune.model_pruning.activations",
    "InputMoments": "dataprune.model_pruning.activations",
    "LLMCompressorPruner": "dataprune.model_pruning.llmcompressor_adapter",
    "MagnitudePruner": "dataprune.model_pruning.magnitude",
    "SparsitySpec": "dataprune.model_pruning.patterns",
    "resolve_sparsity": "dataprune.model_pruning.patterns",
    "UnsupportedModelError": "dataprune.model_pruning.structure",
    "find_decoder_blocks": "dataprune.model_pruning.structure",
    "prunable_layers": "dataprune.model_pruning.structure",
    "WandaPruner": "dataprune.model_pruning.wanda",
}

_lazy_getattr, __dir__ = lazy_exports(__name__, _LAZY, __all__)

# bound eagerly (the module is light): the function shares its name with its submodule, and a
# later ``import dataprune.model_pruning.perplexity`` must not leave the module in its place
from dataprune.model_pruning.perplexity import PerplexityResult, perplexity  # noqa: E402


def __getattr__(name: str) -> Any:
    if name in ("MASK_REFINERS", "MODEL_PRUNERS"):
        from dataprune.model_pruning.base import load_builtins

        load_builtins()
    return _lazy_getattr(name)
