"""The ``prune`` template every model pruner shares: validate, prune, time, report.

A pruner derives from :class:`BaseModelPruner` and implements ``_prune(model, calibration, spec)``
returning a :class:`PruneRun` (the layers it pruned, those it left dense, where the blocks were,
the calibration it used). :meth:`BaseModelPruner.prune` wraps that in the wall and CPU timing and
builds the :class:`~dataprune.model_pruning.base.PruneReport`, the same way for every pruner.

:meth:`BaseModelPruner._calibrated_prune` is the calibration loop of the built-in pruners that
read activations: block by block (``sequential``) or one dense pass, statistics from forward
hooks, then ``prune_group`` on each block's layers. With a mask refinement (``refine="dsnot"``)
the hooks also keep each input feature's mean and variance, and :func:`mask_layers` refines each
layer's mask before applying it, so a block is refined before its outputs feed the next one.
"""

from __future__ import annotations

import functools
import logging
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from dataprune.calibration.calibration_set import as_calibration_set
from dataprune.errors import DataValidationError
from dataprune.estimator import BaseEstimator
from dataprune.model_pruning.activations import (
    ActivationNorms,
    InputMoments,
    capture_block_inputs,
    run_block,
)
from dataprune.model_pruning.base import (
    LayerReport,
    PruneReport,
    RefinedLayer,
    RefineReport,
    get_mask_refiner,
    model_sparsity,
)
from dataprune.model_pruning.masks import apply_mask, layer_mask
from dataprune.model_pruning.patterns import SparsitySpec, resolve_sparsity
from dataprune.model_pruning.structure import PrunableLayer, all_prunable_layers
from dataprune.progress import progress

logger = logging.getLogger(__name__)

__all__ = ["BaseModelPruner", "PruneRun", "layer_refiner", "mask_layers"]


@dataclass
class PruneRun:
    """What one pruner's ``_prune`` did (timing and the report are added by the template)."""

    layers: list[LayerReport]
    block_path: str
    skipped: list[dict[str, Any]] = field(default_factory=list)
    calibration: Any = None  # the CalibrationSet used, or None (data-free)
    refine: RefineReport | None = None  # what the mask refinement did, if one ran


def mask_layers(
    layers: Iterable[PrunableLayer],
    scores: Callable[[PrunableLayer], Any],
    spec: SparsitySpec,
    comparison: str,
    run: PruneRun,
    refine: Callable[[PrunableLayer, Any], Any] | None = None,
) -> None:
    """Prune every layer by ``scores(layer)`` (higher = keep), recording it in ``run``.

    A layer whose score is ``None`` (no calibration tokens reached it) or that cannot take the
    pattern is left dense and listed in ``run.skipped`` with the reason. ``refine(layer, mask)``,
    when given, returns the mask to apply instead (computed while the weights are still dense).
    """
    for layer in layers:
        s = scores(layer)
        if s is None:
            why = "received no calibration tokens"
            mask = None
        else:
            mask, why = layer_mask(layer, s, spec, comparison)
        if mask is None:
            run.skipped.append({"layer": layer.name, "reason": why})
            logger.warning("%s left dense: %s", layer.name, why)
            continue
        if refine is not None:
            mask = refine(layer, mask)
        run.layers.append(apply_mask(layer, mask))


def layer_refiner(
    refiner: Any, moments: InputMoments, spec: SparsitySpec, report: RefineReport
) -> Callable[[PrunableLayer, Any], Any]:
    """``refine(layer, mask)`` for :func:`mask_layers`: runs ``refiner`` on the layer's input
    statistics from ``moments``, timing it and recording a :class:`RefinedLayer` in ``report``.
    A layer the refiner's ``applies_to(name)`` (when it has one) rejects keeps its mask and is
    not recorded."""
    from dataprune.model_pruning.dsnot import expected_reconstruction_error

    applies = getattr(refiner, "applies_to", None)

    def refine(layer: PrunableLayer, mask: Any) -> Any:
        stats = moments.pop(layer.name)
        if applies is not None and not applies(layer.name):
            return mask  # a part the refinement skips (DSnoT's ``skip``): the pruner's mask
        if stats is None:
            logger.warning("%s: no calibration tokens, mask not refined", layer.name)
            return mask
        t0 = time.perf_counter()
        weight = layer.weight_matrix()
        new = refiner.refine(weight, mask, stats, spec)
        gram = stats.second_moment
        before = expected_reconstruction_error(weight, mask, stats.mean, stats.var, gram)
        after = expected_reconstruction_error(weight, new, stats.mean, stats.var, gram)
        changed = new.to(mask.device) != mask
        report.layers.append(
            RefinedLayer(
                name=layer.name,
                n_swaps=int(changed.sum()) // 2,
                rows_changed=int(changed.any(dim=1).sum()),
                abs_error_before=before["mean_abs_error"],
                abs_error_after=after["mean_abs_error"],
                sq_error_before=before["mean_sq_error"],
                sq_error_after=after["mean_sq_error"],
            )
        )
        report.time_s += time.perf_counter() - t0
        return new

    return refine


