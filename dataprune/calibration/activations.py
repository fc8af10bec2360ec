"""Activation-space embeddings: each calibration block as the target causal LM itself sees it.

A pruner such as Wanda or SparseGPT calibrates every decoder block on the hidden states the
calibration samples produce there, not on what a sentence encoder thinks they are about. So the
selectors of :mod:`dataprune.selection` can also run on the model's own activations: the hidden
state of a few decoder blocks, mean-pooled over each block's real (non-padding) tokens.

>>> X = activation_embeddings(model, calib.input_ids, calib.attention_mask)  # (n_samples, d)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError, UnknownOptionError
from dataprune.progress import progress

logger = logging.getLogger(__name__)

__all__ = [
    "SPACES",
    "activation_embeddings",
    "check_space",
    "default_layers",
    "n_decoder_blocks",
    "resolve_layers",
]

SPACES = ("embeddings", "activations", "input_moments")
"""Where ``build_calibration_set`` runs its selector: sentence embeddings of the decoded text, the
target model's mean-pooled hidden states (:func:`activation_embeddings`), or the per-channel second
moments of its linear layers' inputs
(:func:`~dataprune.calibration.input_moments.input_moment_features`)."""


def default_layers(n_blocks: int) -> list[int]:
    """The ``layers="auto"`` rule: blocks at 1/3, 2/3 and the end of the decoder.

    Block ``ceil(k * n_blocks / 3) - 1`` for k = 1, 2, 3 (0-based; duplicates merged for models
    with fewer than 3 blocks). For 30 blocks (SmolLM2-135M): ``[9, 19, 29]``; for 2: ``[0, 1]``.
    A pruner calibrates *every* block, each on its own inputs, so a calibration set should cover
    the early, middle and late representations; one early, one middle and the last block are the
    cheapest evenly spaced probe of all three, and the last one is what the output depends on.

    Parameters
    ----------
    n_blocks : int
        Decoder blocks of the model (>= 1).

    Returns
    -------
    list of int
        Sorted 0-based block indices.
    """
    if n_blocks < 1:
        raise DataValidationError(f"the model has {n_blocks} decoder blocks, expected >= 1")
    return sorted({max(0, -(-k * n_blocks // 3) - 1) for k in (1, 2, 3)})


def n_decoder_blocks(model: Any) -> int:
    """Number of decoder blocks: ``config.num_hidden_layers``, else the pruners' block search
    (:func:`dataprune.model_pruning.structure.find_decoder_blocks`)."""
    n = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    if isinstance(n, int) and not isinstance(n, bool) and n > 0:
        return n
    from dataprune.model_pruning.structure import find_decoder_blocks

    return len(find_decoder_blocks(model)[1])


def resolve_layers(model: Any, layers: str | int | Sequence[int] | None = "auto") -> list[int]:
    """Validate ``layers`` and return sorted, distinct, non-negative decoder-block indices.

    Parameters
    ----------
    model : causal LM
    layers : "auto", int or sequence of int, default="auto"
        0-based decoder blocks (negative counts from the end, ``-1`` = last); ``"auto"`` or
        ``None``: :func:`default_layers`.

    Raises
    ------
    DataValidationError
        For an index outside ``[-n_blocks, n_blocks)`` or a non-integer.
    UnknownOptionError
        For a string other than ``"auto"``.
    """
    n = n_decoder_blocks(model)
    if layers is None or (isinstance(layers, str) and layers == "auto"):
        return default_layers(n)
    if isinstance(layers, str):
        raise UnknownOptionError(
            f"unknown layers {layers!r}; valid: 'auto' or decoder-block indices (0..{n - 1})"
        )
    items = [layers] if isinstance(layers, (int, np.integer)) else list(layers)
    if not items:
        raise DataValidationError("layers is empty; give 'auto' or at least one block index")
    out = set()
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise DataValidationError(f"layers must be integers, got {v!r}")
        if not -n <= v < n:
            raise DataValidationError(
                f"layer {int(v)} is out of range: the model has {n} decoder blocks "
                f"(valid: {-n}..{n - 1})"
            )
        out.add(int(v) % n)
    return sorted(out)


def check_space(
    space: str, model: Any, layers: Any, *, encoder: Any = None, embeddings: Any = None
) -> list[int] | None:
    """Validate ``build_calibration_set``'s ``space``/``model``/``layers`` arguments.

    Returns
    -------
    list of int or None
        The resolved layers for ``space="activations"`` (``"auto"``: :func:`default_layers`) and
        ``"input_moments"`` (``"auto"``/``"all"``: every block), ``None`` for ``"embeddings"``.
    """
    if space not in SPACES:
        raise UnknownOptionError(f"unknown space {space!r}; valid: {', '.join(SPACES)}")
    if space == "embeddings":
        if model is not None or layers is not None:
            raise DataValidationError(
                "model= and layers= are for space='activations' or 'input_moments'"
            )
        return None
    if model is None:
        raise DataValidationError(
            f"space={space!r} needs model= (the causal LM to be pruned, whose activations "
            "embed the candidates)"
        )
    if encoder is not None or embeddings is not None:
        raise DataValidationError(
            f"encoder= and embeddings= are for space='embeddings'; with space={space!r} the "
            "candidates are embedded by model="
        )
    if space == "input_moments":
        return resolve_moment_layers(model, layers)
    return resolve_layers(model, layers)


def resolve_moment_layers(
    model: Any, layers: str | int | Sequence[int] | None = "all"
) -> list[int]:
    """:func:`resolve_layers` for input moments: ``"all"``, ``"auto"`` or ``None`` is every
    decoder block (a pruner calibrates each of them); indices as in :func:`resolve_layers`."""
    if layers is None or (isinstance(layers, str) and layers in ("all", "auto")):
        return list(range(n_decoder_blocks(model)))
    return resolve_layers(model, layers)


def activation_embeddings(
    model: Any,
    input_ids: Any,
    attention_mask: Any = None,
    *,
    layers: str | int | Sequence[int] | None = "auto",
    batch_size: int = 8,
    per_layer: bool = False,
    show_progress_bar: bool | None = None,
) -> np.ndarray:
    """Mean-pooled hidden states of a causal LM, one vector per token block.

    Every block is run through the model (``torch.no_grad()``, ``output_hidden_states=True``, in
    the model's dtype and on its device, batches trimmed to their longest block). For each chosen
    decoder block the hidden state it outputs is averaged over the block's real tokens (padding
    excluded), in float32, and L2-normalised. The last block's entry is the final normalised
    hidden state, as transformers returns it. Blocks are independent: the vector of a block does
    not depend on its padding or on the other blocks of its batch (up to float rounding).

    Parameters
    ----------
    model : transformers causal LM (torch.nn.Module)
        The model to be pruned. Its base decoder (``get_decoder()``) is used when it has one, so
        no logits are computed.
    input_ids : array or tensor of shape (n_samples, seq_len), int
    attention_mask : array or tensor of shape (n_samples, seq_len), optional
        1 for real tokens, 0 for padding; blocks must be right-padded (as in a
        :class:`~dataprune.calibration.CalibrationSet`). Default: no padding.
    layers : "auto", int or sequence of int, default="auto"
        0-based decoder blocks (see :func:`resolve_layers`; ``"auto"``: :func:`default_layers`,
        1/3, 2/3 and the last block).
    batch_size : int, default=8
        Blocks per forward pass.
    per_layer : bool, default=False
        Return the per-layer vectors instead of their concatenation.
    show_progress_bar : bool, optional
        ``None`` follows the log level.

    Returns
    -------
    ndarray, float32
        ``per_layer=False``: shape (n_samples, n_layers * hidden_size), the per-layer unit
        vectors concatenated in layer order and scaled by ``1 / sqrt(n_layers)``, so each row has
        unit norm and the dot product of two rows is the mean of their per-layer cosine
        similarities (higher = more alike). ``per_layer=True``: shape
        (n_samples, n_layers, hidden_size), each ``[i, j]`` a unit vector.

    Raises
    ------
    DataValidationError
        For bad shapes, masks or token ids, or a model without hidden states per block.
    """
    ids, mask = _check_blocks(model, input_ids, attention_mask)
    _check_batch_size(batch_size)
    chosen = resolve_layers(model, layers)
    out = _compute_activation_embeddings(
        model, ids, mask, chosen, int(batch_size), show_progress_bar
    )
    if per_layer:
        return out
    return (out / np.float32(math.sqrt(len(chosen)))).reshape(len(out), -1)


def _check_batch_size(batch_size: Any) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise DataValidationError(f"batch_size must be a positive integer, got {batch_size!r}")
    if batch_size < 1:
        raise DataValidationError(f"batch_size must be a positive integer, got {batch_size!r}")


def _check_blocks(model: Any, input_ids: Any, attention_mask: Any) -> tuple[np.ndarray, np.ndarray]:
    import torch

    if not isinstance(model, torch.nn.Module):
        raise DataValidationError(
            f"model must be a causal LM (torch.nn.Module), got {type(model).__name__}"
        )
    ids = _as_numpy(input_ids)
    if ids.ndim != 2 or ids.shape[0] == 0 or ids.shape[1] == 0:
        raise DataValidationError(
            f"input_ids must have shape (n_samples, seq_len) with both > 0, got {ids.shape}"
        )
    if not np.issubdtype(ids.dtype, np.integer):
        raise DataValidationError(f"input_ids must be integers, got dtype {ids.dtype}")
    mask = np.ones_like(ids) if attention_mask is None else _as_numpy(attention_mask)
    if mask.shape != ids.shape:
        raise DataValidationError(
            f"attention_mask shape {mask.shape} differs from input_ids shape {ids.shape}"
        )
    if not np.isin(mask, (0, 1)).all():
        raise DataValidationError("attention_mask must hold only 0 and 1")
    lengths = mask.sum(axis=1)
    if (lengths == 0).any():
        raise DataValidationError(
            "block has no tokens", record=int(np.flatnonzero(lengths == 0)[0])
        )
    right_padded = mask[:, :-1] >= mask[:, 1:]
    if not right_padded.all():
        raise DataValidationError(
            "attention_mask must be right-padded (real tokens first, then padding)",
            record=int(np.flatnonzero(~right_padded.all(axis=1))[0]),
        )
    emb = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    vocab = getattr(emb, "num_embeddings", None)
    if isinstance(vocab, int) and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
        raise DataValidationError(
            f"token ids must be in [0, {vocab}) (the model's vocabulary), got "
            f"[{int(ids.min())}, {int(ids.max())}]: were the blocks made with this model's tokenizer?"
        )
    return ids.astype(np.int64, copy=False), mask.astype(np.int64, copy=False)


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _decoder(model: Any) -> Any:
    """The base decoder (no LM head, so no logits), else the model itself."""
    get_decoder = getattr(model, "get_decoder", None)
    if callable(get_decoder):
        try:
            dec = get_decoder()
        except (AttributeError, NotImplementedError):
            dec = None
        if dec is not None:
            return dec
    return model


def _compute_activation_embeddings(
    model: Any,
    ids: np.ndarray,
    mask: np.ndarray,
    layers: list[int],
    batch_size: int,
    show_progress_bar: bool | None,
) -> np.ndarray:
    """(n_samples, n_layers, hidden_size) float32, each vector L2-normalised."""
    import torch

    n_blocks = n_decoder_blocks(model)
    decoder = _decoder(model)
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    lengths = mask.sum(axis=1)
    order = np.argsort(-lengths, kind="stable")  # similar lengths share a batch: less padding
    out: np.ndarray | None = None
    starts = range(0, len(ids), batch_size)
    with torch.no_grad():
        for lo in progress(
            starts, show_progress_bar=show_progress_bar, desc="activation embeddings", unit="batch"
        ):
            idx = order[lo : lo + batch_size]
            width = int(lengths[idx].max())
            ids_t = torch.from_numpy(ids[idx, :width].copy()).to(device)
            mask_t = torch.from_numpy(mask[idx, :width].copy()).to(device)
            hidden = decoder(
                input_ids=ids_t, attention_mask=mask_t, output_hidden_states=True, use_cache=False
            ).hidden_states
            if hidden is None or len(hidden) != n_blocks + 1:
                got = "none" if hidden is None else len(hidden)
                raise DataValidationError(
                    f"{type(model).__name__} returned {got} hidden states for {n_blocks} decoder "
                    "blocks (expected the embeddings plus one per block)"
                )
            weight = mask_t.unsqueeze(-1).to(torch.float32)
            pooled = torch.stack(
                [(hidden[b + 1].to(torch.float32) * weight).sum(1) for b in layers], dim=1
            ) / weight.sum(1).unsqueeze(1)
            if out is None:
                out = np.empty((len(ids), len(layers), pooled.shape[-1]), dtype=np.float32)
            out[idx] = pooled.cpu().numpy()
    assert out is not None
    norms = np.linalg.norm(out, axis=2, keepdims=True)
    out /= np.maximum(norms, np.finfo(np.float32).tiny)
    logger.debug(
        "activation embeddings: %d blocks, layers %s, %d dims each", len(ids), layers, out.shape[2]
    )
    return out
