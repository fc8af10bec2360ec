"""Loading a :class:`~dataprune.rag.pruner.ContextPruner`: the code behind
:meth:`~dataprune.rag.pruner.ContextPruner.from_pretrained`.

Three kinds of source: ``"default"`` (the pruner shipped inside the package), a checkpoint folder
written by ``dataprune rag train``, or a Hugging Face hub id: a dataprune pruner checkpoint, or a
Provence remote-code model. A remote-code model runs its own Python code, so it loads only with
the user's explicit opt-in (``trust_remote_code``) and a pinned ``revision``; :class:`_RemoteProvence` adapts its outputs
to the ``token_logits`` / ``rank_logits`` the pruning code reads.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataprune.errors import ModelNotAvailableError

if TYPE_CHECKING:
    from dataprune.rag.pruner import ContextPruner

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_CHECKPOINT", "PROVENCE_IDS", "default_checkpoint_path", "load_context_pruner"]

DEFAULT_CHECKPOINT = "default"
# Remote-code models whose outputs this toolkit knows how to drive. Their Python code comes from
# the hub and runs on the user's machine: never implied: the user's own opt-in (``trust_remote_code``) plus a
# pinned ``revision`` (a commit hash) so the code that runs is the code the user looked at.
PROVENCE_IDS = frozenset(
    {"naver/provence-reranker-debertav3-v1", "naver/xprovence-reranker-bgem3-v1"}
)


def default_checkpoint_path() -> Path:
    """Folder of the pruner shipped inside the package."""
    return Path(__file__).resolve().parent / "checkpoints" / "default"


class _RemoteProvence:
    """Adapter: a Provence remote-code model -> ``token_logits`` / ``rank_logits`` outputs."""

    def __init__(self, model: Any, max_length: int = 512) -> None:
        self.model = model
        self.training = False
        self.config = type("Cfg", (), {"max_length": max_length, "max_query_tokens": 128})()

    def __call__(
        self,
        input_ids: Any,
        attention_mask: Any,
        token_type_ids: Any = None,
        segment_ids: Any = None,
        exact_match: Any = None,
    ) -> Any:
        import torch

        from dataprune.rag.model import PrunerOutput

        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        comp = getattr(out, "compression_logits", None)
        rank = getattr(out, "ranking_scores", None)
        if comp is None or rank is None:
            raise ModelNotAvailableError(
                "the remote model did not return 'compression_logits' and 'ranking_scores'; "
                "it is not a Provence-style pruner"
            )
        comp = comp.float()
        if comp.dim() == 3 and comp.shape[-1] == 2:
            # two-class softmax -> logit of the keep class
            keep = comp[..., 1] - comp[..., 0]
        else:
            keep = comp.reshape(comp.shape[0], comp.shape[1])
        rank = rank.float().reshape(rank.shape[0], -1)[:, 0]
        return PrunerOutput(keep, torch.as_tensor(rank))

    def eval(self) -> _RemoteProvence:
        self.model.eval()
        return self

    def to(self, device: Any) -> _RemoteProvence:
        self.model.to(device)
        return self


def load_context_pruner(
    cls: type[ContextPruner],
    name_or_path: str | os.PathLike[str],
    *,
    backbone: str | None,
    trust_remote_code: bool,
    revision: str | None,
    batch_size: int,
    device: str,
    precision: str,
) -> ContextPruner:
    """Load a pruner as an instance of ``cls``.

    Parameters
    ----------
    cls : type of ContextPruner
        The class to build (``ContextPruner`` or a subclass).
    name_or_path, backbone, trust_remote_code, revision, batch_size, device, precision
        See :meth:`~dataprune.rag.pruner.ContextPruner.from_pretrained`.

    Returns
    -------
    ContextPruner

    Raises
    ------
    ModelNotAvailableError
        When the model cannot be found or loaded (offline and not cached, wrong format).
    """
    from dataprune.rag.model import is_pruner_checkpoint, load_pruner_model

    name = str(name_or_path)
    if name == DEFAULT_CHECKPOINT:
        folder = default_checkpoint_path()
        if not is_pruner_checkpoint(folder):
            raise ModelNotAvailableError(
                f"the default pruner checkpoint is missing from the installed package "
                f"({folder}); reinstall dataprune or train one with `dataprune rag train`"
            )
        path: Path | None = folder
    else:
        p = Path(name).expanduser()
        path = p if p.exists() else None
    if path is not None:
        if not is_pruner_checkpoint(path):
            raise ModelNotAvailableError(
                f"{path} is not a dataprune pruner checkpoint (no pruner_config.json); "
                "write one with `dataprune rag train`"
            )
        model, tokenizer, meta = load_pruner_model(path, backbone=backbone)
        card = path / str(meta.get("card", "card.json"))
        if card.is_file():
            import json

            meta["card"] = json.loads(card.read_text())
        model.to(device)
        return cls(
            model,
            tokenizer,
            max_length=model.config.max_length,
            max_query_tokens=model.config.max_query_tokens,
            batch_size=batch_size,
            device=device,
            precision=precision,
            name=name,
            meta=meta,
        )
    return _from_hub(
        cls,
        name,
        trust_remote_code=trust_remote_code,
        revision=revision,
        batch_size=batch_size,
        device=device,
        precision=precision,
    )


def _from_hub(
    cls: type[ContextPruner],
    hub_id: str,
    *,
    revision: str | None,
    trust_remote_code: bool,
    batch_size: int,
    device: str,
    precision: str,
) -> ContextPruner:
    """Load ``hub_id`` from the hub: a dataprune checkpoint, or a Provence remote-code model."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import EntryNotFoundError, LocalEntryNotFoundError

    from dataprune.models import _hub_offline, _set_hub_timeouts, hub_error_reason

    _set_hub_timeouts()
    offline = _hub_offline()

    def fetch(filename: str) -> str | None:
        """The file's local path; ``None`` when the repository has no such file."""
        try:
            return hf_hub_download(hub_id, filename, revision=revision, local_files_only=offline)
        except LocalEntryNotFoundError as exc:
            if offline:  # not cached: that says nothing about what the repository holds
                return None
            raise ModelNotAvailableError(
                f"could not load {hub_id!r}: {hub_error_reason(exc, offline=offline)}"
            ) from exc
        except EntryNotFoundError:
            return None
        except Exception as exc:
            raise ModelNotAvailableError(
                f"could not load {hub_id!r}: {hub_error_reason(exc, offline=offline)}"
            ) from exc

    cfg = fetch("pruner_config.json")
    if cfg is not None:
        return cls.from_pretrained(
            Path(cfg).parent, batch_size=batch_size, device=device, precision=precision
        )
    model_cfg = fetch("config.json")
    if model_cfg is None:
        where = (
            "HF_HUB_OFFLINE is set and it is not in the local hub cache"
            if offline
            else "the repository has neither pruner_config.json nor config.json"
        )
        raise ModelNotAvailableError(
            f"could not load {hub_id!r}: {where}; use ContextPruner.from_pretrained('default') "
            "or a folder written by `dataprune rag train`"
        )
    import json

    remote_code = "auto_map" in json.loads(Path(model_cfg).read_text())
    known = hub_id.lower() in PROVENCE_IDS
    if not (remote_code or known):
        raise ModelNotAvailableError(
            f"{hub_id!r} is not a dataprune pruner checkpoint (no pruner_config.json) nor a "
            "Provence-style model; train one with `dataprune rag train`"
        )
    if not trust_remote_code:
        raise ModelNotAvailableError(
            f"{hub_id!r} is a remote-code model: loading it runs Python code from the hub on "
            "this machine. Review it, then opt in with trust_remote_code and pass "
            "revision='<commit hash>' (CLI: --trust-remote-code --revision)"
        )
    if not revision:
        raise ModelNotAvailableError(
            f"remote code runs only at a pinned revision: pass revision='<commit hash>' for "
            f"{hub_id!r} (its 'Files and versions' page on the hub lists the commits)"
        )
    logger.warning("running remote code of %s at revision %s", hub_id, revision)
    try:
        from transformers import AutoModel, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(
            hub_id, revision=revision, local_files_only=offline
        )
        model = AutoModel.from_pretrained(
            hub_id,
            revision=revision,
            trust_remote_code=trust_remote_code,  # the user's explicit opt-in (checked above)
            local_files_only=offline,
        )
    except Exception as exc:
        raise ModelNotAvailableError(
            f"could not load {hub_id!r} at revision {revision}: "
            f"{hub_error_reason(exc, offline=offline)}"
        ) from exc
    model.to(device)
    model.eval()
    max_len = int(getattr(model.config, "max_position_embeddings", 512) or 512)
    adapter = _RemoteProvence(model, max_length=min(512, max_len))
    return cls(
        adapter,
        tokenizer,
        max_length=min(512, max_len),
        batch_size=batch_size,
        device=device,
        precision=precision,
        name=hub_id,
        meta={"format": "remote-code", "hub_id": hub_id, "revision": revision},
    )
