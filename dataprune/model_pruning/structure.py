"""Find the parts of a model that weight pruners touch: decoder blocks and their linear layers.

Blocks are found generically, not by assuming ``model.model.layers``: the decoder stack is the
``nn.ModuleList`` of identical modules (same class) that holds linear layers and the most
parameters (``model.layers`` in Llama/Mistral/Qwen, ``transformer.h`` in GPT-2, ...). Embeddings,
the LM head and anything outside the blocks are never pruned.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dataprune.errors import DataPruneError

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_IGNORE",
    "LAYER_PARTS",
    "PrunableLayer",
    "UnsupportedModelError",
    "all_prunable_layers",
    "find_decoder_blocks",
    "layer_part",
    "prunable_layers",
]

# MoE routers are linear layers inside the blocks that must stay dense.
DEFAULT_IGNORE: tuple[str, ...] = (r"(^|\.)(gate|router)$",)


#: The two parts of a decoder block a linear layer can belong to (:func:`layer_part`).
LAYER_PARTS: tuple[str, ...] = ("attention", "mlp")

_ATTENTION_NAME = re.compile(r"attn|attention", re.IGNORECASE)


def layer_part(name: str) -> str:
    """Which part of its decoder block a linear layer belongs to, from its module name.

    ``"attention"`` when a dotted component of ``name`` contains ``attn`` or ``attention``
    (``self_attn.q_proj`` in Llama/Qwen/OPT, ``attn.c_attn`` in GPT-2, ``self_attention`` in
    Falcon), else ``"mlp"`` (``mlp.down_proj``, OPT's ``fc1``/``fc2``, ``feed_forward.*``).

    Parameters
    ----------
    name : str
        Full module name, e.g. ``"model.layers.3.self_attn.q_proj"``.

    Returns
    -------
    {"attention", "mlp"}
    """
    return "attention" if any(_ATTENTION_NAME.search(c) for c in name.split(".")) else "mlp"


class UnsupportedModelError(DataPruneError, ValueError):
    """The model has no structure the pruner can work on (e.g. no linear layers in blocks)."""


@dataclass
class PrunableLayer:
    """A linear layer inside a decoder block.

    Attributes
    ----------
    name : str
        Full module name in the model (``model.layers.3.mlp.down_proj``).
    module : torch.nn.Module
        ``nn.Linear`` or ``transformers.Conv1D`` (whose weight is stored transposed).
    transposed : bool
        True for ``Conv1D`` (weight of shape (in_features, out_features)).
    """

    name: str
    module: Any
    transposed: bool = False

    def weight_matrix(self) -> Any:
        """The weight as (out_features, in_features) (a view; ``Conv1D`` is transposed)."""
        w = self.module.weight.data
        return w.t() if self.transposed else w

    @property
    def shape(self) -> tuple[int, int]:
        out, inp = self.weight_matrix().shape
        return int(out), int(inp)


def _is_conv1d(module: Any) -> bool:
    # transformers.pytorch_utils.Conv1D (GPT-2 family): y = x @ W + b with W of shape (in, out)
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf") and hasattr(module, "weight")


def _is_linear(module: Any) -> bool:
    import torch

    return isinstance(module, torch.nn.Linear) or _is_conv1d(module)


def find_decoder_blocks(model: Any, block_path: str | None = None) -> tuple[str, list[Any]]:
    """Locate the repeated transformer blocks.

    Parameters
    ----------
    model : torch.nn.Module
        Any model.
    block_path : str, optional
        Dotted path of the block list (``"model.layers"``) to bypass the search.

    Returns
    -------
    path : str
        Dotted name of the ``nn.ModuleList``.
    blocks : list of torch.nn.Module
        The blocks in order.

    Raises
    ------
    UnsupportedModelError
        When no ``nn.ModuleList`` of identical modules with linear layers exists, or
        ``block_path`` does not name a module list.
    """
    import torch

    if not isinstance(model, torch.nn.Module):
        raise UnsupportedModelError(
            f"expected a torch.nn.Module (e.g. a Hugging Face causal LM), got {type(model).__name__}"
        )
    if block_path is not None:
        try:
            mod = model.get_submodule(block_path)
        except AttributeError:
            raise UnsupportedModelError(
                f"block_path {block_path!r} is not a submodule of {type(model).__name__}"
            ) from None
        if not isinstance(mod, (torch.nn.ModuleList, torch.nn.Sequential)) or len(mod) == 0:
            raise UnsupportedModelError(
                f"block_path {block_path!r} is a {type(mod).__name__}, expected a non-empty "
                "nn.ModuleList of decoder blocks"
            )
        return block_path, list(mod)
    best: tuple[int, int, str, Any] | None = None
    for name, mod in model.named_modules():
        if not isinstance(mod, torch.nn.ModuleList) or len(mod) == 0:
            continue
        if len({type(child) for child in mod}) != 1:
            continue
        if not any(_is_linear(m) for m in mod[0].modules()):
            continue
        n_params = sum(p.numel() for p in mod.parameters())
        key = (n_params, len(mod), name, mod)
        if best is None or key[:2] > best[:2]:
            best = key
    if best is None:
        n_lin = sum(_is_linear(m) for m in model.modules())
        raise UnsupportedModelError(
            f"{type(model).__name__} has no decoder blocks with linear layers to prune (found "
            f"{n_lin} linear layers but no nn.ModuleList of repeated blocks holding any); model "
            "pruners work on transformer LMs — pass block_path= to name the block list explicitly"
        )
    logger.debug("decoder blocks: %s (%d blocks, %d parameters)", best[2], best[1], best[0])
    return best[2], list(best[3])


def prunable_layers(
    block: Any, prefix: str, *, ignore: Sequence[str] = DEFAULT_IGNORE
) -> list[PrunableLayer]:
    """Linear layers of one block, in module order, minus names matching ``ignore`` (regexes).

    Embeddings and any ``lm_head`` are never returned.
    """
    pats = [re.compile(p) for p in ignore]
    out = []
    for name, mod in block.named_modules():
        if not name or not _is_linear(mod):
            continue
        full = f"{prefix}.{name}"
        if full.endswith("lm_head") or any(p.search(full) for p in pats):
            continue
        out.append(PrunableLayer(full, mod, transposed=_is_conv1d(mod)))
    return out


def all_prunable_layers(
    model: Any, *, block_path: str | None = None, ignore: Sequence[str] = DEFAULT_IGNORE
) -> tuple[str, list[Any], list[list[PrunableLayer]]]:
    """Blocks and, per block, its prunable layers; raises when there is nothing to prune."""
    path, blocks = find_decoder_blocks(model, block_path)
    layers = [prunable_layers(b, f"{path}.{i}", ignore=ignore) for i, b in enumerate(blocks)]
    if not any(layers):
        raise UnsupportedModelError(
            f"the decoder blocks at {path!r} hold no linear layers left to prune "
            f"(ignore patterns: {list(ignore)})"
        )
    return path, blocks, layers
