"""Per-record scores over parquet/JSONL shards, resumable, on any engine: the public shard APIs.

Every input file is one *unit* of work, scored by a worker of
:mod:`~dataprune.distributed.workers` (a model loaded once per worker -- once per actor on Ray)
inside the resumable pipeline of :mod:`~dataprune.distributed.pipeline`: finished output shards
are kept, and a rerun skips them. :mod:`~dataprune.distributed.in_memory` runs the same
pipeline on in-memory texts and SFT pairs (:func:`embed_texts_distributed`,
:func:`lm_score_records`); this module re-exports them, the pipeline and the workers.

Output columns: ``shard`` (input file number, in sorted order), ``row`` (record position in that
file, counting bad lines), ``id`` (the ``id_field`` value, when given) and the scores:

* :func:`embed_shards`: ``embedding`` (fixed-size list of float32, L2-normalised);
* :func:`score_shards`: the columns of any ``scorer(records)`` (e.g. lengths, a classifier's
  probabilities);
* :func:`lm_score_shards`: ``el2n`` (mean response-token EL2N), ``nll`` (mean response-token
  negative log-likelihood), ``ppl`` (``exp(nll)``, Q-Tuning's perplexity), ``entropy`` (mean
  response-token predictive entropy, Q-Tuning's), ``entropy_all`` (over every predicted position),
  ``n_tokens`` (response tokens scored) and ``truncated``. Higher = harder for all of them.
  Records with an empty response get NaN and ``n_tokens = 0``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dataprune.distributed.in_memory import embed_texts_distributed, lm_score_records
from dataprune.distributed.pipeline import (
    _PIPELINE_FILE,
    ShardPipelineError,
    ShardRun,
    list_shards,
    run_shard_pipeline,
)
from dataprune.distributed.workers import (
    EmbedWorker,
    FunctionWorker,
    LMScoreWorker,
    ShardWorker,
    _model_id,
)
from dataprune.embeddings import DEFAULT_BATCH_SIZE
from dataprune.errors import DataValidationError

logger = logging.getLogger(__name__)

__all__ = [
    "EmbedWorker",
    "FunctionWorker",
    "LMScoreWorker",
    "ShardPipelineError",
    "ShardRun",
    "ShardWorker",
    "embed_shards",
    "embed_texts_distributed",
    "list_shards",
    "lm_score_records",
    "lm_score_shards",
    "read_embeddings",
    "read_shard_outputs",
    "run_shard_pipeline",
    "score_shards",
]


def score_shards(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str],
    scorer: Any,
    *,
    fields: Sequence[str],
    factory: bool = False,
    name: str | None = None,
    id_field: str | None = None,
    engine: Any = "local",
    concurrency: int | None = None,
    on_bad_record: str = "error",
    max_retries: int = 3,
    overwrite: bool = False,
    show_progress_bar: bool | None = None,
) -> ShardRun:
    """Any per-record score over shards, resumable (the generic form of :func:`embed_shards`).

    Parameters not listed here are as in :func:`embed_shards`.

    Parameters
    ----------
    scorer : callable or factory
        ``scorer(records: list[dict]) -> dict[str, array-like]`` (one value per record), or with
        ``factory=True`` a zero-argument callable returning such a function (built once per
        worker / Ray actor).
    fields : list of str
        Fields every record must have (validated with the record and file named on error).
    name : str, optional
        Identifies the scorer in the resume check (default: its qualified name); change it when
        the scorer's behaviour changes.
    """
    config = {
        "task": "score",
        "scorer": name or getattr(scorer, "__qualname__", type(scorer).__qualname__),
        "factory": factory,
        "fields": list(fields),
        "id_field": id_field,
        "on_bad_record": on_bad_record,
    }
    kwargs = {
        "scorer": scorer,
        "factory": factory,
        "required_fields": list(fields),
        "id_field": id_field,
        "on_bad_record": on_bad_record,
    }
    return run_shard_pipeline(
        inputs,
        output_dir,
        FunctionWorker,
        kwargs,
        config,
        engine=engine,
        concurrency=concurrency,
        max_retries=max_retries,
        overwrite=overwrite,
        show_progress_bar=show_progress_bar,
    )


def embed_shards(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str],
    *,
    text_field: str | None = None,
    text_fields: Sequence[str] | None = None,
    model: Any = None,
    id_field: str | None = None,
    engine: Any = "local",
    concurrency: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    chunk_size: int = 2048,
    normalize: bool = True,
    on_bad_record: str = "error",
    max_retries: int = 3,
    overwrite: bool = False,
    show_progress_bar: bool | None = None,
) -> ShardRun:
    """Embed every record of every input shard; resumable (see the module docstring).

    Parameters
    ----------
    inputs : path, glob or list of paths
        parquet / JSONL / JSON shards.
    output_dir : path
        Output shards (``shard``, ``row``, [``id``], ``embedding``).
    text_field, text_fields : str or list of str
        The text (several fields are joined by a blank line, as for SFT prompt + response).
    model : str, encoder object, or zero-argument factory, optional
        Encoder name/path for :func:`dataprune.models.load_encoder` (default all-MiniLM-L6-v2),
        an object with ``encode(list[str])`` (pickled to every worker), or a factory building one
        in the worker.
    engine : {"local", "ray"} or Engine
        Where to run.
    concurrency : int, optional
        Ray actors, each holding one model copy.

    Returns
    -------
    ShardRun
    """
    fields = _fields(text_field, text_fields)
    config = {
        "task": "embed",
        "model": _model_id(model, "encoder"),
        "text_fields": fields,
        "id_field": id_field,
        "normalize": normalize,
        "chunk_size": chunk_size,
        "batch_size": batch_size,
        "on_bad_record": on_bad_record,
    }
    kwargs = {
        "model": model,
        "text_fields": fields,
        "id_field": id_field,
        "on_bad_record": on_bad_record,
        "batch_size": batch_size,
        "chunk_size": chunk_size,
        "normalize": normalize,
    }
    return run_shard_pipeline(
        inputs,
        output_dir,
        EmbedWorker,
        kwargs,
        config,
        engine=engine,
        concurrency=concurrency,
        max_retries=max_retries,
        overwrite=overwrite,
        show_progress_bar=show_progress_bar,
    )


def lm_score_shards(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str],
    *,
    prompt_field: str,
    response_field: str,
    model: Any = None,
    id_field: str | None = None,
    engine: Any = "local",
    concurrency: int | None = None,
    batch_size: int = 8,
    max_length: int = 1024,
    use_chat_template: bool | None = None,
    compile_stats: bool = False,
    on_bad_record: str = "error",
    max_retries: int = 3,
    overwrite: bool = False,
    show_progress_bar: bool | None = None,
) -> ShardRun:
    """Score SFT records with a causal LM per response token; resumable.

    Columns ``el2n``, ``nll``, ``ppl``, ``entropy``, ``entropy_all``, ``n_tokens``, ``truncated``
    (see the module docstring), computed by :func:`dataprune.lm_scoring.score_sft` -- the core
    shared with :func:`dataprune.scores.lm_scores` and Q-Tuning -- so the values equal the
    in-process ones. Parameters not listed here are as in :func:`embed_shards` and
    :func:`dataprune.lm_scoring.score_sft`.

    Parameters
    ----------
    model : str, (model, tokenizer), or zero-argument factory returning one, optional
        Default SmolLM2-135M-Instruct (:func:`dataprune.models.load_causal_lm`).
    """
    config = {
        "task": "lm_scores",
        "model": _model_id(model, "lm")
        if not callable(model) or isinstance(model, tuple)
        else getattr(model, "__qualname__", repr(model)),
        "prompt_field": prompt_field,
        "response_field": response_field,
        "id_field": id_field,
        "max_length": max_length,
        "use_chat_template": use_chat_template,
        "on_bad_record": on_bad_record,
    }
    kwargs = {
        "model": model,
        "prompt_field": prompt_field,
        "response_field": response_field,
        "id_field": id_field,
        "on_bad_record": on_bad_record,
        "batch_size": batch_size,
        "max_length": max_length,
        "use_chat_template": use_chat_template,
        "compile_stats": compile_stats,
    }
    return run_shard_pipeline(
        inputs,
        output_dir,
        LMScoreWorker,
        kwargs,
        config,
        engine=engine,
        concurrency=concurrency,
        max_retries=max_retries,
        overwrite=overwrite,
        show_progress_bar=show_progress_bar,
    )


def _fields(text_field: str | None, text_fields: Sequence[str] | None) -> list[str]:
    if (text_field is None) == (text_fields is None):
        raise DataValidationError("give exactly one of text_field or text_fields")
    fields = [text_field] if text_field is not None else list(text_fields or [])
    if not fields or not all(isinstance(f, str) and f for f in fields):
        raise DataValidationError(f"text fields must be non-empty strings, got {fields!r}")
    return fields


def read_shard_outputs(output_dir: str | os.PathLike[str], *, columns: Sequence[str] | None = None):
    """Every finished output shard as one ``pyarrow.Table``, in (shard, row) order.

    Raises
    ------
    DataValidationError
        When a shard of the pipeline has not finished.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(output_dir)
    meta_path = out / _PIPELINE_FILE
    if not meta_path.is_file():
        raise DataValidationError(f"{str(out)!r} is not a shard pipeline output directory")
    meta = json.loads(meta_path.read_text())
    tables = []
    for i in range(int(meta["n_shards"])):
        key = f"part-{i:05d}"
        if not (out / f"{key}.done.json").is_file():
            raise DataValidationError(f"shard {key} in {str(out)!r} has not finished; rerun")
        tables.append(pq.read_table(out / f"{key}.parquet", columns=columns))
    return pa.concat_tables(tables)


