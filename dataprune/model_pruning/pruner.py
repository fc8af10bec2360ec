"""The ``prune`` template every model pruner shares: validate, prune, time, report.

A pruner derives from :class:`BaseModelPruner` and implements ``_prune(model, calibration, spec)``
returning a :class:`PruneRun` (the layers it pruned, those it left dense, where the blocks were,
the calibration it used). :meth:`BaseModelPruner.prune` wraps that in the wall and CPU timing and
builds the :class:`~dataprune.model_pruning.base.PruneReport`, the same way for every pruner.
"""

from __future__ import annotations

import logging
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from dataprune.estimator import BaseEstimator
from dataprune.model_pruning.base import LayerReport, PruneReport, model_sparsity
from dataprune.model_pruning.masks import apply_mask, layer_mask
from dataprune.model_pruning.patterns import SparsitySpec, resolve_sparsity
from dataprune.model_pruning.structure import PrunableLayer

logger = logging.getLogger(__name__)

__all__ = ["BaseModelPruner", "PruneRun", "mask_layers"]


@dataclass
class PruneRun:
    """What one pruner's ``_prune`` did (timing and the report are added by the template)."""

    layers: list[LayerReport]
    block_path: str
    skipped: list[dict[str, Any]] = field(default_factory=list)
    calibration: Any = None  # the CalibrationSet used, or None (data-free)


def mask_layers(
    layers: Iterable[PrunableLayer],
    scores: Callable[[PrunableLayer], Any],
    spec: SparsitySpec,
    comparison: str,
    run: PruneRun,
) -> None:
    """Prune every layer by ``scores(layer)`` (higher = keep), recording it in ``run``.

    A layer whose score is ``None`` (no calibration tokens reached it) or that cannot take the
    pattern is left dense and listed in ``run.skipped`` with the reason.
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
        run.layers.append(apply_mask(layer, mask))


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

    def _report_params(self) -> dict[str, Any]:
        """The parameters as recorded in the report (JSON-able settings)."""
        return self.get_params()

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
        )
        logger.info("%s", report.summary())
        self.report_ = report
        return report
