"""DSnoT's parameters: :class:`DSnoTConfig` and the names its string options accept."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from dataprune.config import ConfigMixin
from dataprune.errors import DataValidationError
from dataprune.model_pruning.structure import LAYER_PARTS

__all__ = ["OBJECTIVES", "SKIPS", "DSnoTConfig"]

#: What a swap must lower (see :attr:`DSnoTConfig.objective`).
OBJECTIVES = ("mse", "mse_full", "mean")
#: Which part of every decoder block keeps its pruner's mask (see :attr:`DSnoTConfig.skip`).
SKIPS = ("none", *LAYER_PARTS)


@dataclass(frozen=True)
class DSnoTConfig(ConfigMixin):
    """Parameters of the DSnoT mask refinement (the paper's defaults, but for ``max_cycles``,
    ``objective``, ``skip`` and ``agree_halves``).

    Parameters
    ----------
    max_cycles : int, default=5
        Prune-and-grow cycles at most (one swap per row per cycle). The paper uses 50; 5 was
        chosen on the development slices of ``benchmarks/model_pruning.py`` (SmolLM2-135M, Wanda
        at 60%, 7 calibration recipes x 3 seeds, MLP layers refined): 5 cycles lowered the
        perplexity in 57 of 63 (recipe, seed, set) pairs, 10 cycles in 52 (in two runs), 50
        cycles in 48. Each swap fits the calibration set's estimate of every input's mean and
        variance; with a small set (there: 32 x 256 tokens) fewer swaps follow less of its noise.
    update_threshold : float, default=0.1
        A row stops once its absolute expected output error is at most this. As in the
        reference implementation the error is summed over the tokens of a calibration sequence.
    variance_power : float, default=1.0
        Exponent of the input variance that divides a pruned weight's expected gain when ranking
        the growth candidates (0 ignores the variance).
    objective : {"mse", "mse_full", "mean"}, default="mse"
        The error a swap must lower for its row to go on. ``"mse"``: the expected squared output
        error per token, ``E[error]^2 + sum_j d_j^2 Var(x_j)`` (input features treated as
        uncorrelated), so that a swap trading a smaller mean for more variance is not made.
        ``"mse_full"``: the squared output error per token over the calibration tokens exactly,
        ``d^T E[x x^T] d`` (correlated inputs included; the statistics pass then also sums
        ``x x^T``, in_features squared floats per refined layer).
        ``"mean"``: the absolute expected error alone (DSnoT's objective; the variance then only
        ranks the growth candidates). The candidates are the same in every case.
    keep_sign : bool, default=False
        Also stop a row when a swap would flip the sign of its expected error. This is the
        paper's rule and the reference's N:M behaviour; its unstructured default leaves it off.
    skip : {"none", "mlp", "attention"}, default="attention"
        Layers whose mask stays as the pruner made it: "attention" skips the attention
        projections, so only the MLP layers are refined; "mlp" skips the MLP layers; "none"
        refines every layer (a module name with a part containing attn or attention is attention,
        any other linear layer is MLP; see ``structure.layer_part``). The default was chosen on
        the development slices of ``benchmarks/model_pruning.py`` (SmolLM2-135M, Wanda at 60%,
        50 cycles; ``benchmarks/results/model_pruning_dsnot.md``):
        refining only the MLP layers lowered the perplexity in 46 of 63 (recipe, seed, set)
        pairs, every layer in 30 of 63; with random calibration 7 of 9 against 4 of 9 for only
        attention, which is the reference implementation's default (its ``--skip_layer mlp``).
    agree_halves : bool, default=True
        Also require every swap to lower the objective on each half of the calibration
        sequences (even- and odd-numbered) on its own, not only on all of them: a swap that one
        half supports and the other contradicts follows that half's sampling noise, and the row
        stops there. The statistics pass then keeps each half's means and variances as well
        (and second-moment matrices with ``objective="mse_full"``). Needs at least two
        calibration sequences. Chosen on the development slices of
        ``benchmarks/model_pruning.py`` (SmolLM2-135M, Wanda at 60%, 7 calibration recipes x 3
        seeds, 5 cycles; ``benchmarks/results/model_pruning_dsnot_halves.md``): with it 59 of 63
        (recipe, seed, set) pairs got a lower perplexity than plain Wanda, without it 54 of 63
        (with it and 10 cycles 58 of 63).
    """

    max_cycles: int = 5
    update_threshold: float = 0.1
    variance_power: float = 1.0
    objective: str = "mse"
    keep_sign: bool = False
    skip: str = "attention"
    agree_halves: bool = True

    def __post_init__(self) -> None:
        v = self.max_cycles
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise DataValidationError(f"DSnoT max_cycles must be an integer >= 1, got {v!r}")
        for name in ("update_threshold", "variance_power"):
            x = getattr(self, name)
            if (
                isinstance(x, bool)
                or not isinstance(x, numbers.Real)
                or not math.isfinite(float(x))
                or x < 0
            ):
                raise DataValidationError(f"DSnoT {name} must be a finite number >= 0, got {x!r}")
        if self.objective not in OBJECTIVES:
            raise DataValidationError(
                f"DSnoT objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}"
            )
        if self.skip not in SKIPS:
            raise DataValidationError(
                f"DSnoT skip must be one of {', '.join(SKIPS)}, got {self.skip!r}"
            )
        for name in ("keep_sign", "agree_halves"):
            if not isinstance(getattr(self, name), bool):
                raise DataValidationError(
                    f"DSnoT {name} must be True or False, got {getattr(self, name)!r}"
                )
