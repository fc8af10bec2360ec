"""The expected output error of a masked layer, from its inputs' statistics."""

from __future__ import annotations

from typing import Any

__all__ = ["expected_reconstruction_error"]


def expected_reconstruction_error(
    weight: Any, mask: Any, mean: Any, var: Any, second_moment: Any = None
) -> dict[str, float]:
    """Expected error of a masked layer's output per token, from input statistics.

    Parameters
    ----------
    weight : torch.Tensor of shape (out_features, in_features)
        The dense weight.
    mask : torch.Tensor of shape (out_features, in_features), bool
        True where pruned.
    mean, var : torch.Tensor of shape (in_features,)
        Mean and variance of every input feature over the calibration tokens.
    second_moment : torch.Tensor of shape (in_features, in_features), optional
        ``E[x x^T]``; when given, ``mean_sq_error`` is exact.

    Returns
    -------
    dict
        ``mean_abs_error``: mean over output rows of ``|sum_j d_rj E[x_j]|`` (DSnoT's objective,
        with ``d = W * mask`` the removed weights); ``mean_sq_error``: mean over rows of
        ``(d_r . E[x])^2 + sum_j d_rj^2 Var(x_j)``, the expected squared output error per token if
        the input features were uncorrelated, or with ``second_moment`` ``d_r^T E[x x^T] d_r``,
        the squared output error per calibration token.
    """
    import torch

    d = weight.detach().to(torch.float32) * mask.to(weight.device)
    mu = mean.to(device=d.device, dtype=torch.float32)
    e = d @ mu
    if second_moment is not None:
        sq = ((d @ second_moment.to(device=d.device, dtype=torch.float32)) * d).sum(dim=1)
    else:
        sq = e * e + (d * d) @ var.to(device=d.device, dtype=torch.float32)
    return {"mean_abs_error": float(e.abs().mean()), "mean_sq_error": float(sq.mean())}
