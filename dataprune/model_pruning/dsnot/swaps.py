"""DSnoT's prune-and-grow swaps on one layer's mask (the functional core; see the package
docstring of :mod:`dataprune.model_pruning.dsnot` for the criteria)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from dataprune.errors import DataValidationError
from dataprune.model_pruning.dsnot.config import DSnoTConfig
from dataprune.model_pruning.patterns import SparsitySpec, resolve_sparsity

__all__ = ["dsnot_refine_mask"]

# rows refined at once: bounds the (rows, in_features) index tensors of the candidate lists
_CHUNK_ELEMENTS = 1 << 24


def dsnot_refine_mask(
    weight: Any,
    mask: Any,
    mean: Any,
    var: Any,
    *,
    pattern: str | SparsitySpec | None = None,
    config: DSnoTConfig | Mapping[str, Any] | None = None,
    tokens_per_sequence: float = 1.0,
    second_moment: Any = None,
    halves: Any = None,
) -> Any:
    """Refine a pruning mask with DSnoT's prune-and-grow swaps (no weight is changed).

    Parameters
    ----------
    weight : torch.Tensor of shape (out_features, in_features)
        The dense weight (before the mask is applied); any float dtype.
    mask : torch.Tensor of shape (out_features, in_features), bool
        True where a weight is pruned (the convention of :mod:`dataprune.model_pruning.masks`).
    mean, var : torch.Tensor of shape (in_features,)
        Mean and (population) variance of every input feature over the calibration tokens.
    pattern : str or SparsitySpec, optional
        ``None`` / ``"unstructured"``: swaps anywhere in a row. ``"N:M"`` (or an N:M
        :class:`SparsitySpec`): swaps inside one group of M consecutive weights; ``mask`` must
        already prune at least M - N weights of every group.
    config : DSnoTConfig or mapping, optional
        :class:`DSnoTConfig`'s defaults when omitted (they include ``agree_halves``, which
        needs ``halves``).
    tokens_per_sequence : float, default=1.0
        Mean real tokens per calibration sequence: the expected error is scaled by it before it
        is compared with ``config.update_threshold`` (the reference sums over a sequence).
    second_moment : torch.Tensor of shape (in_features, in_features), optional
        ``E[x x^T]`` over the calibration tokens; needed by ``objective="mse_full"`` (and
        ignored otherwise).
    halves : two (mean, var) or (mean, var, second_moment) tuples, optional
        The same statistics of two disjoint halves of the calibration sequences (tensors of
        shape (in_features,), and (in_features, in_features) for ``objective="mse_full"``, which
        needs them); needed by ``config.agree_halves`` (and ignored otherwise): a swap is then
        made only if it also lowers the objective on each half.

    Returns
    -------
    torch.Tensor of shape (out_features, in_features), bool
        The refined mask, on ``mask``'s device, with exactly as many True entries as ``mask`` in
        every row (and in every N:M group).

    Raises
    ------
    DataValidationError
        For shapes that disagree, non-finite statistics, a negative variance, a bad config, or a
        mask that does not follow the N:M pattern.
    """
    import torch

    cfg = DSnoTConfig.from_options(config)
    spec = _resolve_pattern(pattern)
    if not isinstance(weight, torch.Tensor) or weight.ndim != 2:
        raise DataValidationError("weight must be a 2-D torch tensor (out_features, in_features)")
    out_f, in_f = weight.shape
    if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != (out_f, in_f):
        raise DataValidationError(
            f"mask must be a tensor of the weight's shape {(out_f, in_f)}, got "
            f"{tuple(getattr(mask, 'shape', ()))}"
        )
    if mask.dtype != torch.bool:
        raise DataValidationError(f"mask must be a bool tensor (True = pruned), got {mask.dtype}")
    full = cfg.objective == "mse_full"
    mean, var, gram = _checked_stats(mean, var, second_moment, in_f, weight.device, full)
    scale = float(tokens_per_sequence)
    if not math.isfinite(scale) or scale <= 0:
        raise DataValidationError(f"tokens_per_sequence must be > 0, got {tokens_per_sequence!r}")
    pruned = mask.to(weight.device)
    if spec is not None:
        m = int(spec.m)
        if in_f % m:
            raise DataValidationError(
                f"an {spec.pattern} pattern needs in_features divisible by {m}, got {in_f}"
            )
        zeros = pruned.reshape(out_f, in_f // m, m).sum(dim=2)
        if bool((zeros < spec.n_pruned_per_group).any()):
            raise DataValidationError(
                f"mask does not follow the {spec.pattern} pattern (some groups of {m} prune fewer "
                f"than {spec.n_pruned_per_group} weights)"
            )
    split = None
    if cfg.agree_halves:
        split = _check_halves(halves, in_f, weight.device, full)
    refined = _compute_dsnot_mask(
        weight.detach(),
        pruned,
        mean,
        var,
        None if spec is None else int(spec.m),
        cfg,
        scale,
        gram,
        split,
    )
    return refined.to(mask.device)


def _resolve_pattern(pattern: str | SparsitySpec | None) -> SparsitySpec | None:
    if isinstance(pattern, SparsitySpec):
        return pattern if pattern.structured else None
    if pattern is None or str(pattern).strip().lower() in ("", "unstructured"):
        return None
    return resolve_sparsity(None, pattern)


def _checked_stats(
    mean: Any, var: Any, gram: Any, in_f: int, device: Any, full: bool, where: str = ""
) -> tuple[Any, Any, Any]:
    """Validated float32 mean, variance and (only when ``full``, where it is required) second
    moment of the calibration inputs; ``where`` prefixes the messages (a half's name)."""
    import torch

    shapes = [("mean", mean, (in_f,)), ("var", var, (in_f,))]
    if full:
        shapes.append(("second_moment", gram, (in_f, in_f)))
    out = []
    for name, t, shape in shapes:
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != shape:
            what = (
                '(E[x x^T] of the inputs; objective="mse_full" needs second_moment)'
                if name == "second_moment"
                else "(one value per input feature)"
            )
            raise DataValidationError(
                f"{where}{name} must be a tensor of shape {shape} {what}, got "
                f"{tuple(getattr(t, 'shape', ())) or None}"
            )
        t = t.detach().to(device=device, dtype=torch.float32)
        if not bool(torch.isfinite(t).all()):
            raise DataValidationError(f"{where}{name} has non-finite values")
        out.append(t)
    if bool((out[1] < 0).any()):
        raise DataValidationError(f"{where}var must be >= 0")
    return out[0], out[1], out[2] if full else None


def _check_halves(halves: Any, in_f: int, device: Any, full: bool) -> list[tuple[Any, Any, Any]]:
    """:func:`_checked_stats` of each half of the calibration sequences."""
    ok = isinstance(halves, (list, tuple)) and len(halves) == 2
    ok = ok and all(isinstance(h, (list, tuple)) and len(h) in (2, 3) for h in halves)
    if not ok:
        raise DataValidationError(
            "DSnoT agree_halves (on by default) needs halves: the (mean, var) of each of two "
            "halves of the calibration sequences (and their second moment for objective "
            "'mse_full'; InputMoments(halves=True) collects them), or config "
            "{'agree_halves': False}"
        )
    return [
        _checked_stats(
            h[0], h[1], h[2] if len(h) == 3 else None, in_f, device, full, f"halves[{k}] "
        )
        for k, h in enumerate(halves)
    ]


def _compute_dsnot_mask(weight, pruned, mean, var, m, cfg, scale, gram=None, split=None):
    """Chunks of rows through :func:`_refine_rows` (validated inputs)."""
    import torch

    out_f, in_f = weight.shape
    step = max(1, _CHUNK_ELEMENTS // max(in_f, 1))
    wanda_norm = torch.sqrt(var + mean * mean)  # ||x_j||_2 / sqrt(n_tokens)
    gain_div = var.clamp_min(torch.finfo(torch.float32).eps) ** cfg.variance_power
    parts = []
    for lo in range(0, out_f, step):
        w = weight[lo : lo + step].to(torch.float32)
        parts.append(
            _refine_rows(
                w,
                pruned[lo : lo + step].clone(),
                mean,
                var,
                wanda_norm,
                gain_div,
                m,
                cfg,
                scale,
                gram,
                split,
            )
        )
    return torch.cat(parts, dim=0) if parts else pruned.clone()


def _ranked(key, valid):
    """Column order per row: ``valid`` entries by ascending ``key`` first; how many are valid."""
    import torch

    order = torch.sort(torch.where(valid, key, torch.inf), dim=1, stable=True)[1]
    return order, valid.sum(dim=1)


def _take(order, count, ptr):
    """Entry ``ptr`` of each row's order (clamped) and whether it exists."""
    idx = order.gather(1, ptr.clamp(max=order.shape[1] - 1).unsqueeze(1)).squeeze(1)
    return idx, ptr < count


class _Side:
    """One estimate of a row block's expected output error, from one set of input statistics
    (all calibration sequences, or one half of them): every weight's expected contribution
    per sequence, each row's error, and for ``objective="mse_full"`` the slope ``G d_r``."""

    def __init__(self, w, pruned, mean, var, gram, scale):
        self.contrib = w * (mean * scale)  # expected output contribution of every weight
        self.error = (self.contrib * pruned).sum(dim=1)  # dense minus sparse expected output
        self.var, self.gram, self.scale = var, gram, scale
        # G d_r for every row (d = the removed weights): the exact error's slope
        self.slope = None if gram is None else (w * pruned) @ gram
        self.after = self.error

    def lowered(self, w, rows, grow, prune, objective):
        """Whether swapping ``grow`` in for ``prune`` lowers each row's objective (the error
        after the swap is kept for :meth:`commit`)."""
        self.after = self.error - self.contrib[rows, grow] + self.contrib[rows, prune]
        if self.gram is not None:  # d -> d - w_g e_g + w_p e_p: exact change of d^T G d
            g, wg, wp = self.gram, w[rows, grow], w[rows, prune]
            change = 2 * (wp * self.slope[rows, prune] - wg * self.slope[rows, grow])
            change += wg * wg * g[grow, grow] + wp * wp * g[prune, prune]
            return change - 2 * wg * wp * g[grow, prune] < 0
        if objective == "mse":  # per token: change of mean^2 plus the variance part's
            v = self.var
            spread = w[rows, prune] ** 2 * v[prune] - w[rows, grow] ** 2 * v[grow]
            change = (self.after * self.after - self.error * self.error) / self.scale**2
            return change + spread < 0
        return self.after.abs() < self.error.abs()

    def commit(self, w, swap, rows, grow, prune):
        import torch

        if self.slope is not None and bool(swap.any()):
            r = rows[swap]
            self.slope[r] += w[r, prune[swap]].unsqueeze(1) * self.gram[prune[swap]]
            self.slope[r] -= w[r, grow[swap]].unsqueeze(1) * self.gram[grow[swap]]
        self.error = torch.where(swap, self.after, self.error)


def _refine_rows(w, pruned, mean, var, wanda_norm, gain_div, m, cfg, scale, gram=None, split=None):
    """DSnoT swaps on a (rows, in_features) float32 block; ``pruned`` is updated and returned.
    ``gram``: ``E[x x^T]`` for ``objective="mse_full"``; ``split``: (mean, var, gram) of each
    half of the calibration sequences for ``agree_halves``."""
    import torch

    rows = torch.arange(w.shape[0], device=w.device)
    full = _Side(w, pruned, mean, var, gram, scale)
    halves = [_Side(w, pruned, mu, v, g, scale) for mu, v, g in split or ()]
    contrib = full.contrib
    gain = contrib / gain_div
    kept0 = ~pruned
    # growing: revive pruned weights whose contribution has the error's sign, largest gain first
    grow_pos = _ranked(-gain, pruned & (contrib > 0))  # for rows with error > 0
    grow_neg = _ranked(gain, pruned & (contrib < 0))  # for rows with error < 0
    ptr_gp = torch.zeros_like(rows)
    ptr_gn = torch.zeros_like(rows)
    importance = w.abs() * wanda_norm  # Wanda's |W_ij| * ||x_j||_2
    if m is None:
        # pruning: kept weights of the opposite sign, least Wanda importance first
        prune_pos = _ranked(importance, kept0 & (contrib < 0))
        prune_neg = _ranked(importance, kept0 & (contrib > 0))
        ptr_pp = torch.zeros_like(rows)
        ptr_pn = torch.zeros_like(rows)
    active = full.error.abs() > cfg.update_threshold
    for _ in range(cfg.max_cycles):
        if not bool(active.any()):
            break
        pos = full.error > 0
        gi_p, ok_p = _take(*grow_pos, ptr_gp)
        gi_n, ok_n = _take(*grow_neg, ptr_gn)
        grow = torch.where(pos, gi_p, gi_n)
        has_grow = torch.where(pos, ok_p, ok_n)
        if m is None:
            pi_p, okp_p = _take(*prune_pos, ptr_pp)
            pi_n, okp_n = _take(*prune_neg, ptr_pn)
            prune = torch.where(pos, pi_p, pi_n)
            has_prune = torch.where(pos, okp_p, okp_n)
        else:
            prune, has_prune = _group_candidate(grow, pos, pruned, kept0, contrib, importance, m)
        decreases = full.lowered(w, rows, grow, prune, cfg.objective)
        for half in halves:  # agree_halves: each half's own estimate must be lowered too
            decreases &= half.lowered(w, rows, grow, prune, cfg.objective)
        if cfg.keep_sign:
            decreases &= torch.sign(full.after) == torch.sign(full.error)
        swap = active & has_grow & has_prune & decreases
        pruned[rows[swap], grow[swap]] = False
        pruned[rows[swap], prune[swap]] = True
        for side in (full, *halves):
            side.commit(w, swap, rows, grow, prune)
        if m is None:
            used = swap
            ptr_pp += (swap & pos).long()
            ptr_pn += (swap & ~pos).long()
        else:  # a growth candidate whose group holds no pruning partner is passed over
            used = swap | (active & has_grow & ~has_prune)
        ptr_gp += (used & pos).long()
        ptr_gn += (used & ~pos).long()
        active = used & (full.error.abs() > cfg.update_threshold)
    return pruned


def _group_candidate(grow, pos, pruned, kept0, contrib, importance, m):
    """N:M: the least important originally kept weight of the grown weight's group whose
    contribution has the sign opposite to the error; and whether one exists."""
    import torch

    start = grow - grow % m
    cols = start.unsqueeze(1) + torch.arange(m, device=grow.device).unsqueeze(0)  # (rows, m)
    c = contrib.gather(1, cols)
    ok = (~pruned).gather(1, cols) & kept0.gather(1, cols)
    ok &= torch.where(pos.unsqueeze(1), c < 0, c > 0)
    key = torch.where(ok, importance.gather(1, cols), torch.inf)
    best = key.argmin(dim=1)
    return cols.gather(1, best.unsqueeze(1)).squeeze(1), ok.any(dim=1)
