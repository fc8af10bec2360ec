"""DSnoT as a pruner's mask refinement (``refine="dsnot"``, registered in ``MASK_REFINERS``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dataprune.errors import DataValidationError
from dataprune.model_pruning.base import MASK_REFINERS
from dataprune.model_pruning.dsnot.config import DSnoTConfig
from dataprune.model_pruning.dsnot.swaps import dsnot_refine_mask
from dataprune.model_pruning.patterns import SparsitySpec
from dataprune.model_pruning.structure import layer_part

__all__ = ["DSnoTRefiner"]


class DSnoTRefiner:
    """DSnoT as a pruner's mask refinement (``refine="dsnot"``, registered in ``MASK_REFINERS``).

    Parameters
    ----------
    config : DSnoTConfig or mapping, optional
        The paper's defaults when omitted.
    """

    name = "dsnot"

    def __init__(self, config: DSnoTConfig | Mapping[str, Any] | None = None) -> None:
        self.config = DSnoTConfig.from_options(config)

    @property
    def needs_second_moment(self) -> bool:
        """Whether the statistics pass must also sum ``x x^T`` (``objective="mse_full"``)."""
        return self.config.objective == "mse_full"

    @property
    def needs_halves(self) -> bool:
        """Whether the statistics pass must keep each half of the calibration sequences apart
        (``agree_halves``)."""
        return self.config.agree_halves

    def check_calibration(self, n_sequences: int) -> None:
        """Raise :class:`DataValidationError` when ``n_sequences`` calibration sequences cannot
        feed this refinement (``agree_halves`` needs at least 2)."""
        if self.config.agree_halves and n_sequences < 2:
            raise DataValidationError(
                f"DSnoT's agree_halves (on by default) needs at least 2 calibration sequences, "
                f"got {n_sequences}; refine_config={{'agree_halves': False}} refines from one"
            )

    def applies_to(self, name: str) -> bool:
        """Whether layer ``name`` is refined (``False`` for the part ``config.skip`` names)."""
        return self.config.skip == "none" or layer_part(name) != self.config.skip

    def refine(self, weight: Any, mask: Any, moments: Any, spec: SparsitySpec) -> Any:
        """Refined ``mask`` (True = pruned) of one layer.

        Parameters
        ----------
        weight : torch.Tensor of shape (out_features, in_features)
            The dense weight.
        mask : torch.Tensor of shape (out_features, in_features), bool
        moments : FeatureMoments
            The layer's input statistics (:class:`~dataprune.model_pruning.InputMoments`).
        spec : SparsitySpec
            The pruning target (its N:M pattern, if any, is kept).

        Returns
        -------
        torch.Tensor of shape (out_features, in_features), bool

        Raises
        ------
        DataValidationError
            With ``agree_halves``, when ``moments`` has no halves or a half holds no token
            (fewer than two calibration sequences).
        """
        halves = None
        if self.config.agree_halves:
            if moments.halves is None or min(h.n_tokens for h in moments.halves) == 0:
                raise DataValidationError(
                    "DSnoT agree_halves (on by default) needs the statistics of two halves of "
                    "the calibration sequences, each with tokens (at least 2 calibration "
                    "sequences with real tokens); config {'agree_halves': False} turns it off"
                )
            halves = [(h.mean, h.var, h.second_moment) for h in moments.halves]
        return dsnot_refine_mask(
            weight,
            mask,
            moments.mean,
            moments.var,
            pattern=spec,
            config=self.config,
            tokens_per_sequence=moments.tokens_per_sequence,
            second_moment=moments.second_moment,
            halves=halves,
        )


MASK_REFINERS.register("dsnot", DSnoTRefiner)
