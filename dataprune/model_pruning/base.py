"""The ``ModelPruner`` protocol, its registry, and the ``PruneReport`` every pruner returns."""

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
    "MODEL_PRUNERS",
    "LayerReport",
    "ModelPruner",
    "PruneReport",
    "get_model_pruner",
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
        return (
            f"{self.method} {self.pattern}: {100 * self.total_sparsity:.2f}% zeros in "
            f"{len(self.layers)} layers ({self.n_params:,} weights; {100 * self.model_sparsity:.2f}% "
            f"of all parameters){calib}{skipped} in {self.time_s:.1f} s "
            f"({self.cpu_time_s:.1f} CPU-s)"
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


def get_model_pruner(name: str, **params: Any) -> ModelPruner:
    """Build a registered pruner by name (``"wanda"``, ``"magnitude"``, ``"llmcompressor-wanda"``,
    ``"llmcompressor-sparsegpt"``) with keyword parameters."""
    import dataprune.model_pruning  # noqa: F401  (registers the built-ins)

    return MODEL_PRUNERS.get(name)(**params)


def model_sparsity(model: Any) -> float:
    """Zeros over all parameters of ``model``."""
    total = zeros = 0
    for p in model.parameters():
        total += p.numel()
        zeros += int((p.detach() == 0).sum())
    return zeros / total if total else 0.0
