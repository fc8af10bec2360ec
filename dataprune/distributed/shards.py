"""Per-record scores over parquet/JSONL shards, resumable, on any engine.

Every input file is one *unit* of work. A worker (a model loaded once per worker -- once per
actor on Ray, via ``ray.data`` ``map_batches`` with a callable class) reads a unit, validates its
records, scores them and writes ``OUTPUT_DIR/part-NNNNN.parquet`` atomically (temporary file, then
rename), then ``part-NNNNN.done.json`` recording the input's size and mtime and the pipeline's
configuration hash. A rerun skips every unit whose done record matches, so a worker killed mid-run
loses only the units it was working on.

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

import glob
import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dataprune.atomic import atomic_path, atomic_write_json
from dataprune.errors import DataPruneError, DataValidationError

logger = logging.getLogger(__name__)

__all__ = [
    "ShardPipelineError",
    "ShardRun",
    "embed_shards",
    "list_shards",
    "lm_score_shards",
    "read_embeddings",
    "read_shard_outputs",
    "run_shard_pipeline",
    "score_shards",
]

_SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz", ".json")
_PIPELINE_FILE = "_pipeline.json"


class ShardPipelineError(DataPruneError, RuntimeError):
    """A worker died (or Ray failed) mid-run; the finished shards are kept for a rerun."""


@dataclass
class ShardRun:
    """What :func:`run_shard_pipeline` did.

    Attributes
    ----------
    output_dir : Path
    n_shards : int
        Input shards (units) in the pipeline.
    skipped : list of str
        Units already finished by an earlier run (resumed, not recomputed).
    processed : list of dict
        One summary per unit computed in this run: ``key``, ``n_rows``, ``n_rejected``,
        ``seconds``, ``pid``, ``peak_rss_mb`` (of the worker process).
    seconds : float
        Wall time of this run.
    """

    output_dir: Path
    n_shards: int
    skipped: list[str] = field(default_factory=list)
    processed: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def n_rows(self) -> int:
        return int(sum(p["n_rows"] for p in self.processed))


def list_shards(inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Input files, sorted: a directory (its ``*.parquet``/``*.jsonl``/``*.jsonl.gz``/``*.json``),
    a glob pattern, a file, or a list of files."""
    if isinstance(inputs, (str, os.PathLike)):
        p = Path(inputs)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and f.name.endswith(_SUFFIXES))
        elif p.is_file():
            files = [p]
        else:
            files = sorted(Path(f) for f in glob.glob(str(inputs)))
    else:
        files = [Path(f) for f in inputs]
    if not files:
        raise DataValidationError(
            f"no input shards found at {inputs!r}; expected parquet/JSONL/JSON files"
        )
    for f in files:
        if not f.is_file():
            raise DataValidationError(f"input shard {str(f)!r} does not exist")
        if not f.name.endswith(_SUFFIXES):
            raise DataValidationError(
                f"input shard {str(f)!r} is not a supported format; expected one of "
                f"{', '.join(_SUFFIXES)}"
            )
    return files


def _config_hash(config: dict[str, Any]) -> str:
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _plan(files: list[Path], output_dir: Path, config_hash: str) -> list[dict[str, Any]]:
    units = []
    for i, f in enumerate(files):
        st = f.stat()
        key = f"part-{i:05d}"
        units.append(
            {
                "key": key,
                "shard": i,
                "input": str(f.resolve()),
                "size": int(st.st_size),
                "mtime_ns": int(st.st_mtime_ns),
                "output": str(output_dir / f"{key}.parquet"),
                "done": str(output_dir / f"{key}.done.json"),
                "config_hash": config_hash,
            }
        )
    return units


