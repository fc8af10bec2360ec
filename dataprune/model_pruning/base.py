"""The ``ModelPruner`` protocol, the registries of pruners and of mask refinements, and the
``PruneReport`` every pruner returns."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from dataprune.atomic import atomic_write_json
from dataprune.registry import Registry

logger = logging.getLogger(__name__)

__all__ = [
    "MASK_REFINERS",
    "MODEL_PRUNERS",
    "LayerReport",
    "ModelPruner",
    "PruneReport",
    "RefineReport",
    "RefinedLayer",
    "get_mask_refiner",
    "get_model_pruner",
    "load_builtins",
    "model_sparsity",
]


@dataclass
class LayerReport:
    """Sparsity of one pruned weight matrix.

    Attributes
    ----------
    name : str
        Module name (``model.layers.0.self_attn.q_proj``).
    shape : tuple of int
        (out_features, in_features).
    n_params : int
    n_zeros : int
        Zero weights after pruning (including any that were zero before).
    """

    name: str
    shape: tuple[int, int]
    n_params: int
    n_zeros: int

    @property
    def sparsity(self) -> float:
        return self.n_zeros / self.n_params if self.n_params else 0.0


@dataclass
class RefinedLayer:
    """What a mask refinement did to one layer (errors from the calibration statistics).

    Attributes
    ----------
    name : str
        Module name.
    n_swaps : int
        Weights revived (as many others were pruned in their place).
    rows_changed : int
        Output rows whose mask changed.
    abs_error_before, abs_error_after : float
        Mean over output rows of the absolute expected output error per token,
        ``|sum_j d_rj E[x_j]|`` with ``d`` the pruned weights (DSnoT's objective).
    sq_error_before, sq_error_after : float
        Mean over output rows of the expected squared output error per token,
        ``(d_r . E[x])^2 + sum_j d_rj^2 Var(x_j)`` (input features treated as uncorrelated), or,
        when the refinement collected the inputs' second moments (``objective="mse_full"``),
        exactly ``d_r^T E[x x^T] d_r`` over the calibration tokens.
    """

    name: str
    n_swaps: int
    rows_changed: int
    abs_error_before: float
    abs_error_after: float
    sq_error_before: float
    sq_error_after: float


@dataclass
class RefineReport:
    """What the mask refinement of a pruning run did.

    Attributes
    ----------
    method : str
        Registry name of the refinement (``"dsnot"``).
    config : dict
        Its parameters.
    layers : list of RefinedLayer
        Every refined layer, in model order.
    time_s : float
        Wall-clock seconds spent refining (statistics passes excluded); the rest of
        :attr:`PruneReport.time_s` is pruning and calibration.
    """

    method: str
    config: dict[str, Any]
    layers: list[RefinedLayer] = field(default_factory=list)
    time_s: float = 0.0

    @property
    def n_swaps(self) -> int:
        return sum(lr.n_swaps for lr in self.layers)

    def summary(self) -> str:
        """One line: swaps, layers, change of the expected squared error, time."""
        before = sum(lr.sq_error_before for lr in self.layers)
        after = sum(lr.sq_error_after for lr in self.layers)
        change = f", expected squared error {100 * (after / before - 1):+.2f}%" if before else ""
        return (
            f"{self.method} refinement: {self.n_swaps:,} swaps in {len(self.layers)} layers"
            f"{change} in {self.time_s:.2f} s"
        )


@dataclass
class PruneReport:
    """What a model pruner did.

    Attributes
    ----------
    method : str
        Registry name of the pruner (``"wanda"``, ``"magnitude"``, ...).
    params : dict
        The pruner's parameters.
    pattern : str
        ``"unstructured"`` or ``"N:M"``.
    target_sparsity : float
        Requested fraction of zeros in the pruned layers.
    layers : list of LayerReport
        Every pruned layer, in model order.
    time_s : float
        Wall-clock seconds of the whole ``prune`` call (calibration passes included).
    cpu_time_s : float
        CPU seconds used by this process during the call (all threads); steadier than the wall
        time on a shared machine.
    block_path : str
        Where the decoder blocks were found.
    n_calibration_samples, n_calibration_tokens : int or None
        Calibration data seen (``None`` for data-free pruners).
    calibration : dict or None
        Provenance of the calibration set (selector, parameters, source hash).
    skipped : list of dict
        Layers left dense, with the reason.
    model_sparsity : float
        Zeros over all parameters of the model (embeddings and norms included).
    refine : RefineReport or None
        What the mask refinement did (``None`` without one); its ``time_s`` is part of
        ``time_s``.
    """

    method: str
    params: dict[str, Any]
    pattern: str
    target_sparsity: float
    layers: list[LayerReport]
    time_s: float
    block_path: str = ""
    n_calibration_samples: int | None = None
    n_calibration_tokens: int | None = None
    calibration: dict[str, Any] | None = None
    skipped: list[dict[str, Any]] = field(default_factory=list)
    model_sparsity: float = 0.0
    cpu_time_s: float = 0.0
    refine: RefineReport | None = None

    @property
    def n_params(self) -> int:
        """Weights in the pruned layers."""
        return sum(lr.n_params for lr in self.layers)

    @property
    def n_zeros(self) -> int:
        return sum(lr.n_zeros for lr in self.layers)

    @property
    def total_sparsity(self) -> float:
        """Zeros over all weights of the pruned layers."""
        return self.n_zeros / self.n_params if self.n_params else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dictionary (per-layer sparsity included)."""
        d = asdict(self)
        d["layers"] = [
            {**asdict(lr), "shape": list(lr.shape), "sparsity": round(lr.sparsity, 6)}
            for lr in self.layers
        ]
        d.update(
            n_layers=len(self.layers),
            n_params=self.n_params,
            n_zeros=self.n_zeros,
            total_sparsity=round(self.total_sparsity, 6),
            model_sparsity=round(self.model_sparsity, 6),
            time_s=round(self.time_s, 3),
            cpu_time_s=round(self.cpu_time_s, 3),
        )
        if self.refine is not None:
            d["refine"].update(
                n_swaps=self.refine.n_swaps,
                time_s=round(self.refine.time_s, 3),
                prune_time_s=round(self.time_s - self.refine.time_s, 3),
            )
        return d

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_dict` as JSON (atomically)."""
        atomic_write_json(path, self.to_dict())

    def summary(self) -> str:
        """One line: method, pattern, sparsity reached, layers, time."""
        calib = (
            f", {self.n_calibration_samples} calibration samples / {self.n_calibration_tokens} tokens"
            if self.n_calibration_samples
            else ""
        )
        skipped = f", {len(self.skipped)} layers left dense" if self.skipped else ""
        refine = f"; {self.refine.summary()}" if self.refine is not None else ""
        return (
            f"{self.method} {self.pattern}: {100 * self.total_sparsity:.2f}% zeros in "
            f"{len(self.layers)} layers ({self.n_params:,} weights; {100 * self.model_sparsity:.2f}% "
            f"of all parameters){calib}{skipped} in {self.time_s:.1f} s "
            f"({self.cpu_time_s:.1f} CPU-s){refine}"
        )

    def to_markdown(self) -> str:
        """Per-layer table in markdown."""
        lines = ["| layer | shape | sparsity |", "|---|---|---:|"]
        for lr in self.layers:
            lines.append(f"| {lr.name} | {lr.shape[0]}x{lr.shape[1]} | {lr.sparsity:.4f} |")
        lines.append(f"| **total** | {self.n_params:,} weights | {self.total_sparsity:.4f} |")
        return "\n".join(lines)


@runtime_checkable
class ModelPruner(Protocol):
    """Anything that prunes a model in place from an optional calibration set.

    ``requires_calibration`` tells callers whether ``calibration`` may be ``None``.
    """

    requires_calibration: bool

    def prune(self, model: Any, calibration: Any = None) -> PruneReport:
        """Prune ``model`` in place and describe what was done."""
        ...


MODEL_PRUNERS: Registry[Callable[..., ModelPruner]] = Registry("model pruner")

#: Mask refinements a pruner can run after pruning each layer (``refine="dsnot"``). An entry is
#: a class built from its config (a mapping or the config object) with a
#: ``refine(weight, mask, moments, spec)`` method returning the refined mask, and optionally an
#: ``applies_to(layer_name) -> bool`` method (layers it rejects keep the pruner's mask).
MASK_REFINERS: Registry[Callable[..., Any]] = Registry("mask refinement")


def load_builtins() -> None:
    """Import the modules that register the built-in pruners and refinements."""
    import importlib

    for module in ("dsnot", "llmcompressor_adapter", "magnitude", "wanda"):
        importlib.import_module(f"dataprune.model_pruning.{module}")


def get_model_pruner(name: str, **params: Any) -> ModelPruner:
    """Build a registered pruner by name (``"wanda"``, ``"magnitude"``, ``"llmcompressor-wanda"``,
    ``"llmcompressor-sparsegpt"``) with keyword parameters."""
    load_builtins()
    return MODEL_PRUNERS.get(name)(**params)


def get_mask_refiner(name: str, config: Any = None) -> Any:
    """Build a registered mask refinement (``"dsnot"``) from its config (mapping or object).

    Raises
    ------
    UnknownOptionError
        For an unknown name (the message lists the valid ones).
    DataValidationError
        For a bad config value (the message names the field).
    """
    import dataprune.model_pruning.dsnot  # noqa: F401  (registers the built-in refinements)

    return MASK_REFINERS.get(name)(config)


def model_sparsity(model: Any) -> float:
    """Zeros over all parameters of ``model``."""
    total = zeros = 0
    for p in model.parameters():
        total += p.numel()
        zeros += int((p.detach() == 0).sum())
    return zeros / total if total else 0.0
