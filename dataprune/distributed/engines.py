"""Execution engines: ``"local"`` (in-process) and ``"ray"`` (a Ray cluster, local or remote).

An engine runs two kinds of work, and both engines run the *same* functions on the *same* inputs,
so their results are identical (see :mod:`dataprune.distributed.clustered`):

* :meth:`Engine.map` -- independent tasks (k-means assignment blocks, one task per cluster). The
  local engine calls them one after the other; the Ray engine submits them as Ray tasks with at most
  ``max_in_flight`` outstanding, so the driver never holds more than that many task inputs.
* :meth:`Engine.map_shards` -- a shard pipeline with a model loaded once per worker
  (:mod:`dataprune.distributed.shards`). The local engine builds one worker in-process; the Ray
  engine runs ``ray.data``'s ``map_batches`` with the worker as a callable class on an actor pool of
  ``concurrency`` actors.

``ray`` is imported only when a Ray engine is created (``pip install 'dataprune[ray]'``).
"""

from __future__ import annotations

import json
import logging
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from dataprune.errors import DataPruneError, DataValidationError
from dataprune.progress import progress
from dataprune.registry import Registry

logger = logging.getLogger(__name__)

__all__ = ["ENGINES", "Engine", "LocalEngine", "RayEngine", "get_engine"]


class Engine(ABC):
    """Base class of the execution engines (``map`` and ``map_shards`` are abstract)."""

    name = "engine"

    @abstractmethod
    def map(
        self,
        fn: Callable[..., Any],
        args: Iterable[tuple[Any, ...]],
        *,
        desc: str = "tasks",
        total: int | None = None,
        show_progress_bar: bool | None = None,
    ) -> list[Any]:
        """``[fn(*a) for a in args]``, in order."""

    @abstractmethod
    def map_shards(
        self,
        worker_cls: type,
        worker_kwargs: dict[str, Any],
        units: Sequence[dict[str, Any]],
        *,
        concurrency: int | None = None,
        max_retries: int = 3,
        show_progress_bar: bool | None = None,
    ) -> list[dict[str, Any]]:
        """Run ``worker_cls(**worker_kwargs)(unit)`` for every unit; one summary dict per unit."""

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class LocalEngine(Engine):
    """Everything in this process, sequentially (the reference the Ray engine must match)."""

    name = "local"

    def map(self, fn, args, *, desc="tasks", total=None, show_progress_bar=None):
        return [
            fn(*a)
            for a in progress(
                args, show_progress_bar=show_progress_bar, desc=desc, unit="task", total=total
            )
        ]

    def map_shards(
        self,
        worker_cls,
        worker_kwargs,
        units,
        *,
        concurrency=None,
        max_retries=3,
        show_progress_bar=None,
    ):
        if not units:
            return []
        worker = worker_cls(**worker_kwargs)
        out = []
        for unit in progress(
            units, show_progress_bar=show_progress_bar, desc="Shards", unit="shard"
        ):
            out.append(worker.process(unit))
        return out


def _ray_cause(exc: BaseException) -> BaseException:
    """The user exception inside a Ray task / Ray Data error, when there is one."""
    seen = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, DataPruneError):
            return cur
        cause = getattr(cur, "cause", None)
        if isinstance(cause, BaseException):
            cur = cause
            continue
        cur = cur.__cause__ or cur.__context__
    # Ray Data keeps only the worker's traceback text: recover the toolkit's error from it
    import re

    from dataprune import errors

    found = re.findall(r"dataprune\.errors\.(\w+): ([^\n]+)", str(exc))
    if found:
        name, message = found[-1]
        cls = getattr(errors, name, None)
        if isinstance(cls, type) and issubclass(cls, DataPruneError):
            return cls(message.strip())
    return exc


