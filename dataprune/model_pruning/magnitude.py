"""Magnitude pruning: zero the smallest |W| in the linear layers of the decoder blocks (no data)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from dataprune.estimator import BaseEstimator
from dataprune.model_pruning.base import MODEL_PRUNERS, LayerReport, PruneReport, model_sparsity
from dataprune.model_pruning.masks import apply_mask, check_comparison, layer_mask
from dataprune.model_pruning.patterns import resolve_sparsity
from dataprune.model_pruning.structure import DEFAULT_IGNORE, all_prunable_layers

logger = logging.getLogger(__name__)

__all__ = ["MagnitudePruner"]


class MagnitudePruner(BaseEstimator):
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

    def prune(self, model: Any, calibration: Any = None) -> PruneReport:
        """Prune ``model`` in place (``calibration`` is ignored)."""
        import torch

        t0, c0 = time.perf_counter(), time.process_time()
        spec = resolve_sparsity(self.sparsity, self.pattern)
        check_comparison(self.comparison)
        path, _, layers = all_prunable_layers(model, block_path=self.block_path, ignore=self.ignore)
        reports: list[LayerReport] = []
        skipped: list[dict[str, Any]] = []
        with torch.no_grad():
            for layer in (lay for block in layers for lay in block):
                scores = layer.weight_matrix().abs().to(torch.float32)
                mask, why = layer_mask(layer, scores, spec, self.comparison)
                if mask is None:
                    skipped.append({"layer": layer.name, "reason": why})
                    logger.warning("%s left dense: %s", layer.name, why)
                    continue
                reports.append(apply_mask(layer, mask))
        report = PruneReport(
            method=self.name,
            params=self.get_params(),
            pattern=spec.pattern,
            target_sparsity=spec.sparsity,
            layers=reports,
            time_s=time.perf_counter() - t0,
            cpu_time_s=time.process_time() - c0,
            block_path=path,
            skipped=skipped,
            model_sparsity=model_sparsity(model),
        )
        logger.info("%s", report.summary())
        self.report_ = report
        return report


MODEL_PRUNERS.register("magnitude", MagnitudePruner)
