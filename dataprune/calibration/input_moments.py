"""Input-moment features: each calibration block as the statistics a pruner calibrates on.

Wanda scores weight ``W_ij`` by ``|W_ij| * ||X_j||_2``, where ``||X_j||_2^2`` is the sum over the
calibration tokens of the squared j-th input of that linear layer (SparseGPT's Hessian has the
same diagonal). A calibration set is good for such a pruner when these per-channel second moments
are the population's, not those of a lucky or unlucky draw. So each candidate block is described
by the per-token mean of ``x_j^2`` at the input of every linear layer of the chosen decoder blocks,
each channel divided by its mean over all candidates (so every feature's pool mean is 1). A
selector that matches the pool's mean in this space (``herding``) then chooses blocks whose
statistics are the whole pool's up to a relative error per channel, which is what the ranking
inside each row of a Wanda mask depends on.

>>> F = input_moment_features(model, calib.input_ids, calib.attention_mask)  # (n_samples, d)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.model_pruning.activations import LayerHooks
from dataprune.progress import progress

logger = logging.getLogger(__name__)

__all__ = ["input_moment_features"]


def input_moment_features(
    model: Any,
    input_ids: Any,
    attention_mask: Any = None,
    *,
    layers: str | int | Sequence[int] | None = "all",
    batch_size: int = 8,
    show_progress_bar: bool | None = None,
) -> np.ndarray:
    """Per-channel second moments of every linear layer's input, one row per token block.

    Every block is run through the model (``torch.no_grad()``, in its dtype and on its device,
    batches trimmed to their longest block) with a forward hook on each prunable linear layer of
    the chosen decoder blocks (:func:`dataprune.model_pruning.structure.prunable_layers`, the
    layers the pruners mask). For block ``b`` and input channel ``j`` of a layer the feature is
    ``mean_t x_tj^2`` over the block's real tokens (float32), divided by the token-weighted mean of
    the same quantity over all blocks given. Layers reading the same tensor (q/k/v; gate/up) share
    one group of columns, scaled by ``sqrt(number of layers reading it)`` so that a squared
    distance counts each layer once. Channels that are zero on every block are dropped.

    Parameters
    ----------
    model : transformers causal LM (torch.nn.Module)
        The model to be pruned. Its base decoder (``get_decoder()``) runs when it has one, so no
        logits are computed.
    input_ids : array or tensor of shape (n_samples, seq_len), int
    attention_mask : array or tensor of shape (n_samples, seq_len), optional
        1 for real tokens, 0 for padding (right-padded). Default: no padding.
    layers : "all", "auto", int or sequence of int, default="all"
        Decoder blocks whose linear layers are described; ``"all"``, ``"auto"`` or ``None``: every
        block (a pruner calibrates each of them). Indices as in
        :func:`dataprune.calibration.activations.resolve_layers`.
    batch_size : int, default=8
        Blocks per forward pass.
    show_progress_bar : bool, optional
        ``None`` follows the log level.

    Returns
    -------
    ndarray of shape (n_samples, n_features), float32
        Non-negative; every column's token-weighted mean over the rows is ``sqrt(k)`` for a
        group read by ``k`` layers (1 when it is read by one). ``n_features`` is the summed
        input width of the distinct layer inputs of the chosen blocks (for SmolLM2-135M, all 30
        blocks: 30 x (576 + 576 + 576 + 1536) = 97,920).

    Raises
    ------
    DataValidationError
        For bad shapes, masks, token ids or batch size, or blocks without linear layers.
    """
    from dataprune.calibration.activations import (
        _check_batch_size,
        _check_blocks,
        resolve_moment_layers,
    )

    ids, mask = _check_blocks(model, input_ids, attention_mask)
    _check_batch_size(batch_size)
    chosen = resolve_moment_layers(model, layers)
    return _compute_input_moments(model, ids, mask, chosen, int(batch_size), show_progress_bar)


class _BlockMoments(LayerHooks):
    """Forward hooks summing ``x^2`` over each sequence's real tokens, per distinct layer input.

    Layers fed the same tensor in the same forward pass (the hook sees the identical object)
    share one group; ``readers[g]`` counts the layers reading group ``g``.
    """

    def __init__(self, layers: Sequence[Any]) -> None:
        super().__init__(layers)
        self.group_of: dict[str, int] = {}
        self.readers: list[int] = []
        self.sums: list[Any] = []  # per group, (batch, in_features) float32 of the current batch
        self.token_mask: Any = None
        self._last: tuple[Any, int] | None = None

    def _forget(self) -> None:
        self._last = None

    def start_batch(self, token_mask: Any) -> None:
        self.token_mask = token_mask
        self.sums = [None] * len(self.readers)
        self._last = None

    def _hook(self, name: str):
        import torch

        def hook(module: Any, args: tuple[Any, ...], output: Any) -> None:
            raw = args[0] if args else None
            if raw is None:
                return
            if self._last is not None and self._last[0] is raw:
                g = self._last[1]
            else:
                x = raw.detach().to(torch.float32)
                if x.ndim != 3 or x.shape[:2] != self.token_mask.shape:
                    raise DataValidationError(
                        f"layer {name} got an input of shape {tuple(raw.shape)}; expected "
                        f"(batch, tokens, features) matching the blocks {tuple(self.token_mask.shape)}"
                    )
                s = (x * x * self.token_mask.unsqueeze(-1)).sum(dim=1)
                g = self.group_of.get(name)
                if g is None:
                    g = len(self.readers)
                    self.readers.append(0)
                    self.sums.append(None)
                self.sums[g] = s
            if name not in self.group_of:
                self.group_of[name] = g
                self.readers[g] += 1
            self._last = (raw, g)

        return hook


def _compute_input_moments(
    model: Any,
    ids: np.ndarray,
    mask: np.ndarray,
    blocks: list[int],
    batch_size: int,
    show_progress_bar: bool | None,
) -> np.ndarray:
    import torch

    from dataprune.calibration.activations import _decoder
    from dataprune.model_pruning.structure import find_decoder_blocks, prunable_layers

    path, all_blocks = find_decoder_blocks(model)
    layers = [lay for b in blocks for lay in prunable_layers(all_blocks[b], f"{path}.{b}")]
    if not layers:
        raise DataValidationError(f"decoder blocks {blocks} hold no linear layers to describe")
    decoder = _decoder(model)
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    lengths = mask.sum(axis=1)
    order = np.argsort(-lengths, kind="stable")
    sums: np.ndarray | None = None
    rec = _BlockMoments(layers)
    with torch.no_grad(), rec:
        for lo in progress(
            range(0, len(ids), batch_size),
            show_progress_bar=show_progress_bar,
            desc="input moments",
            unit="batch",
        ):
            idx = order[lo : lo + batch_size]
            width = int(lengths[idx].max())
            ids_t = torch.from_numpy(ids[idx, :width].copy()).to(device)
            mask_t = torch.from_numpy(mask[idx, :width].copy()).to(device)
            rec.start_batch(mask_t.to(torch.float32))
            decoder(input_ids=ids_t, attention_mask=mask_t, use_cache=False)
            if any(s is None for s in rec.sums):
                raise DataValidationError(
                    "a linear layer of the chosen blocks received no input in a forward pass"
                )
            batch = torch.cat(rec.sums, dim=1).cpu().numpy()
            if sums is None:
                widths = [int(s.shape[1]) for s in rec.sums]
                sums = np.empty((len(ids), batch.shape[1]), dtype=np.float32)
            sums[idx] = batch
    assert sums is not None
    n_tok = lengths.astype(np.float64)
    pool_mean = sums.sum(axis=0, dtype=np.float64) / n_tok.sum()
    scale = np.repeat([math.sqrt(k) for k in rec.readers], widths)
    live = pool_mean > 0
    feats = sums[:, live] / n_tok[:, None].astype(np.float32)
    feats *= (scale[live] / pool_mean[live]).astype(np.float32)
    logger.debug(
        "input moments: %d blocks, %d decoder blocks, %d layers in %d input groups, %d features",
        len(ids),
        len(blocks),
        len(layers),
        len(rec.readers),
        feats.shape[1],
    )
    return feats