class RayEngine(Engine):
    """Run tasks and shard pipelines on Ray.

    Parameters
    ----------
    address : str, optional
        Cluster address for ``ray.init`` (``"auto"``, ``"ray://host:10001"``, ...). Default: reuse
        a running ``ray.init`` of this process, else start a local Ray on this machine.
    num_cpus : int, optional
        CPUs of a locally started Ray (default: all).
    max_in_flight : int, optional
        Outstanding :meth:`map` tasks (default ``2 * cluster CPUs``): bounds the driver's and the
        object store's memory to that many task inputs.
    init_kwargs : dict, optional
        Extra ``ray.init`` arguments (e.g. ``runtime_env``).
    """

    name = "ray"

    def __init__(
        self,
        *,
        address: str | None = None,
        num_cpus: int | None = None,
        max_in_flight: int | None = None,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.max_in_flight = max_in_flight
        self.init_kwargs = init_kwargs
        self._started = False
        _ = self.ray  # a missing ``ray`` extra fails here, with the install hint; nothing starts

    @property
    def ray(self) -> Any:
        """The ``ray`` module (an install hint if the ``ray`` extra is missing)."""
        from dataprune.optional import require

        ray = require("ray", "ray", purpose="the Ray engine")
        require("ray.data", "ray", purpose="the Ray engine")
        return ray

    def start(self) -> RayEngine:
        """Connect to (or start) Ray now; every method does this on first use."""
        self._ensure_init()
        return self

    def _ensure_init(self) -> None:
        ray = self.ray
        if ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False}
        if logging.getLogger("dataprune").getEffectiveLevel() > logging.INFO:
            # quiet callers (dataprune -q, the demo) get Ray's errors only, not its start-up notes
            kwargs["logging_level"] = logging.ERROR
        if self.address is None:
            kwargs["include_dashboard"] = False
            if self.num_cpus is not None:
                kwargs["num_cpus"] = int(self.num_cpus)
        else:
            kwargs["address"] = self.address
        kwargs.update(self.init_kwargs or {})
        try:
            ray.init(**kwargs)
        except ConnectionError as exc:
            raise DataPruneError(
                f"could not connect to the Ray cluster at {self.address!r}: {exc}"
            ) from exc
        self._started = True
        logger.info("Ray started: %s", ray.cluster_resources())

    def cluster_cpus(self) -> int:
        self._ensure_init()
        return max(1, int(self.ray.cluster_resources().get("CPU", 1)))

    def describe(self) -> dict[str, Any]:
        return {
            "engine": self.name,
            "address": self.address,
            "ray_version": self.ray.__version__,
            "cluster_cpus": self.cluster_cpus(),
        }

    def shutdown(self) -> None:
        """Stop the Ray runtime if this engine started it."""
        if self._started and self.ray.is_initialized():
            self.ray.shutdown()
        self._started = False

    def map(self, fn, args, *, desc="tasks", total=None, show_progress_bar=None):
        self._ensure_init()
        ray = self.ray
        remote = ray.remote(num_cpus=1)(fn)
        window = self.max_in_flight or 2 * self.cluster_cpus()
        results: dict[int, Any] = {}
        pending: dict[Any, int] = {}
        bar = progress(total=total, show_progress_bar=show_progress_bar, desc=desc, unit="task")
        n = 0
        try:

            def drain(block_until: int) -> None:
                nonlocal pending
                while len(pending) > block_until:
                    done, _ = ray.wait(list(pending), num_returns=1)
                    for ref in done:
                        results[pending.pop(ref)] = ray.get(ref)
                        bar.update(1)

            for a in args:
                refs = [ray.put(x) if _is_big(x) else x for x in a]
                pending[remote.remote(*refs)] = n
                n += 1
                drain(window - 1)
            drain(0)
        except Exception as exc:
            for ref in pending:
                ray.cancel(ref, force=True)
            cause = _ray_cause(exc)
            if cause is not exc:
                raise cause from None
            raise
        finally:
            bar.close()
        return [results[i] for i in range(n)]

    def map_shards(
        self,
        worker_cls,
        worker_kwargs,
        units,
        *,
        concurrency=None,
        max_retries=3,
        show_progress_bar=None,
    ):
        if not units:
            return []
        self._ensure_init()
        import ray.data

        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = bool(show_progress_bar)
        conc = int(concurrency or min(len(units), self.cluster_cpus()))
        if conc < 1:
            raise DataValidationError(f"concurrency must be >= 1, got {concurrency}")
        ds = ray.data.from_items(
            [{"unit": json.dumps(u)} for u in units], override_num_blocks=len(units)
        )
        data_logger = logging.getLogger("ray.data")
        level = data_logger.level
        if not show_progress_bar:  # Ray Data logs progress at INFO/WARNING: quiet unless asked
            data_logger.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                # restarts/retries are only settable through ray_remote_args, deprecated in 2.60
                warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated.*")
                ds = ds.map_batches(
                    _ShardActor,
                    fn_constructor_kwargs={
                        "worker_cls": worker_cls,
                        "worker_kwargs": worker_kwargs,
                    },
                    batch_size=1,
                    batch_format="pandas",
                    compute=ray.data.ActorPoolStrategy(size=conc),
                    num_cpus=1,
                    max_restarts=int(max_retries),
                    max_task_retries=int(max_retries),
                )
            rows = ds.take_all()
        except Exception as exc:
            cause = _ray_cause(exc)
            if cause is not exc:
                raise cause from None
            raise
        finally:
            data_logger.setLevel(level)
        by_key = {r["key"]: r for r in rows}
        return [_summary(by_key[u["key"]]) for u in units if u["key"] in by_key]


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}


class _ShardActor:
    """Ray Data callable class: builds the worker (loads the model) once per actor."""

    def __init__(self, worker_cls: type, worker_kwargs: dict[str, Any]) -> None:
        self.worker = worker_cls(**worker_kwargs)

    def __call__(self, batch):
        import pandas as pd

        rows = [self.worker.process(json.loads(u)) for u in batch["unit"]]
        return pd.DataFrame(rows)


def _is_big(x: Any) -> bool:
    nbytes = getattr(x, "nbytes", 0)
    return isinstance(nbytes, int) and nbytes > 1 << 20


ENGINES: Registry[type[Engine]] = Registry("engine")
ENGINES.register("local", LocalEngine)
ENGINES.register("ray", RayEngine)


def get_engine(engine: str | Engine | None = "local", **kwargs: Any) -> Engine:
    """An engine instance from a name (``"local"``, ``"ray"``) or an :class:`Engine`.

    Keyword arguments go to the engine class (``address``, ``num_cpus``, ... for Ray); unknown
    names fail with the valid ones.
    """
    if isinstance(engine, Engine):
        return engine
    cls = ENGINES.get("local" if engine is None else engine)
    if cls is LocalEngine:
        return LocalEngine()
    return cls(**{k: v for k, v in kwargs.items() if v is not None})
