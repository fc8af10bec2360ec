"""``CalibrationSet``: tokenised calibration samples with provenance, in every pruner's format."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dataprune.atomic import atomic_path
from dataprune.errors import DataValidationError

logger = logging.getLogger(__name__)

__all__ = ["CalibrationSet", "as_calibration_set"]


@dataclass(eq=False)
class CalibrationSet:
    """Calibration samples for model-side pruners (Wanda, SparseGPT, llm-compressor, ModelOpt).

    Samples are right-padded to ``seq_len``; ``attention_mask`` marks real tokens. Sets built with
    ``chunking="pack"`` have no padding at all.

    Attributes
    ----------
    input_ids : ndarray of shape (n_samples, seq_len), int64
    attention_mask : ndarray of shape (n_samples, seq_len), int64
        1 for real tokens, 0 for padding.
    provenance : dict
        How the samples were chosen: ``selector``, ``selector_params``, ``source_sha256``,
        ``chunking``, ``candidate_indices`` (chosen candidates, in selection order), ...
    texts : list of str or None
        The text of every sample (decoded tokens), for inspection.
    pad_token_id : int
        Token used for padding.
    tokenizer : object or None
        The tokenizer that produced the ids (not saved; needed by llm-compressor).
    """

    input_ids: np.ndarray
    attention_mask: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)
    texts: list[str] | None = None
    pad_token_id: int = 0
    tokenizer: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        ids = np.asarray(self.input_ids)
        mask = np.asarray(self.attention_mask)
        if ids.ndim != 2 or ids.shape[0] == 0 or ids.shape[1] == 0:
            raise DataValidationError(
                f"input_ids must have shape (n_samples, seq_len) with both > 0, got {ids.shape}"
            )
        if mask.shape != ids.shape:
            raise DataValidationError(
                f"attention_mask shape {mask.shape} differs from input_ids shape {ids.shape}"
            )
        if not np.issubdtype(ids.dtype, np.integer):
            raise DataValidationError(f"input_ids must be integers, got dtype {ids.dtype}")
        if not np.isin(mask, (0, 1)).all():
            raise DataValidationError("attention_mask must hold only 0 and 1")
        empty = np.flatnonzero(mask.sum(axis=1) == 0)
        if len(empty):
            raise DataValidationError("calibration sample has no tokens", record=int(empty[0]))
        self.input_ids = ids.astype(np.int64, copy=False)
        self.attention_mask = mask.astype(np.int64, copy=False)
        if self.texts is not None and len(self.texts) != ids.shape[0]:
            raise DataValidationError(
                f"{len(self.texts)} texts for {ids.shape[0]} calibration samples"
            )

    # -- sizes ------------------------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def seq_len(self) -> int:
        return int(self.input_ids.shape[1])

    @property
    def lengths(self) -> np.ndarray:
        """Real tokens per sample, shape (n_samples,)."""
        return self.attention_mask.sum(axis=1)

    @property
    def n_tokens(self) -> int:
        """Real (non-padding) tokens in the whole set."""
        return int(self.attention_mask.sum())

    @property
    def has_padding(self) -> bool:
        return bool((self.attention_mask == 0).any())

    @property
    def sample_sources(self) -> list[str] | None:
        """The source of every sample, or ``None`` when the provenance names none.

        From ``sample_sources`` (``build_calibration_set`` with ``sources=`` / ``source_field=``);
        for sets joined with :meth:`concatenate`, each part's sources, else the part's name;
        subsets follow their ``subset_indices``.
        """
        return _sample_sources(self.provenance, self.n_samples)

    def __len__(self) -> int:
        return self.n_samples

    def __repr__(self) -> str:
        sel = self.provenance.get("selector", "?")
        return (
            f"CalibrationSet(n_samples={self.n_samples}, seq_len={self.seq_len}, "
            f"n_tokens={self.n_tokens}, selector={sel!r})"
        )

    # -- formats ----------------------------------------------------------------------------------
    def to_tensor(self) -> dict[str, Any]:
        """A tensor batch ``{"input_ids", "attention_mask"}``, each (n_samples, seq_len) int64."""
        import torch

        return {
            "input_ids": torch.from_numpy(self.input_ids.copy()),
            "attention_mask": torch.from_numpy(self.attention_mask.copy()),
        }

    def to_list(self) -> list[Any]:
        """One ``(1, length)`` int64 tensor per sample with padding removed (the GPTQ / SparseGPT /
        Wanda reference-code format)."""
        import torch

        return [
            torch.from_numpy(self.input_ids[i, self.attention_mask[i].astype(bool)].copy())[None]
            for i in range(self.n_samples)
        ]

    def to_dataset(self) -> Any:
        """A ``datasets.Dataset`` with ``input_ids`` and ``attention_mask`` (padding removed, so
        llm-compressor's truncating collator never sees pad tokens)."""
        from datasets import Dataset

        keep = self.attention_mask.astype(bool)
        return Dataset.from_dict(
            {
                "input_ids": [self.input_ids[i, keep[i]].tolist() for i in range(self.n_samples)],
                "attention_mask": [[1] * int(keep[i].sum()) for i in range(self.n_samples)],
            }
        )

    def batches(self, batch_size: int = 8) -> Iterator[dict[str, Any]]:
        """Yield tensor batches ``{"input_ids", "attention_mask"}`` of up to ``batch_size`` samples,
        trimmed to the longest real sample in the batch."""
        import torch

        if batch_size < 1:
            raise DataValidationError(f"batch_size must be >= 1, got {batch_size}")
        for lo in range(0, self.n_samples, batch_size):
            mask = self.attention_mask[lo : lo + batch_size]
            width = int(np.flatnonzero(mask.any(axis=0)).max()) + 1
            yield {
                "input_ids": torch.from_numpy(self.input_ids[lo : lo + batch_size, :width].copy()),
                "attention_mask": torch.from_numpy(mask[:, :width].copy()),
            }

    def forward_loop(self, model: Any, *, batch_size: int = 1) -> None:
        """Run every sample through ``model`` (no gradients): the ``forward_loop(model)`` callable
        that NVIDIA ModelOpt and similar calibrators take (pass ``calib.forward_loop``)."""
        import torch

        device = _model_device(model)
        with torch.no_grad():
            for batch in self.batches(batch_size):
                model(**{k: v.to(device) for k, v in batch.items()}, use_cache=False)

    # -- persistence ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``.npz`` (ids, mask, texts, provenance); the tokenizer is not saved."""
        p = Path(path)
        if p.suffix != ".npz":
            raise DataValidationError("expected a path ending in .npz", source=str(path))
        with atomic_path(p) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(
                fh,
                input_ids=self.input_ids,
                attention_mask=self.attention_mask,
                pad_token_id=np.int64(self.pad_token_id),
                provenance=np.array(json.dumps(self.provenance, default=_json_default)),
                texts=np.array(json.dumps(self.texts)),
            )
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, tokenizer: Any = None) -> CalibrationSet:
        """Read a set written by :meth:`save`."""
        import zipfile

        if not zipfile.is_zipfile(path):
            raise DataValidationError(
                "not an .npz archive; expected a file written by CalibrationSet.save",
                source=os.fspath(path),
            )
        with np.load(path, allow_pickle=False) as z:
            return cls(
                input_ids=z["input_ids"],
                attention_mask=z["attention_mask"],
                provenance=json.loads(str(z["provenance"])),
                texts=json.loads(str(z["texts"])),
                pad_token_id=int(z["pad_token_id"]),
                tokenizer=tokenizer,
            )

    @classmethod
    def concatenate(
        cls, sets: Sequence[CalibrationSet], *, names: Sequence[str] | None = None
    ) -> CalibrationSet:
        """Stack calibration sets with the same ``seq_len`` (e.g. one selection per domain).

        The provenance lists every part's provenance under ``"parts"`` (with its name and sample
        range); the tokenizer and pad token come from the first set.
        """
        sets = list(sets)
        if not sets:
            raise DataValidationError("nothing to concatenate")
        if len({c.seq_len for c in sets}) != 1:
            raise DataValidationError(
                f"calibration sets have different seq_len: {[c.seq_len for c in sets]}"
            )
        if names is not None and len(names) != len(sets):
            raise DataValidationError(f"{len(names)} names for {len(sets)} calibration sets")
        parts, start = [], 0
        for i, c in enumerate(sets):
            name = names[i] if names is not None else str(i)
            parts.append({"name": name, "samples": [start, start + c.n_samples], **c.provenance})
            start += c.n_samples
        selectors = sorted({str(c.provenance.get("selector", "?")) for c in sets})
        texts = None if any(c.texts is None for c in sets) else [t for c in sets for t in c.texts]
        return cls(
            np.concatenate([c.input_ids for c in sets]),
            np.concatenate([c.attention_mask for c in sets]),
            {"selector": "+".join(selectors), "concatenated": True, "parts": parts},
            texts,
            sets[0].pad_token_id,
            sets[0].tokenizer,
        )

    def subset(self, indices: Sequence[int]) -> CalibrationSet:
        """A new set with the samples at ``indices`` (provenance notes the subset)."""
        idx = np.asarray(indices, dtype=np.int64)
        prov = {**self.provenance, "subset_of": self.n_samples, "subset_indices": idx.tolist()}
        return CalibrationSet(
            self.input_ids[idx],
            self.attention_mask[idx],
            prov,
            None if self.texts is None else [self.texts[i] for i in idx],
            self.pad_token_id,
            self.tokenizer,
        )


