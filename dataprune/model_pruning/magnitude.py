"""Magnitude pruning: zero the smallest |W| in the linear layers of the decoder blocks (no data)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from dataprune.model_pruning.base import MODEL_PRUNERS
from dataprune.model_pruning.masks import check_comparison
from dataprune.model_pruning.patterns import SparsitySpec, resolve_sparsity
from dataprune.model_pruning.pruner import BaseModelPruner, PruneRun, mask_layers
from dataprune.model_pruning.structure import DEFAULT_IGNORE, all_prunable_layers

logger = logging.getLogger(__name__)

__all__ = ["MagnitudePruner"]


class MagnitudePruner(BaseModelPruner):
    """Data-free baseline: importance ``|W_ij|``.

    Parameters
    ----------
    sparsity : float, optional
        Fraction of weights to zero, in (0, 1). Implied by ``pattern``.
    pattern : str, optional
        ``"unstructured"`` (default) or ``"N:M"`` such as ``"2:4"``.
    comparison : {"layer", "row"}, default="layer"
        Comparison group for unstructured sparsity: the whole weight matrix (the magnitude
        baseline of the Wanda and SparseGPT papers) or each output row.
    block_path : str, optional
        Dotted path of the decoder block list; found automatically when omitted.
    ignore : sequence of str, default=DEFAULT_IGNORE
        Regexes of layer names to leave dense.

    Attributes
    ----------
    report_ : PruneReport
        Set by :meth:`prune`.
    """

    name = "magnitude"
    requires_calibration = False

    def __init__(
        self,
        *,
        sparsity: float | None = None,
        pattern: str | None = None,
        comparison: str = "layer",
        block_path: str | None = None,
        ignore: Sequence[str] = DEFAULT_IGNORE,
    ) -> None:
        self.sparsity = sparsity
        self.pattern = pattern
        self.comparison = comparison
        self.block_path = block_path
        self.ignore = ignore

    def _validate(self) -> SparsitySpec:
        spec = resolve_sparsity(self.sparsity, self.pattern)
        check_comparison(self.comparison)
        return spec

    def _prune(self, model: Any, calibration: Any, spec: SparsitySpec) -> PruneRun:
        """Prune ``model`` in place (``calibration`` is ignored)."""
        import torch

        path, _, layers = all_prunable_layers(model, block_path=self.block_path, ignore=self.ignore)
        run = PruneRun(layers=[], block_path=path)
        with torch.no_grad():
            mask_layers(
                (lay for block in layers for lay in block),
                lambda layer: layer.weight_matrix().abs().to(torch.float32),
                spec,
                self.comparison,
                run,
            )
        return run


MODEL_PRUNERS.register("magnitude", MagnitudePruner)
