"""Shard workers: load a model once, then score one input shard after another.

A worker reads a unit planned by :func:`~dataprune.distributed.pipeline.run_shard_pipeline`,
validates its records, scores them and writes the output shard and its done record atomically:

* :class:`EmbedWorker`: a sentence encoder (``embedding``);
* :class:`LMScoreWorker`: a causal LM per response token (``el2n``, ``nll``, ``ppl``, ``entropy``,
  ``entropy_all``, ``n_tokens``, ``truncated``);
* :class:`FunctionWorker`: any ``scorer(records) -> {column: values}``.

A model is given as a name/path, an object or a zero-argument factory (:func:`_materialise`
builds it in the worker; :func:`_model_id` names it in the pipeline configuration).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from dataprune.atomic import atomic_path, atomic_write_json
from dataprune.embeddings import DEFAULT_BATCH_SIZE
from dataprune.errors import DataValidationError

logger = logging.getLogger(__name__)

__all__ = ["EmbedWorker", "FunctionWorker", "LMScoreWorker", "ShardWorker"]


class ShardWorker:
    """Reads one input shard, scores its records, writes the output shard atomically.

    Subclasses load their model in ``__init__`` and implement ``_columns(records) -> dict`` of
    equal-length arrays (or a fixed-size-list ``pyarrow`` array).
    """

    def __init__(
        self,
        *,
        text_fields: Sequence[str] = (),
        required_fields: Sequence[str] = (),
        id_field: str | None = None,
        on_bad_record: str = "error",
    ) -> None:
        self.text_fields = list(text_fields)
        self.required_fields = list(required_fields)
        self.id_field = id_field
        self.on_bad_record = on_bad_record

    def _columns(self, records: list[dict[str, Any]]) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def process(self, unit: dict[str, Any]) -> dict[str, Any]:
        import resource

        import pyarrow as pa
        import pyarrow.parquet as pq

        from dataprune.io import load_records, validate_fields

        t0 = time.perf_counter()
        path = unit["input"]
        try:
            rs = load_records(path, on_bad_record=self.on_bad_record)  # type: ignore[arg-type]
            rs = validate_fields(rs, text_fields=self.text_fields, on_bad_record=self.on_bad_record)
            must = [(f, "field") for f in self.required_fields]
            if self.id_field is not None:
                must.append((self.id_field, "id field"))
            for pos, r in zip(rs.indices, rs.records):
                for f, what in must:
                    if f not in r:
                        raise DataValidationError(
                            f"record has no {what} {f!r}", source=path, record=pos, field=f
                        )
        except DataValidationError as exc:
            if exc.source is not None:
                raise
            raise DataValidationError(
                exc.reason, source=path, record=exc.record, field=exc.field, line=exc.line
            ) from None
        cols = self._columns(rs.records)
        table: dict[str, Any] = {
            "shard": pa.array(np.full(len(rs.records), unit["shard"], np.int32)),
            "row": pa.array(np.asarray(rs.indices, dtype=np.int64)),
        }
        if self.id_field is not None:
            table["id"] = pa.array([r[self.id_field] for r in rs.records])
        table.update(cols)
        tbl = pa.table(table)
        with atomic_path(unit["output"]) as tmp:
            pq.write_table(tbl, tmp)
        seconds = time.perf_counter() - t0
        rec = {
            **{k: unit[k] for k in ("key", "input", "size", "mtime_ns", "config_hash")},
            "n_rows": len(rs.records),
            "n_rejected": len(rs.rejects),
            "seconds": seconds,
        }
        atomic_write_json(unit["done"], rec)
        rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {
            "key": unit["key"],
            "n_rows": len(rs.records),
            "n_rejected": len(rs.rejects),
            "seconds": seconds,
            "pid": os.getpid(),
            "peak_rss_mb": rss_kb / 1024.0,
        }


def _texts(records: list[dict[str, Any]], fields: list[str]) -> list[str]:
    if len(fields) == 1:
        return [r[fields[0]] for r in records]
    return ["\n\n".join(r[f] for f in fields) for r in records]


def _materialise(model: Any, loader: Any) -> Any:
    """A model object from a name/path (``loader``), a zero-argument factory, or the object."""
    if model is None or isinstance(model, (str, os.PathLike)):
        return loader(model)
    if callable(model) and not hasattr(model, "encode") and not hasattr(model, "forward"):
        return model()
    return model


class EmbedWorker(ShardWorker):
    """Embeds ``text_fields`` (joined by a blank line) with a sentence encoder.

    Texts are encoded ``chunk_size`` at a time with :func:`dataprune.embeddings._encode`, the
    call :func:`~dataprune.embeddings.embed_texts` makes (sentence-transformers sorts each call's
    texts by length). In-process embedding sorts all texts by length before chunking, so the
    batches differ and the two may differ in the last bits of float32.
    """

    def __init__(
        self,
        *,
        model: Any = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        chunk_size: int = 2048,
        normalize: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from dataprune.models import load_encoder

        self.model = _materialise(model, load_encoder)
        self.batch_size = batch_size
        self.chunk_size = chunk_size
        self.normalize = normalize

    def _columns(self, records):
        import pyarrow as pa

        from dataprune.embeddings import _encode

        texts = _texts(records, self.text_fields)
        parts = [
            _encode(self.model, texts[lo : lo + self.chunk_size], self.batch_size, self.normalize)
            for lo in range(0, len(texts), self.chunk_size)
        ]
        E = np.concatenate(parts, axis=0) if parts else np.zeros((0, 1), np.float32)
        flat = pa.array(np.ascontiguousarray(E, dtype=np.float32).ravel())
        return {"embedding": pa.FixedSizeListArray.from_arrays(flat, E.shape[1])}


class LMScoreWorker(ShardWorker):
    """Per-record LM scores of SFT pairs (EL2N per token, Q-Tuning PPL and entropy)."""

    def __init__(
        self,
        *,
        model: Any = None,
        prompt_field: str,
        response_field: str,
        batch_size: int = 8,
        max_length: int = 1024,
        use_chat_template: bool | None = None,
        compile_stats: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(text_fields=[prompt_field, response_field], **kwargs)
        from dataprune.models import load_causal_lm

        loaded = _materialise(model, load_causal_lm)
        if not (isinstance(loaded, tuple) and len(loaded) == 2):
            raise DataValidationError(
                "the LM must be a name/path, a (model, tokenizer) tuple or a factory returning one"
            )
        self.lm, self.tokenizer = loaded
        self.prompt_field = prompt_field
        self.response_field = response_field
        self.batch_size = batch_size
        self.max_length = max_length
        self.use_chat_template = use_chat_template
        self.compile_stats = compile_stats

    def _columns(self, records):
        from dataprune.lm_scoring import score_sft
        from dataprune.scores.el2n import _compute_token_el2n

        n = len(records)
        cols = {
            name: np.full(n, np.nan) for name in ("el2n", "nll", "ppl", "entropy", "entropy_all")
        }
        n_tokens = np.zeros(n, np.int64)
        truncated = np.zeros(n, bool)
        ok = [i for i, r in enumerate(records) if r[self.response_field].strip()]
        if ok:
            ts = score_sft(
                self.lm,
                self.tokenizer,
                [records[i][self.prompt_field] for i in ok],
                [records[i][self.response_field] for i in ok],
                batch_size=self.batch_size,
                max_length=self.max_length,
                use_chat_template=self.use_chat_template,
                compile_stats=self.compile_stats,
            )
            idx = np.asarray(ok)
            el2n = [
                _compute_token_el2n(p.astype(np.float64), s.astype(np.float64))
                for p, s in zip(ts.p_true, ts.sum_p2)
            ]
            cols["el2n"][idx] = [float(t.mean()) for t in el2n]
            cols["nll"][idx] = [float(np.mean(x)) for x in ts.nll]
            cols["ppl"][idx] = ts.perplexity()
            cols["entropy"][idx] = ts.mean_entropy("response")
            cols["entropy_all"][idx] = ts.entropy_all
            n_tokens[idx] = [len(x) for x in ts.nll]
            truncated[idx] = [e.truncated for e in ts.encodings]
        return {**cols, "n_tokens": n_tokens, "truncated": truncated}


class FunctionWorker(ShardWorker):
    """Any per-record score: ``scorer(records) -> {column: array of len(records)}``.

    ``scorer`` is the function itself, or (``factory=True``) a zero-argument factory called once
    per worker that returns it, so a model can be loaded once per actor.
    """

    def __init__(self, *, scorer: Any, factory: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scorer = scorer() if factory else scorer

    def _columns(self, records):
        cols = self.scorer(records)
        if not isinstance(cols, dict) or not cols:
            raise DataValidationError(
                "the scorer must return a non-empty dict of column name -> values per record"
            )
        for name, v in cols.items():
            if len(v) != len(records):
                raise DataValidationError(
                    f"the scorer returned {len(v)} values for column {name!r}, "
                    f"expected one per record ({len(records)})"
                )
        return cols


def _model_id(model: Any, kind: str) -> str:
    """The identity of a model given as a name/path (resolved), a ``(model, tokenizer)`` tuple or
    an object, for pipeline configurations and cache keys (``kind``: ``"encoder"`` or ``"lm"``)."""
    if model is None or isinstance(model, (str, os.PathLike)):
        from dataprune.models import resolve_causal_lm, resolve_encoder

        r = (resolve_encoder if kind == "encoder" else resolve_causal_lm)(model)
        return f"{r.name}@{r.version or r.source}"
    if isinstance(model, tuple):
        model = model[0]
    from dataprune.embeddings import model_identity

    return model_identity(model)