def read_embeddings(
    output_dir: str | os.PathLike[str], *, memmap_path: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``embedding`` column of an :func:`embed_shards` output as a 2-D array.

    Parameters
    ----------
    memmap_path : path, optional
        Write the rows into this float32 file and return a read-only memory map (for embeddings
        larger than memory); default an in-memory array.

    Returns
    -------
    shard, row : ndarray of shape (n_samples,), int64
        The record ids.
    X : ndarray of shape (n_samples, dim), float32
    """
    import pyarrow.parquet as pq

    out = Path(output_dir)
    meta = json.loads((out / _PIPELINE_FILE).read_text())
    files = [out / f"part-{i:05d}.parquet" for i in range(int(meta["n_shards"]))]
    for f in files:
        if not Path(str(f)[: -len(".parquet")] + ".done.json").is_file():
            raise DataValidationError(f"shard {f.stem} in {str(out)!r} has not finished; rerun")
    counts = [pq.ParquetFile(f).metadata.num_rows for f in files]
    n = int(sum(counts))
    dim = None
    shard = np.empty(n, np.int64)
    row = np.empty(n, np.int64)
    X = None
    lo = 0
    for f, c in zip(files, counts):
        t = pq.read_table(f, columns=["shard", "row", "embedding"])
        emb = t.column("embedding").combine_chunks()
        d = emb.type.list_size
        if X is None:
            dim = d
            if memmap_path is not None:
                X = np.lib.format.open_memmap(
                    memmap_path, mode="w+", dtype=np.float32, shape=(n, d)
                )
            else:
                X = np.empty((n, d), np.float32)
        elif d != dim:
            raise DataValidationError(f"shard {f.stem} has dimension {d}, expected {dim}")
        X[lo : lo + c] = emb.flatten().to_numpy(zero_copy_only=False).reshape(c, d)
        shard[lo : lo + c] = t.column("shard").to_numpy()
        row[lo : lo + c] = t.column("row").to_numpy()
        lo += c
    if X is None:
        X = np.zeros((0, 0), np.float32)
    if memmap_path is not None and isinstance(X, np.memmap):
        X.flush()
        del X
        X = np.load(memmap_path, mmap_mode="r")
    return shard, row, X
