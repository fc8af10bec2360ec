"""Configuration of the proxy classifier trained on cached embeddings to score records."""

from __future__ import annotations

from dataclasses import dataclass

from dataprune.config import ConfigMixin
from dataprune.errors import DataValidationError

__all__ = ["ProxyConfig"]


@dataclass(frozen=True)
class ProxyConfig(ConfigMixin):
    """A small classification head trained for a few epochs on fixed embeddings.

    Attributes
    ----------
    model : {"logistic", "mlp"}, default="logistic"
        Softmax regression, or one hidden ReLU layer of ``hidden_size`` units.
    hidden_size : int, default=256
        Hidden units of the MLP.
    epochs : int, default=5
        Passes over the data per run. EL2N is meant to be read early in training (Paul et al.
        score after ~10% of training); a few epochs is the analogue for a linear head.
    min_steps : int, default=100
        Lower bound on optimiser steps: small datasets get more epochs so the head is not left
        at its initialisation (``epochs`` is raised to ``ceil(min_steps / batches_per_epoch)``).
    batch_size : int, default=128
    lr : float, default=0.01
        Adam learning rate.
    weight_decay : float, default=0.0
    standardize : bool, default=True
        Scale features to zero mean / unit variance (statistics of the data being scored) before
        training; normalised sentence embeddings have tiny per-dimension variance.
    """

    model: str = "logistic"
    hidden_size: int = 256
    epochs: int = 5
    min_steps: int = 100
    batch_size: int = 128
    lr: float = 0.01
    weight_decay: float = 0.0
    standardize: bool = True

    def __post_init__(self) -> None:
        if self.model not in ("logistic", "mlp"):
            raise DataValidationError(
                f"proxy model must be 'logistic' or 'mlp', got {self.model!r}"
            )
        for name in ("hidden_size", "epochs", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise DataValidationError(f"proxy {name} must be a positive integer, got {v!r}")
        for name in ("min_steps",):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise DataValidationError(f"proxy {name} must be an integer >= 0, got {v!r}")
        if not self.lr > 0:
            raise DataValidationError(f"proxy lr must be > 0, got {self.lr!r}")
        if self.weight_decay < 0:
            raise DataValidationError(f"proxy weight_decay must be >= 0, got {self.weight_decay!r}")
