"""DSnoT as a pruner's mask refinement (``refine="dsnot"``, registered in ``MASK_REFINERS``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
        """
        return dsnot_refine_mask(
            weight,
            mask,
            moments.mean,
            moments.var,
            pattern=spec,
            config=self.config,
            tokens_per_sequence=moments.tokens_per_sequence,
            second_moment=moments.second_moment,
        )


MASK_REFINERS.register("dsnot", DSnoTRefiner)
