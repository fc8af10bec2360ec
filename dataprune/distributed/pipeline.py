"""The resumable shard pipeline: plan the units, skip the finished ones, run a worker on the rest.

Every input file is one *unit* of work. A worker (:mod:`dataprune.distributed.workers`; a model
loaded once per worker -- once per actor on Ray, via ``ray.data`` ``map_batches`` with a callable
class) reads a unit, validates its records, scores them and writes ``OUTPUT_DIR/part-NNNNN.parquet``
atomically (temporary file, then rename), then ``part-NNNNN.done.json`` recording the input's size
and mtime and the pipeline's configuration hash. A rerun skips every unit whose done record
matches, so a worker killed mid-run loses only the units it was working on. ``_pipeline.json`` in
the output directory holds the configuration (and its hash) and the number of shards.
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

from dataprune.atomic import atomic_write_json
from dataprune.errors import DataPruneError, DataValidationError

logger = logging.getLogger(__name__)

__all__ = ["ShardPipelineError", "ShardRun", "list_shards", "run_shard_pipeline"]

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

    One unit per input file (``part-NNNNN``, in sorted order). Units whose done record matches the
    input (path, size, mtime) and the configuration hash are skipped, outputs of shards no longer
    in the input list are removed, and the rest go to the engine's ``map_shards``.

    Parameters
    ----------
    inputs : path, glob or list of paths
        Input shards (see :func:`list_shards`).
    output_dir : path
        Where ``part-NNNNN.parquet`` and their done records go.
    worker_cls, worker_kwargs
        A :class:`~dataprune.distributed.workers.ShardWorker` subclass and its constructor
        arguments (the model is loaded in the constructor: once per Ray actor).
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