def _is_done(unit: dict[str, Any]) -> bool:
    done, out = Path(unit["done"]), Path(unit["output"])
    if not (done.is_file() and out.is_file()):
        return False
    try:
        rec = json.loads(done.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return all(rec.get(k) == unit[k] for k in ("input", "size", "mtime_ns", "config_hash"))


def run_shard_pipeline(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str],
    worker_cls: type,
    worker_kwargs: dict[str, Any],
    config: dict[str, Any],
    *,
    engine: Any = "local",
    concurrency: int | None = None,
    max_retries: int = 3,
    overwrite: bool = False,
    show_progress_bar: bool | None = None,
) -> ShardRun:
    """Run a shard worker over every unfinished input shard (resumable).

    Parameters
    ----------
    inputs : path, glob or list of paths
        Input shards (see :func:`list_shards`).
    output_dir : path
        Where ``part-NNNNN.parquet`` and their done records go.
    worker_cls, worker_kwargs
        A :class:`ShardWorker` subclass and its constructor arguments (the model is loaded in the
        constructor: once per Ray actor).
    config : dict
        Everything that determines the outputs (model identity, fields, options); its hash is
        stored with every finished shard, and an ``output_dir`` holding another configuration is
        refused unless ``overwrite=True``.
    engine : str or Engine, default="local"
        ``"local"``, ``"ray"`` or an engine instance.
    concurrency : int, optional
        Ray actors (default: one per cluster CPU, at most one per pending shard).
    max_retries : int, default=3
        Ray actor restarts / task retries after a worker dies; with 0 the run stops at the first
        dead worker (finished shards are kept either way).
    overwrite : bool, default=False
        Start over in an ``output_dir`` written with another configuration.

    Returns
    -------
    ShardRun
    """
    from dataprune.distributed.engines import get_engine

    t0 = time.perf_counter()
    files = list_shards(inputs)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    h = _config_hash(config)
    meta_path = out / _PIPELINE_FILE
    if meta_path.is_file():
        old = json.loads(meta_path.read_text())
        if old.get("config_hash") != h:
            if not overwrite:
                raise DataValidationError(
                    f"{str(out)!r} holds shards of another pipeline configuration "
                    f"({old.get('config')}); use another output directory or overwrite=True"
                )
            for f in list(out.glob("part-*.parquet")) + list(out.glob("part-*.done.json")):
                f.unlink()
    atomic_write_json(meta_path, {"config_hash": h, "config": config, "n_shards": len(files)})
    units = _plan(files, out, h)
    for stale in out.glob("part-*.parquet"):  # outputs of shards no longer in the input list
        if int(stale.stem.split("-")[1]) >= len(units):
            stale.unlink()
            Path(str(stale)[: -len(".parquet")] + ".done.json").unlink(missing_ok=True)
    todo = [u for u in units if not _is_done(u)]
    skipped = [u["key"] for u in units if _is_done(u)]
    if skipped:
        logger.info("resuming %s: %d of %d shards already finished", out, len(skipped), len(units))
    eng = get_engine(engine)
    try:
        processed = eng.map_shards(
            worker_cls,
            worker_kwargs,
            todo,
            concurrency=concurrency,
            max_retries=max_retries,
            show_progress_bar=show_progress_bar,
        )
    except DataPruneError:
        raise
    except Exception as exc:
        n_done = sum(_is_done(u) for u in units)
        first = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        raise ShardPipelineError(
            f"the shard pipeline stopped ({type(exc).__name__}: {first.strip()[:200]}); "
            f"{n_done} of {len(units)} shards are finished and kept in {str(out)!r}; "
            "rerun the same command to resume"
        ) from exc
    missing = [u["key"] for u in todo if not _is_done(u)]
    if missing:
        raise RuntimeError(f"shards {', '.join(missing[:5])} did not finish; rerun to resume")
    return ShardRun(out, len(units), skipped, processed, time.perf_counter() - t0)


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
    call :func:`~dataprune.embeddings.embed_texts` makes, so shards whose row offsets are
    multiples of ``chunk_size`` are batched exactly as in-process embedding batches them.
    """

    def __init__(
        self,
        *,
        model: Any = None,
        batch_size: int = 64,
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
    Other parameters
        As in :func:`embed_shards`.
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


def _model_id(model: Any, kind: str) -> str:
    if model is None or isinstance(model, (str, os.PathLike)):
        from dataprune.models import resolve_causal_lm, resolve_encoder

        r = (resolve_encoder if kind == "encoder" else resolve_causal_lm)(model)
        return f"{r.name}@{r.version or r.source}"
    if isinstance(model, tuple):
        model = model[0]
    from dataprune.embeddings import model_identity

    return model_identity(model)


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
    batch_size: int = 64,
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
    in-process ones.

    Parameters
    ----------
    model : str, (model, tokenizer), or zero-argument factory returning one, optional
        Default SmolLM2-135M-Instruct (:func:`dataprune.models.load_causal_lm`).
    Other parameters
        As in :func:`embed_shards` and :func:`dataprune.lm_scoring.score_sft`.
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


def embed_texts_distributed(
    texts: Sequence[str],
    model: Any = None,
    *,
    engine: Any = "ray",
    work_dir: str | os.PathLike[str] | None = None,
    shard_size: int = 16384,
    batch_size: int = 64,
    chunk_size: int = 2048,
    concurrency: int | None = None,
    max_retries: int = 3,
    show_progress_bar: bool | None = None,
) -> np.ndarray:
    """Embed in-memory texts through the resumable shard pipeline; rows in input order.

    The texts are written once as parquet shards of ``shard_size`` rows under
    ``work_dir/<cache key>/`` (default: the dataprune cache), embedded by :func:`embed_shards`
    on ``engine``, and read back as a memory map. A rerun with the same texts and model resumes
    from the finished shards. When ``shard_size`` is a multiple of ``chunk_size`` the encoder sees
    the same batches as :func:`dataprune.embeddings.embed_texts` (a warning says when not).

    Returns
    -------
    ndarray of shape (n_samples, dim), float32
        A read-only memory map.
    """

    from dataprune.cache import cache_dir
    from dataprune.embeddings import embedding_cache_key

    texts = list(texts)
    if not texts:
        raise DataValidationError("no texts to embed; expected at least one")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise DataValidationError(
                f"expected a string to embed, got {type(t).__name__}", record=i
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
    root = Path(work_dir) if work_dir is not None else cache_dir("distributed")
    base = root / key / f"shard{shard_size}-chunk{chunk_size}-batch{batch_size}"
    texts_dir = base / "texts"
    _write_input_shards(texts_dir, {"text": texts}, shard_size)
    embed_shards(
        texts_dir,
        base / "embeddings",
        text_field="text",
        model=model,
        engine=engine,
        concurrency=concurrency,
        batch_size=batch_size,
        chunk_size=chunk_size,
        max_retries=max_retries,
        show_progress_bar=show_progress_bar,
    )
    npy = base / "embeddings.npy"
    if not npy.is_file():
        with atomic_path(npy) as tmp:
            read_embeddings(base / "embeddings", memmap_path=tmp)
    X = np.load(npy, mmap_mode="r")
    if X.shape[0] != len(texts):
        raise RuntimeError(f"read {X.shape[0]} embeddings for {len(texts)} texts")
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
    """:func:`lm_score_shards` for in-memory SFT pairs; one value per pair, in input order.

    The pairs are written once as parquet shards of ``shard_size`` rows under
    ``work_dir/<key>/`` (default: the dataprune cache) so a rerun resumes from the finished
    shards. Returns the columns ``el2n``, ``nll``, ``ppl``, ``entropy``, ``entropy_all``,
    ``n_tokens`` and ``truncated``.
    """

    from dataprune.cache import cache_dir
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
    root = Path(work_dir) if work_dir is not None else cache_dir("distributed")
    base = root / key / f"lm-shard{shard_size}-len{max_length}"
    pairs_dir = base / "pairs"
    _write_input_shards(pairs_dir, {"prompt": prompts, "response": responses}, shard_size)
    lm_score_shards(
        pairs_dir,
        base / "scores",
        prompt_field="prompt",
        response_field="response",
        model=model,
        engine=engine,
        concurrency=concurrency,
        batch_size=batch_size,
        max_length=max_length,
        max_retries=max_retries,
        show_progress_bar=show_progress_bar,
    )
    t = read_shard_outputs(base / "scores")
    if t.num_rows != len(prompts):
        raise RuntimeError(f"read {t.num_rows} LM scores for {len(prompts)} records")
    return {
        c: t.column(c).to_numpy(zero_copy_only=False)
        for c in ("el2n", "nll", "ppl", "entropy", "entropy_all", "n_tokens", "truncated")
    }