class BaseModelPruner(BaseEstimator):
    """Base class of the model pruners: subclasses implement :meth:`_prune`.

    Attributes
    ----------
    report_ : PruneReport
        Set by :meth:`prune`.
    """

    name = "pruner"

    def _validate(self) -> SparsitySpec:
        """Check the parameters; returns the sparsity target (before any work)."""
        return resolve_sparsity(self.sparsity, self.pattern)

    def _refiner(self) -> Any:
        """The mask refinement named by ``refine`` built from ``refine_config`` (or ``None``)."""
        name = getattr(self, "refine", None)
        config = getattr(self, "refine_config", None)
        if name is None:
            if config is not None:
                raise DataValidationError(
                    "refine_config is set but refine is None; name a refinement, e.g. "
                    "refine='dsnot'"
                )
            return None
        return get_mask_refiner(name, config)

    def _report_params(self) -> dict[str, Any]:
        """The parameters as recorded in the report (JSON-able settings)."""
        params = self.get_params()
        refiner = self._refiner() if "refine" in params else None
        if refiner is not None:
            params["refine_config"] = refiner.config.to_dict()
        return params

    def _calibrated_prune(
        self,
        model: Any,
        calibration: Any,
        spec: SparsitySpec,
        scores: Callable[[PrunableLayer, ActivationNorms], Any],
    ) -> PruneRun:
        """Collect input statistics for every prunable layer, then mask (and refine) it.

        Uses ``block_path``, ``ignore``, ``batch_size``, ``sequential``, ``comparison`` and
        ``show_progress_bar`` of the pruner. ``scores(layer, stats)`` is the layer's importance
        (``None``: leave it dense) from the :class:`ActivationNorms` of its block (of all blocks
        with ``sequential=False``), an :class:`InputMoments` when a refinement is set.
        """
        import torch

        refiner = self._refiner()
        calib = as_calibration_set(calibration)
        if refiner is not None and hasattr(refiner, "check_calibration"):
            refiner.check_calibration(len(calib.input_ids))  # before any work
        path, blocks, layers = all_prunable_layers(
            model, block_path=self.block_path, ignore=self.ignore
        )
        run = PruneRun(layers=[], block_path=path, calibration=calib)
        if refiner is not None:
            run.refine = RefineReport(refiner.name, refiner.config.to_dict())
        if refiner is None:
            stats_cls: Callable[[list[PrunableLayer]], Any] = ActivationNorms
        else:  # means and variances only for the layers the refinement touches
            stats_cls = functools.partial(
                InputMoments,
                moments_for=getattr(refiner, "applies_to", None),
                second_moment=bool(getattr(refiner, "needs_second_moment", False)),
                halves=bool(getattr(refiner, "needs_halves", False)),
            )
        batches = list(calib.batches(self.batch_size))

        def prune_group(group: list[PrunableLayer], stats: Any) -> None:
            refine = None if refiner is None else layer_refiner(refiner, stats, spec, run.refine)
            mask_layers(group, lambda lay: scores(lay, stats), spec, self.comparison, run, refine)

        bar = {"show_progress_bar": self.show_progress_bar}
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                if not self.sequential:
                    flat = [lay for block_layers in layers for lay in block_layers]
                    device = next(model.parameters()).device
                    with stats_cls(flat) as stats:
                        for batch in progress(batches, desc=f"{self.name}: calibrating", **bar):
                            stats.token_mask = batch["attention_mask"].bool()
                            model(
                                input_ids=batch["input_ids"].to(device),
                                attention_mask=batch["attention_mask"].to(device),
                                use_cache=False,
                            )
                    prune_group(flat, stats)
                    return run
                inputs = capture_block_inputs(model, blocks, batches)
                for i in progress(range(len(blocks)), desc=f"{self.name}: pruning blocks", **bar):
                    if layers[i]:
                        with stats_cls(layers[i]) as stats:
                            for b in range(len(batches)):
                                stats.token_mask = inputs.token_masks[b]
                                run_block(blocks[i], inputs, i, b)
                        prune_group(layers[i], stats)
                    if i < len(blocks) - 1:
                        for b in range(len(batches)):
                            inputs.hidden[b] = run_block(blocks[i], inputs, i, b)
        finally:
            model.train(was_training)
        return run

    @abstractmethod
    def _prune(self, model: Any, calibration: Any, spec: SparsitySpec) -> PruneRun:
        """Prune ``model`` in place."""

    def prune(self, model: Any, calibration: Any = None) -> PruneReport:
        """Prune ``model`` in place and report what was done.

        Parameters
        ----------
        model : transformers.PreTrainedModel
            A causal LM (any module whose forward takes ``input_ids`` / ``attention_mask``).
        calibration : CalibrationSet, tensor, mapping or list of tensors, optional
            Calibration samples (see :func:`dataprune.calibration.build_calibration_set`);
            ignored by data-free pruners.

        Returns
        -------
        PruneReport
        """
        t0, c0 = time.perf_counter(), time.process_time()
        spec = self._validate()
        run = self._prune(model, calibration, spec)
        calib = run.calibration
        report = PruneReport(
            method=self.name,
            params=self._report_params(),
            pattern=spec.pattern,
            target_sparsity=spec.sparsity,
            layers=run.layers,
            time_s=time.perf_counter() - t0,
            cpu_time_s=time.process_time() - c0,
            block_path=run.block_path,
            n_calibration_samples=None if calib is None else calib.n_samples,
            n_calibration_tokens=None if calib is None else calib.n_tokens,
            calibration=None if calib is None else (dict(calib.provenance) or None),
            skipped=run.skipped,
            model_sparsity=model_sparsity(model),
            refine=run.refine,
        )
        logger.info("%s", report.summary())
        self.report_ = report
        return report
