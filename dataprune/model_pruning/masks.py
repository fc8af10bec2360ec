"""Pruning masks from importance scores (functional core shared by every built-in pruner).

Scores have shape (out_features, in_features), higher = keep. A mask is ``True`` where a weight is
zeroed. Comparison groups:

* ``"row"``: the ``int(in_features * sparsity)`` lowest scores of every output row (Wanda's
  per-output comparison; a stable sort, so ties go to the lower column index);
* ``"layer"``: the ``int(numel * sparsity)`` lowest scores of the whole matrix (classic magnitude);
* N:M: the ``M - N`` lowest of every ``M`` consecutive columns of a row (``torch.topk``).
"""

from __future__ import annotations

from typing import Any

from dataprune.errors import DataValidationError
from dataprune.model_pruning.base import LayerReport
from dataprune.model_pruning.patterns import SparsitySpec
from dataprune.model_pruning.structure import PrunableLayer

__all__ = [
    "COMPARISON_GROUPS",
    "apply_mask",
    "check_comparison",
    "layer_mask",
    "prune_mask",
    "wanda_scores",
]

COMPARISON_GROUPS = ("row", "layer")


def wanda_scores(weight: Any, sq_norms: Any) -> Any:
    """Wanda importance ``|W_ij| * ||X_j||_2`` in float32.

    Parameters
    ----------
    weight : torch.Tensor of shape (out_features, in_features)
    sq_norms : torch.Tensor of shape (in_features,)
        Sum over calibration tokens of the squared input activation of every input feature
        (any positive rescaling, e.g. a mean, gives the same masks).

    Returns
    -------
    torch.Tensor of shape (out_features, in_features), float32, higher = keep
    """
    import torch

    if weight.ndim != 2 or sq_norms.shape != (weight.shape[1],):
        raise ValueError(
            f"weight {tuple(weight.shape)} and activation norms {tuple(sq_norms.shape)} disagree"
        )
    return weight.detach().abs().to(torch.float32) * torch.sqrt(
        sq_norms.to(torch.float32).clamp_min(0)
    ).unsqueeze(0)


def prune_mask(scores: Any, spec: SparsitySpec, *, comparison: str = "row") -> Any:
    """Boolean mask (True = zero this weight) of the lowest-scoring weights.

    Parameters
    ----------
    scores : torch.Tensor of shape (out_features, in_features)
        Importance, higher = keep.
    spec : SparsitySpec
        Unstructured fraction or N:M pattern.
    comparison : {"row", "layer"}, default="row"
        Comparison group for unstructured sparsity (ignored for N:M, whose group is fixed).

    Raises
    ------
    DataValidationError
        For an unknown comparison group or an N:M pattern whose M does not divide in_features.
    """
    import torch

    if scores.ndim != 2:
        raise ValueError(f"expected a 2-D score matrix, got shape {tuple(scores.shape)}")
    out_f, in_f = scores.shape
    mask = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
    if spec.structured:
        m, n_prune = int(spec.m), spec.n_pruned_per_group
        if in_f % m:
            raise DataValidationError(
                f"an {spec.pattern} pattern needs in_features divisible by {m}, got {in_f}"
            )
        groups = scores.reshape(out_f, in_f // m, m)
        idx = torch.topk(groups, n_prune, dim=2, largest=False)[1]
        mask.view(out_f, in_f // m, m).scatter_(2, idx, True)
        return mask
    check_comparison(comparison)
    if comparison == "row":
        k = int(in_f * spec.sparsity)
        if k:
            idx = torch.sort(scores, dim=1, stable=True)[1][:, :k]
            mask.scatter_(1, idx, True)
        return mask
    k = int(scores.numel() * spec.sparsity)  # comparison == "layer"
    if k:
        idx = torch.sort(scores.reshape(-1), stable=True)[1][:k]
        mask.view(-1)[idx] = True
    return mask


def check_comparison(comparison: str) -> None:
    """Raise a clear error unless ``comparison`` names a group of :data:`COMPARISON_GROUPS`."""
    if comparison not in COMPARISON_GROUPS:
        raise DataValidationError(
            f"comparison must be one of {', '.join(COMPARISON_GROUPS)}, got {comparison!r}"
        )


def apply_mask(layer: PrunableLayer, mask: Any) -> LayerReport:
    """Zero the weights of ``layer`` where ``mask`` (out, in) is True; return its sparsity."""
    import torch

    with torch.no_grad():
        w = layer.weight_matrix()
        w.masked_fill_(mask.to(w.device), 0)
        n_zeros = int((w == 0).sum())
    out_f, in_f = layer.shape
    return LayerReport(layer.name, (out_f, in_f), out_f * in_f, n_zeros)


def layer_mask(
    layer: PrunableLayer, scores: Any, spec: SparsitySpec, comparison: str
) -> tuple[Any | None, str | None]:
    """Mask for one layer, or ``(None, reason)`` when an N:M pattern does not fit its width."""
    if spec.structured and layer.shape[1] % int(spec.m):
        return None, f"in_features={layer.shape[1]} is not divisible by M={spec.m}"
    return prune_mask(scores, spec, comparison=comparison), None
