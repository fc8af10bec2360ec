"""In-memory inputs through the resumable shard pipeline.

:func:`embed_texts_distributed` (texts -> embeddings) and :func:`lm_score_records` (SFT pairs ->
LM scores) share one path, :meth:`_InMemoryRun.on_shards`: write the in-memory columns once as
parquet input shards under a work folder named by a cache key of the inputs and the model, run a
shard API of :mod:`~dataprune.distributed.shards` on them (on any engine) and return the folder
the outputs are read back from. A rerun with the same inputs and model resumes from the finished
shards. The folder names are a cache layout that reruns must find again::

    WORK_DIR/<embedding_cache_key>/shard{S}-chunk{C}-batch{B}/texts/       input shards
                                                             /embeddings/  embed_shards output
                                                             /embeddings.npy
    WORK_DIR/<sha256(model, prompts, responses)>/lm-shard{S}-len{L}/pairs/   input shards
                                                                   /scores/  lm_score_shards output

``WORK_DIR`` defaults to the ``distributed`` folder of the dataprune cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dataprune.atomic import atomic_path
from dataprune.distributed.workers import _model_id
from dataprune.embeddings import DEFAULT_BATCH_SIZE
from dataprune.errors import DataValidationError

logger = logging.getLogger(__name__)

__all__ = ["embed_texts_distributed", "lm_score_records"]

_LM_SCORE_COLUMNS = ("el2n", "nll", "ppl", "entropy", "entropy_all", "n_tokens", "truncated")


def _write_input_shards(directory: Path, columns: dict[str, list], shard_size: int) -> None:
    """Write equal-length ``columns`` as ``part-NNNNN.parquet`` shards of ``shard_size`` rows.

    Shards already on disk are kept (a rerun resumes); each new one is written atomically.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    n = len(next(iter(columns.values())))
    for i, lo in enumerate(range(0, n, shard_size)):
        path = directory / f"part-{i:05d}.parquet"
        if not path.is_file():
            tbl = pa.table({k: v[lo : lo + shard_size] for k, v in columns.items()})
            with atomic_path(path) as tmp:
                pq.write_table(tbl, tmp)


@dataclass(frozen=True)
class _InMemoryRun:
    """How an in-memory entry point runs a shard API: the root of its keyed work folders, the
    rows per input shard and the engine options (see :func:`embed_texts_distributed`)."""

    work_dir: str | os.PathLike[str] | None
    shard_size: int
    engine: Any
    concurrency: int | None
    max_retries: int
    show_progress_bar: bool | None

    def on_shards(
        self,
        shard_api: Callable[..., Any],
        columns: dict[str, list],
        folder: str,
        dirs: tuple[str, str],
        **api_kwargs: Any,
    ) -> Path:
        """Write in-memory ``columns`` as resumable input shards and run a shard API on them.

        Parameters
        ----------
        shard_api : callable
            ``shard_api(input_dir, output_dir, engine=..., concurrency=..., max_retries=...,
            show_progress_bar=..., **api_kwargs)``, e.g.
            :func:`~dataprune.distributed.shards.embed_shards`.
        columns : dict of str to list
            Equal-length columns, one input record per row.
        folder : str
            ``<cache key>/<layout>``, relative to ``work_dir``: the key names the inputs and the
            model, the layout the options that shape the shards.
        dirs : (str, str)
            Names of the input-shard and output-shard folders inside ``folder``.
        **api_kwargs
            The shard API's own options (fields, model, batch size, ...).

        Returns
        -------
        Path
            ``work_dir/folder``; the outputs are in its ``dirs[1]`` folder.
        """
        from dataprune.cache import cache_dir

        root = Path(self.work_dir) if self.work_dir is not None else cache_dir("distributed")
        base = root / folder
        inputs, outputs = dirs
        _write_input_shards(base / inputs, columns, self.shard_size)
        shard_api(
            base / inputs,
            base / outputs,
            engine=self.engine,
            concurrency=self.concurrency,
            max_retries=self.max_retries,
            show_progress_bar=self.show_progress_bar,
            **api_kwargs,
        )
        return base


def _check_rows(n_read: int, n_expected: int, what: str) -> None:
    """Fail when the outputs read back do not have one row per input (``what`` names them)."""
    if n_read != n_expected:
        raise RuntimeError(f"read {n_read} {what}")


