"""Configuration of the AGP pruner (network shape and Stage II training)."""

from __future__ import annotations

from dataclasses import dataclass

from dataprune.config import ConfigMixin
from dataprune.errors import DataValidationError, UnknownOptionError

__all__ = ["AGPConfig"]


@dataclass
class AGPConfig(ConfigMixin):
    """Hyper-parameters of :class:`~dataprune.agents.agp.AGPPruner`.

    Network
    -------
    hidden_dim : int, default=64
        Width of the GCN layers.
    n_layers : int, default=2
        GCN layers (AGP uses 2).
    dropout : float, default=0.1
        Dropout between GCN layers.
    learn_agent_embeddings : bool, default=True
        A learned vector per pool position added to the profile features (AGP's pool is fixed;
        this lets the model tell apart agents whose profiles are similar or unknown).
    pair_bias : bool, default=True
        A learned bias per edge (i, j) in the edge head.

    Stage II training (AGP section 3.3)
    -----------------------------------
    edge_loss : {"bce", "mse"}, default="bce"
        Against the (soft) edge labels ``edge_weight``.
    edge_loss_weight, node_loss_weight : float, default=1.0
        Weights of the edge and node losses.
    sparsity_weight : float, default=0.05
        Weight of the mean edge keep-probability (pushes towards fewer messages).
    consistency_weight : float, default=0.01
        Weight of ``mean(p_ij * (1 - n_i * n_j))``: an edge should only be kept when both of its
        agents are.
    learning_rate : float, default=0.01
        Adam learning rate.
    weight_decay : float, default=1e-4
        Adam weight decay.
    batch_size : int, default=10
        Records per optimiser step.
    epochs : int, default=40
        Passes over the training records.
    max_steps : int, optional
        Stop after this many optimiser steps (AGP reports ~10 steps already help).
    init_from_prior : bool, default=False
        Add a per-agent node bias and initialise it and the pair biases to the logit of the
        training labels' per-position means, so training starts from the per-position majority
        and learns query-dependent deviations. With ``validation_fraction`` this keeps AGP from
        falling below the majority baseline on small, weakly query-dependent record sets (AGP's
        released files, see benchmarks/RESULTS.md); on query-dependent data (the simulator) the
        plain default adapts more.
    validation_fraction : float, default=0.0
        Records held out for early stopping (used when at least 40 records); the weights of the
        epoch with the lowest validation loss are kept. 0 disables it. Validation loss on noisy
        mined labels can stop before the query-dependent structure is learned.
    patience : int, default=8
        Epochs without validation improvement before stopping.
    encoder : str, optional
        Sentence encoder name/path for queries and profiles (default all-MiniLM-L6-v2).
    """

    hidden_dim: int = 64
    n_layers: int = 2
    dropout: float = 0.1
    learn_agent_embeddings: bool = True
    pair_bias: bool = True
    edge_loss: str = "bce"
    edge_loss_weight: float = 1.0
    node_loss_weight: float = 1.0
    sparsity_weight: float = 0.05
    consistency_weight: float = 0.01
    learning_rate: float = 0.01
    weight_decay: float = 1e-4
    batch_size: int = 10
    epochs: int = 40
    max_steps: int | None = None
    init_from_prior: bool = False
    validation_fraction: float = 0.0
    patience: int = 8
    encoder: str | None = None

    def __post_init__(self) -> None:
        if self.edge_loss not in ("bce", "mse"):
            raise UnknownOptionError(f"unknown edge_loss {self.edge_loss!r}; valid: bce, mse")
        for nm in ("hidden_dim", "n_layers", "batch_size", "epochs"):
            v = getattr(self, nm)
            if not isinstance(v, int) or v < 1:
                raise DataValidationError(f"AGPConfig.{nm} must be an int >= 1, got {v!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise DataValidationError(f"AGPConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.max_steps is not None and self.max_steps < 1:
            raise DataValidationError(f"AGPConfig.max_steps must be >= 1, got {self.max_steps}")
        if not 0.0 <= self.validation_fraction < 0.5:
            raise DataValidationError(
                f"AGPConfig.validation_fraction must be in [0, 0.5), got {self.validation_fraction}"
            )
        if self.learning_rate <= 0:
            raise DataValidationError("AGPConfig.learning_rate must be > 0")
