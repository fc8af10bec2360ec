"""Frozen-layer cache for training: run the frozen bottom encoder layers once per window.

Training with ``trainable_layers=k`` only updates the top ``k`` layers and the heads, so the
input of the first trainable layer is fixed for each window. It is computed once (float16) and
the training steps run the top layers on it. That needs the attention mask in the form the
encoder's layers take, built through public API only:

- ``"masking_utils"``: :func:`transformers.masking_utils.create_bidirectional_mask` with the
  encoder's config (the function the encoders themselves call in current transformers);
- ``"additive"``: the classic ``(batch, 1, 1, seq)`` additive float mask (0 where attended, the
  dtype's minimum at padding) that older transformers' encoder layers take.

:func:`attention_mask_builder` picks the first that exists and logs which; the cached path is
checked against the full forward pass before it is used (:func:`cached_path_matches`), so a
backbone whose layers take something else falls back to end-to-end training with a warning.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from dataprune.rag.batching import collate, collate_states

logger = logging.getLogger(__name__)

__all__ = [
    "MASK_BUILDERS",
    "attention_mask_builder",
    "cache_frozen_layers",
    "cached_path_matches",
    "n_frozen_layers",
    "top_forward",
]


class _StopForwardError(Exception):
    pass


def _additive_mask(config: Any, hidden: Any, mask: Any) -> Any:
    import torch

    m = mask[:, None, None, :].to(hidden.dtype)
    return (1.0 - m) * torch.finfo(hidden.dtype).min


def _masking_utils_mask(config: Any, hidden: Any, mask: Any) -> Any:
    from transformers.masking_utils import create_bidirectional_mask

    return create_bidirectional_mask(config=config, inputs_embeds=hidden, attention_mask=mask)


def _has_masking_utils() -> bool:
    try:
        from transformers.masking_utils import create_bidirectional_mask  # noqa: F401
    except ImportError:
        return False
    return True


# name -> (is it available here, builder(config, hidden states, 2-D mask) -> layer mask)
MASK_BUILDERS: dict[str, tuple[Callable[[], bool], Callable[[Any, Any, Any], Any]]] = {
    "masking_utils": (_has_masking_utils, _masking_utils_mask),
    "additive": (lambda: True, _additive_mask),
}


def attention_mask_builder(name: str | None = None) -> tuple[str, Callable[[Any, Any, Any], Any]]:
    """The attention-mask builder for cached layers: ``name``, or the first available one.

    Returns
    -------
    (name, builder)
        ``builder(config, hidden, mask)`` maps a ``(batch, seq)`` 0/1 mask to what the encoder's
        layers take as ``attention_mask``.
    """
    from dataprune.errors import DataValidationError

    if name is not None:
        if name not in MASK_BUILDERS:
            raise DataValidationError(
                f"unknown attention-mask builder {name!r}; valid: {', '.join(MASK_BUILDERS)}"
            )
        available, build = MASK_BUILDERS[name]
        if not available():
            raise DataValidationError(f"attention-mask builder {name!r} is not available here")
        return name, build
    for key, (available, build) in MASK_BUILDERS.items():
        if available():
            return key, build
    raise AssertionError("the additive builder is always available")  # pragma: no cover


def n_frozen_layers(model: Any) -> int:
    """Bottom encoder layers that stay frozen during training (0: everything trains)."""
    from dataprune.rag.model import encoder_layers

    k = model.config.trainable_layers
    if k == -1:
        return 0
    n = len(encoder_layers(model.encoder))
    return max(0, n - min(k, n))


def cache_frozen_layers(
    model: Any,
    items: list[dict],
    n_frozen: int,
    *,
    pad_id: int,
    batch_size: int = 32,
    show_progress_bar: bool | None = None,
) -> None:
    """Store the input of layer ``n_frozen`` (float16, ``(len(window), hidden)``) in ``items[i]["h"]``."""
    import torch

    from dataprune.progress import progress
    from dataprune.rag.model import encoder_layers

    layer = encoder_layers(model.encoder)[n_frozen - 1]
    captured: dict[str, Any] = {}

    def hook(_mod: Any, _inp: Any, out: Any) -> None:
        captured["h"] = out[0] if isinstance(out, tuple) else out
        raise _StopForwardError

    handle = layer.register_forward_hook(hook)
    order = sorted(range(len(items)), key=lambda i: len(items[i]["ids"]))
    batches = [order[k : k + batch_size] for k in range(0, len(order), batch_size)]
    was = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for idx in progress(
                batches, show_progress_bar=show_progress_bar, desc="cache frozen layers"
            ):
                b = collate(items, np.asarray(idx), pad_id)
                with contextlib.suppress(_StopForwardError):
                    model.encoder(
                        input_ids=b["ids"], attention_mask=b["mask"], token_type_ids=b["types"]
                    )
                h = captured.pop("h")
                for r, i in enumerate(idx):
                    items[i]["h"] = h[r, : len(items[i]["ids"])].to(torch.float16).clone()
    finally:
        handle.remove()
        model.train(was)


def top_forward(
    model: Any,
    h: Any,
    mask: Any,
    seg: Any,
    em: Any,
    n_frozen: int,
    build_mask: Callable[[Any, Any, Any], Any],
) -> Any:
    """Run the trainable top layers and the heads on cached frozen-layer states ``h``."""
    from dataprune.rag.model import encoder_layers

    layer_mask = build_mask(model.encoder.config, h, mask)
    for layer in list(encoder_layers(model.encoder))[n_frozen:]:
        h = layer(h, layer_mask)
        if isinstance(h, tuple):
            h = h[0]
    return model.heads(h, seg, em)


def cached_path_matches(
    model: Any,
    items: list[dict],
    n_frozen: int,
    pad_id: int,
    build_mask: Callable[[Any, Any, Any], Any],
    *,
    tolerance: float = 1e-2,
) -> bool:
    """Whether the cached path reproduces the full forward pass on a few windows.

    Padding is exercised: the probe windows have different lengths when ``items`` do.
    """
    import torch

    lengths = np.array([len(it["ids"]) for it in items])
    idx = np.unique(np.r_[np.argsort(lengths, kind="stable")[:2], np.argsort(-lengths)[:2]])
    probe = [dict(items[i]) for i in idx]
    was = model.training
    try:
        cache_frozen_layers(model, probe, n_frozen, pad_id=pad_id, show_progress_bar=False)
        model.eval()
        with torch.inference_mode():
            b = collate(probe, np.arange(len(probe)), pad_id)
            full = model(b["ids"], b["mask"], b["types"], b["seg"], b["em"])
            hb = collate_states(probe, np.arange(len(probe)))
            top = top_forward(model, hb.float(), b["mask"], b["seg"], b["em"], n_frozen, build_mask)
        m = b["mask"].bool()
        diff = float((full.token_logits - top.token_logits)[m].abs().max())
    except Exception as exc:  # depends on the backbone's layer signature
        logger.warning(
            "cannot cache frozen layers for this backbone (%s: %s); training end to end",
            type(exc).__name__,
            exc,
        )
        return False
    finally:
        model.train(was)
    if diff > tolerance:
        logger.warning(
            "cached frozen-layer path differs from the full model (max |diff| %.3g); "
            "training end to end",
            diff,
        )
        return False
    return True