def embed_texts_distributed(
    texts: Sequence[str],
    model: Any = None,
    *,
    engine: Any = "ray",
    work_dir: str | os.PathLike[str] | None = None,
    shard_size: int = 16384,
    batch_size: int = DEFAULT_BATCH_SIZE,
    chunk_size: int = 2048,
    concurrency: int | None = None,
    max_retries: int = 3,
    show_progress_bar: bool | None = None,
) -> np.ndarray:
    """Embed in-memory texts through the resumable shard pipeline; rows in input order.

    The texts are written once as parquet shards of ``shard_size`` rows under
    ``work_dir/<cache key>/`` (default: the dataprune cache), embedded by
    :func:`~dataprune.distributed.shards.embed_shards` on ``engine``, and read back as a memory
    map. A rerun with the same texts and model resumes from the finished shards. When
    ``shard_size`` is a multiple of ``chunk_size`` the encoder sees the same batches as
    :func:`dataprune.embeddings.embed_texts` (a warning says when not).

    Returns
    -------
    ndarray of shape (n_samples, dim), float32
        A read-only memory map.
    """
    from dataprune.distributed.shards import embed_shards, read_embeddings
    from dataprune.embeddings import embedding_cache_key

    texts = list(texts)
    if not texts:
        raise DataValidationError("no texts to embed; expected at least one")
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise DataValidationError(
            f"expected a string to embed, got {type(texts[bad]).__name__}", record=bad
        )
    if shard_size < 1 or chunk_size < 1:
        raise DataValidationError(
            f"shard_size and chunk_size must be >= 1, got {shard_size} and {chunk_size}"
        )
    if shard_size % chunk_size and len(texts) > shard_size:
        logger.warning(
            "shard_size %d is not a multiple of chunk_size %d: the encoder batches differ from "
            "in-process embed_texts, so embeddings may differ in the last bits",
            shard_size,
            chunk_size,
        )
    key = embedding_cache_key(_model_id(model, "encoder"), texts)
    run = _InMemoryRun(work_dir, shard_size, engine, concurrency, max_retries, show_progress_bar)
    base = run.on_shards(
        embed_shards,
        {"text": texts},
        f"{key}/shard{shard_size}-chunk{chunk_size}-batch{batch_size}",
        ("texts", "embeddings"),
        text_field="text",
        model=model,
        batch_size=batch_size,
        chunk_size=chunk_size,
    )
    npy = base / "embeddings.npy"
    if not npy.is_file():
        with atomic_path(npy) as tmp:
            read_embeddings(base / "embeddings", memmap_path=tmp)
    X = np.load(npy, mmap_mode="r")
    _check_rows(X.shape[0], len(texts), f"embeddings for {len(texts)} texts")
    return X


def lm_score_records(
    prompts: Sequence[str],
    responses: Sequence[str],
    model: Any = None,
    *,
    engine: Any = "ray",
    work_dir: str | os.PathLike[str] | None = None,
    shard_size: int = 4096,
    batch_size: int = 8,
    max_length: int = 1024,
    concurrency: int | None = None,
    max_retries: int = 3,
    show_progress_bar: bool | None = None,
) -> dict[str, np.ndarray]:
    """:func:`~dataprune.distributed.shards.lm_score_shards` for in-memory SFT pairs; one value
    per pair, in input order.

    The pairs are written once as parquet shards of ``shard_size`` rows under
    ``work_dir/<key>/`` (default: the dataprune cache) so a rerun resumes from the finished
    shards. Returns the columns ``el2n``, ``nll``, ``ppl``, ``entropy``, ``entropy_all``,
    ``n_tokens`` and ``truncated``.
    """
    from dataprune.distributed.shards import lm_score_shards, read_shard_outputs
    from dataprune.embeddings import texts_sha256

    prompts, responses = list(prompts), list(responses)
    if len(prompts) != len(responses) or not prompts:
        raise DataValidationError(
            f"expected equal, non-zero numbers of prompts and responses, got {len(prompts)} and "
            f"{len(responses)}"
        )
    if shard_size < 1:
        raise DataValidationError(f"shard_size must be >= 1, got {shard_size}")
    mid = _model_id(model, "lm") if not callable(model) or isinstance(model, tuple) else "factory"
    key = hashlib.sha256(
        f"{mid}\0{texts_sha256(prompts)}\0{texts_sha256(responses)}".encode()
    ).hexdigest()[:32]
    run = _InMemoryRun(work_dir, shard_size, engine, concurrency, max_retries, show_progress_bar)
    base = run.on_shards(
        lm_score_shards,
        {"prompt": prompts, "response": responses},
        f"{key}/lm-shard{shard_size}-len{max_length}",
        ("pairs", "scores"),
        prompt_field="prompt",
        response_field="response",
        model=model,
        batch_size=batch_size,
        max_length=max_length,
    )
    t = read_shard_outputs(base / "scores")
    _check_rows(t.num_rows, len(prompts), f"LM scores for {len(prompts)} records")
    return {c: t.column(c).to_numpy(zero_copy_only=False) for c in _LM_SCORE_COLUMNS}