def _sample_sources(prov: Mapping[str, Any], n: int) -> list[str] | None:
    if "subset_indices" in prov and isinstance(prov.get("subset_of"), int):
        inner = {k: v for k, v in prov.items() if k not in ("subset_indices", "subset_of")}
        base = _sample_sources(inner, prov["subset_of"])
        return None if base is None else [base[i] for i in prov["subset_indices"]]
    if prov.get("concatenated") and isinstance(prov.get("parts"), list):
        out: list[str] = []
        for part in prov["parts"]:
            lo, hi = part["samples"]
            own = _sample_sources(part, hi - lo)
            out.extend(own if own is not None else [str(part.get("name", len(out)))] * (hi - lo))
        return out if len(out) == n else None
    s = prov.get("sample_sources")
    return [str(v) for v in s] if isinstance(s, list) and len(s) == n else None


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _model_device(model: Any) -> Any:
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return "cpu"


def as_calibration_set(obj: Any, *, pad_token_id: int = 0) -> CalibrationSet:
    """Accept a :class:`CalibrationSet`, a (n, seq_len) integer tensor/array, a mapping with
    ``input_ids`` (and optional ``attention_mask``), or a list of 1-D / (1, L) token tensors.

    Raises
    ------
    DataValidationError
        For anything else, or ragged/empty input.
    """
    if isinstance(obj, CalibrationSet):
        return obj
    if obj is None:
        raise DataValidationError(
            "this pruner needs calibration data: build one with "
            "dataprune.calibration.build_calibration_set(texts, tokenizer, ...)"
        )
    prov = {"selector": "user-provided"}
    if isinstance(obj, Mapping):
        if "input_ids" not in obj:
            raise DataValidationError("calibration mapping needs an 'input_ids' entry")
        ids = _to_numpy(obj["input_ids"])
        mask = _to_numpy(obj["attention_mask"]) if "attention_mask" in obj else np.ones_like(ids)
        return CalibrationSet(ids, mask, prov, pad_token_id=pad_token_id)
    if isinstance(obj, (list, tuple)):
        rows = [_to_numpy(t).reshape(-1) for t in obj]
        if not rows:
            raise DataValidationError("the calibration list is empty")
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), pad_token_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
        return CalibrationSet(ids, mask, prov, pad_token_id=pad_token_id)
    arr = _to_numpy(obj)
    if arr.ndim == 1:
        arr = arr[None]
    return CalibrationSet(arr, np.ones_like(arr), prov, pad_token_id=pad_token_id)


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except ValueError as exc:  # ragged nested lists
        raise DataValidationError(f"calibration input_ids are ragged: {exc}") from None
