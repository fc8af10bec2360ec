"""Magnitude pruning: zero the smallest |W| in the linear layers of the decoder blocks (no data).

With ``refine="dsnot"`` the magnitude masks are refined with DSnoT from calibration data (which
is then required), block by block like Wanda.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from dataprune.errors import DataValidationError
from dataprune.model_pruning.base import MODEL_PRUNERS
from dataprune.model_pruning.masks import check_comparison
from dataprune.model_pruning.patterns import SparsitySpec, resolve_sparsity
from dataprune.model_pruning.pruner import BaseModelPruner, PruneRun, mask_layers
from dataprune.model_pruning.structure import DEFAULT_IGNORE, PrunableLayer, all_prunable_layers

logger = logging.getLogger(__name__)

__all__ = ["MagnitudePruner"]


def _magnitude(layer: PrunableLayer) -> Any:
    import torch

    return layer.weight_matrix().abs().to(torch.float32)


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
    refine : str, optional
        Mask refinement from calibration data after pruning each layer (``"dsnot"``); the
        pruner then needs calibration data. ``None`` (default): data-free.
    refine_config : mapping or config object, optional
        The refinement's parameters (its defaults when omitted).
    sequential : bool, default=True
        With ``refine``: collect each block's statistics on the outputs of the already pruned
        and refined previous blocks (``False``: one pass of the dense model).
    batch_size : int, default=8
        With ``refine``: calibration samples per forward pass.
    show_progress_bar : bool, optional
        With ``refine``; ``None`` follows the log level.

    Attributes
    ----------
    report_ : PruneReport
        Set by :meth:`prune`.
    """

    name = "magnitude"

    def __init__(
        self,
        *,
        sparsity: float | None = None,
        pattern: str | None = None,
        comparison: str = "layer",
        block_path: str | None = None,
        ignore: Sequence[str] = DEFAULT_IGNORE,
        refine: str | None = None,
        refine_config: Mapping[str, Any] | Any | None = None,
        sequential: bool = True,
        batch_size: int = 8,
        show_progress_bar: bool | None = None,
    ) -> None:
        self.sparsity = sparsity
        self.pattern = pattern
        self.comparison = comparison
        self.block_path = block_path
        self.ignore = ignore
        self.refine = refine
        self.refine_config = refine_config
        self.sequential = sequential
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar

    @property
    def requires_calibration(self) -> bool:
        """Only with a mask refinement."""
        return self.refine is not None

    def _validate(self) -> SparsitySpec:
        spec = resolve_sparsity(self.sparsity, self.pattern)
        check_comparison(self.comparison)
        if self._refiner() is not None and (
            isinstance(self.batch_size, bool)
            or not isinstance(self.batch_size, int)
            or self.batch_size < 1
        ):
            raise DataValidationError(
                f"batch_size must be an integer >= 1, got {self.batch_size!r}"
            )
        return spec

    def _prune(self, model: Any, calibration: Any, spec: SparsitySpec) -> PruneRun:
        """Prune ``model`` in place (``calibration`` is ignored unless ``refine`` is set)."""
        import torch

        if self.refine is not None:
            if calibration is None:
                raise DataValidationError(
                    f"MagnitudePruner(refine={self.refine!r}) needs calibration data: the "
                    "refinement reads each layer's inputs; build one with "
                    "dataprune.calibration.build_calibration_set(texts, tokenizer, ...)"
                )
            return self._calibrated_prune(
                model, calibration, spec, lambda layer, stats: _magnitude(layer)
            )
        path, _, layers = all_prunable_layers(model, block_path=self.block_path, ignore=self.ignore)
        run = PruneRun(layers=[], block_path=path)
        with torch.no_grad():
            mask_layers(
                (lay for block in layers for lay in block), _magnitude, spec, self.comparison, run
            )
        return run


MODEL_PRUNERS.register("magnitude", MagnitudePruner)
