"""Memoisation of the LM scores the curation stages compute, by their exact inputs (for
``benchmarks/curation_outcome.py``: the same IFD / LM scores serve every candidate and seed)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import fields as dc_fields
from pathlib import Path
from typing import Any

import numpy as np


def _hash_texts(h: Any, texts: Any) -> None:
    for t in texts:
        b = str(t).encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)


def _call_key(fn: str, model: Any, prompts: Any, responses: Any, kwargs: dict) -> str:
    from dataprune.embeddings import model_identity

    try:
        dtype = str(next(model.parameters()).dtype)
    except Exception:  # not a torch module: identity alone
        dtype = "?"
    h = hashlib.sha256()
    head = {"fn": fn, "model": model_identity(model), "dtype": dtype, "kwargs": kwargs}
    h.update(json.dumps(head, sort_keys=True, default=str).encode("utf-8"))
    _hash_texts(h, prompts)
    h.update(b"\0responses\0")
    _hash_texts(h, responses)
    return h.hexdigest()


class ScoreMemo:
    """Memoises the LM scoring functions the quality stage calls, by their exact inputs.

    ``ifd_scores`` and ``lm_scores`` results are stored under ``folder`` (npz of their arrays plus
    a JSON of the rest, no pickle), ``score_sft`` results in memory (the IFD conditioned pass and
    ``lm_scores`` make the identical call). Installed by replacing the module attributes the
    stages import at call time; :meth:`uninstall` restores them.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.hits: Counter[str] = Counter()
        self.misses: Counter[str] = Counter()
        self.seconds: Counter[str] = Counter()
        self._mem: dict[str, Any] = {}
        self._orig: dict[str, Any] = {}

    # -- storage
    def _save(self, key: str, obj: Any) -> None:
        from dataprune.atomic import atomic_path, atomic_write_json

        arrays, meta = {}, {"class": type(obj).__name__, "fields": {}}
        for f in dc_fields(obj):
            v = getattr(obj, f.name)
            if isinstance(v, np.ndarray):
                arrays[f.name] = v
                meta["fields"][f.name] = "array"
            elif isinstance(v, list) and all(isinstance(x, np.ndarray) for x in v):
                arrays[f.name] = np.concatenate(v) if v else np.zeros(0)
                arrays[f.name + "__len"] = np.array([len(x) for x in v], dtype=np.int64)
                meta["fields"][f.name] = "ragged"
            else:
                meta["fields"][f.name] = {"value": v}
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.folder / f"{key}.npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        atomic_write_json(self.folder / f"{key}.json", meta)

    def _load(self, key: str, cls: type) -> Any:
        npz, js = self.folder / f"{key}.npz", self.folder / f"{key}.json"
        if not (npz.is_file() and js.is_file()):
            return None
        try:
            meta = json.loads(js.read_text(encoding="utf-8"))
            with np.load(npz, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except (OSError, ValueError):
            return None
        kw: dict[str, Any] = {}
        for name, kind in meta["fields"].items():
            if kind == "array":
                kw[name] = data[name]
            elif kind == "ragged":
                cuts = np.cumsum(data[name + "__len"])[:-1]
                kw[name] = list(np.split(data[name], cuts)) if len(data[name + "__len"]) else []
            else:
                kw[name] = kind["value"]
        return cls(**kw)

    # -- wrappers
    def _disk_wrapper(self, name: str, fn: Any, cls: type) -> Any:
        memo = self

        def wrapped(model, tokenizer, prompts, responses, **kwargs):
            kw = {k: v for k, v in kwargs.items() if k != "show_progress_bar"}
            key = _call_key(name, model, prompts, responses, kw)
            got = memo._load(key, cls)
            if got is not None:
                memo.hits[name] += 1
                return got
            memo.misses[name] += 1
            t0 = time.perf_counter()
            out = fn(model, tokenizer, prompts, responses, **kwargs)
            memo.seconds[name] += time.perf_counter() - t0
            memo._save(key, out)
            return out

        return wrapped

    def _mem_wrapper(self, fn: Any) -> Any:
        memo = self

        def wrapped(model, tokenizer, prompts, responses, **kwargs):
            kw = {k: v for k, v in kwargs.items() if k != "show_progress_bar"}
            key = _call_key("score_sft", model, prompts, responses, {**kw, "id": id(model)})
            if key in memo._mem:
                memo.hits["score_sft"] += 1
                return memo._mem[key]
            memo.misses["score_sft"] += 1
            out = fn(model, tokenizer, prompts, responses, **kwargs)
            if len(memo._mem) >= 4:
                memo._mem.pop(next(iter(memo._mem)))
            memo._mem[key] = out
            return out

        return wrapped

    def install(self) -> ScoreMemo:
        import dataprune.lm_scoring as lm_scoring
        import dataprune.scores as scores
        from dataprune.scores.ifd import IFDScores
        from dataprune.scores.lm import LMScores

        self._orig = {
            "ifd_scores": scores.ifd_scores,
            "lm_scores": scores.lm_scores,
            "score_sft": lm_scoring.score_sft,
        }
        scores.ifd_scores = self._disk_wrapper("ifd_scores", self._orig["ifd_scores"], IFDScores)
        scores.lm_scores = self._disk_wrapper("lm_scores", self._orig["lm_scores"], LMScores)
        lm_scoring.score_sft = self._mem_wrapper(self._orig["score_sft"])
        return self

    @contextlib.contextmanager
    def active(self) -> Iterator[ScoreMemo]:
        """Installed for the duration of a ``with`` block (only curation scores are memoised:
        training and held-out evaluation score other models with the same identity)."""
        self.install()
        try:
            yield self
        finally:
            self.uninstall()

    def uninstall(self) -> None:
        import dataprune.lm_scoring as lm_scoring
        import dataprune.scores as scores

        if self._orig:
            scores.ifd_scores = self._orig["ifd_scores"]
            scores.lm_scores = self._orig["lm_scores"]
            lm_scoring.score_sft = self._orig["score_sft"]
            self._orig = {}

    def summary(self) -> dict[str, Any]:
        return {
            "hits": dict(self.hits),
            "misses": dict(self.misses),
            "compute_seconds": {k: round(v, 1) for k, v in self.seconds.items()},
        }
