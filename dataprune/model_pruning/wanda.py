"""Wanda (Sun et al., ICLR 2024): prune by |weight| x input-activation norm, no retraining.

For every linear layer inside the decoder blocks the importance of weight ``W_ij`` is
``|W_ij| * ||X_j||_2``, where ``X_j`` is input feature ``j`` over all calibration tokens; the lowest
scores are zeroed within each output row (unstructured) or within each group of M consecutive
weights of a row (N:M, e.g. 2:4). Embeddings and the LM head are never touched.

With ``sequential=True`` (the reference implementation's and llm-compressor's behaviour) the blocks
are processed one at a time: block ``i`` is calibrated on the outputs of the already-pruned blocks
``0..i-1``, pruned, and its pruned outputs become the next block's inputs. With
``sequential=False`` one forward pass of the dense model calibrates every layer at once (faster;
activations then come from the dense model).

Activation norms and scores are computed in float32 whatever the model dtype; forward passes run
in the model's dtype (bf16 is fine on CPUs with AMX / avx512_bf16).

``refine="dsnot"`` refines every layer's mask with DSnoT (:mod:`dataprune.model_pruning.dsnot`)
from the same calibration pass before it is applied (same sparsity and N:M pattern).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from dataprune.errors import DataValidationError
from dataprune.model_pruning.activations import ActivationNorms
from dataprune.model_pruning.base import MODEL_PRUNERS
from dataprune.model_pruning.masks import check_comparison, wanda_scores
from dataprune.model_pruning.patterns import SparsitySpec, resolve_sparsity
from dataprune.model_pruning.pruner import BaseModelPruner, PruneRun
from dataprune.model_pruning.structure import DEFAULT_IGNORE, PrunableLayer

logger = logging.getLogger(__name__)

__all__ = ["WandaPruner"]


class WandaPruner(BaseModelPruner):
    """Wanda pruning of a Hugging Face causal LM, in pure torch (CPU or any device).

    Parameters
    ----------
    sparsity : float, optional
        Fraction of weights to zero in every pruned layer, in (0, 1). Implied by ``pattern``.
    pattern : str, optional
        ``"unstructured"`` (default) or ``"N:M"`` (at most N non-zeros in every M consecutive
        weights of a row; ``"2:4"`` is the hardware-accelerated pattern).
    sequential : bool, default=True
        Calibrate each block on the outputs of the already-pruned previous blocks.
    batch_size : int, default=8
        Calibration samples per forward pass.
    comparison : {"row", "layer"}, default="row"
        Comparison group for unstructured sparsity (Wanda's per-output row is the paper's choice).
    block_path : str, optional
        Dotted path of the decoder block list; found automatically when omitted.
    ignore : sequence of str, default=DEFAULT_IGNORE
        Regexes of layer names to leave dense (MoE routers by default).
    show_progress_bar : bool, optional
        ``None`` follows the log level.
    refine : str, optional
        Mask refinement run on every layer after pruning, from the same calibration data
        (``"dsnot"``; names from ``MASK_REFINERS``). ``None`` (default): plain Wanda.
    refine_config : mapping or config object, optional
        The refinement's parameters (for DSnoT a :class:`~dataprune.model_pruning.DSnoTConfig`
        or a mapping of its fields); its defaults when omitted.

    Attributes
    ----------
    report_ : PruneReport
        Set by :meth:`prune`.
    """

    name = "wanda"
    requires_calibration = True

    def __init__(
        self,
        *,
        sparsity: float | None = None,
        pattern: str | None = None,
        sequential: bool = True,
        batch_size: int = 8,
        comparison: str = "row",
        block_path: str | None = None,
        ignore: Sequence[str] = DEFAULT_IGNORE,
        show_progress_bar: bool | None = None,
        refine: str | None = None,
        refine_config: Mapping[str, Any] | Any | None = None,
    ) -> None:
        self.sparsity = sparsity
        self.pattern = pattern
        self.sequential = sequential
        self.batch_size = batch_size
        self.comparison = comparison
        self.block_path = block_path
        self.ignore = ignore
        self.show_progress_bar = show_progress_bar
        self.refine = refine
        self.refine_config = refine_config

    def _validate(self) -> SparsitySpec:
        spec = resolve_sparsity(self.sparsity, self.pattern)
        check_comparison(self.comparison)
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int):
            raise DataValidationError(f"batch_size must be an integer, got {self.batch_size!r}")
        if self.batch_size < 1:
            raise DataValidationError(f"batch_size must be >= 1, got {self.batch_size}")
        self._refiner()  # an unknown name or a bad config fails before any work
        return spec

    def _prune(self, model: Any, calibration: Any, spec: SparsitySpec) -> PruneRun:
        """Prune ``model`` in place from ``calibration`` (see :meth:`BaseModelPruner.prune`)."""
        return self._calibrated_prune(model, calibration, spec, _wanda_scores)


def _wanda_scores(layer: PrunableLayer, norms: ActivationNorms) -> Any:
    if layer.name not in norms.sq_norms:
        return None  # no calibration token reached it: left dense
    return wanda_scores(layer.weight_matrix(), norms.sq_norms.pop(layer.name))


MODEL_PRUNERS.register("wanda", WandaPruner)
