"""Atomic file output: write to a temporary file in the target directory, then rename.

The temporary file is created private (mode 0600, as :func:`tempfile.mkstemp` does); before the
rename it gets the mode a plain ``open(path, "w")`` would give: the existing file's mode when it
replaces one, else ``0666`` less the process umask. Folders built the same way
(:func:`publish_mode` on a :func:`tempfile.mkdtemp` folder) get ``0777`` less the umask.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_dir",
    "atomic_path",
    "atomic_write",
    "atomic_write_json",
    "publish_mode",
    "umask",
]


def umask() -> int:
    """The process umask (read without changing it where the kernel reports it)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # no /proc: the classic set-and-restore
    os.umask(mask)
    return mask


def publish_mode(tmp: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Give ``tmp`` (about to be renamed onto ``target``) the mode a normal write would give."""
    tmp, target = Path(tmp), Path(target)
    try:
        mode = target.stat().st_mode & 0o7777 if target.exists() else None
    except OSError:
        mode = None
    if mode is None:
        mode = (0o777 if tmp.is_dir() else 0o666) & ~umask()
    os.chmod(tmp, mode)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``.

    Use for writers that want a file name (pyarrow, matplotlib, numpy). On error the temporary
    file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        publish_mode(tmp_path, target)
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], mode: str = "w", encoding: str | None = "utf-8"
) -> Iterator[IO[Any]]:
    """Open a temporary file for writing; fsync and rename it onto ``path`` on success."""
    binary = "b" in mode
    with atomic_path(path) as tmp, open(tmp, mode, encoding=None if binary else encoding) as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_json(
    path: str | os.PathLike[str], obj: Any, *, indent: int = 2, nan_as_null: bool = False
) -> None:
    """Serialise ``obj`` as JSON to ``path`` atomically.

    With ``nan_as_null`` every float NaN or infinity (in dicts, lists and tuples, also numpy
    floats) is written as ``null`` and the file is strict JSON (``allow_nan=False``); otherwise
    Python's ``NaN`` / ``Infinity`` tokens are written as ``json.dump`` does.
    """
    import json

    if nan_as_null:
        obj = _finite_or_null(obj)
    with atomic_write(path) as fh:
        json.dump(
            obj,
            fh,
            indent=indent,
            ensure_ascii=False,
            default=_json_default,
            allow_nan=not nan_as_null,
        )
        fh.write("\n")


def _finite_or_null(obj: Any) -> Any:
    import math

    import numpy as np

    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_null(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _finite_or_null(obj.tolist())
    return obj


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; on success it replaces ``path`` as a whole.

    An existing ``path`` (checked beforehand, see :func:`dataprune.outputs.check_output`) is
    swapped out only after everything was written; on error the temporary folder is removed and
    ``path`` is left untouched.
    """
    import shutil

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        publish_mode(tmp, target)
        if target.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            os.replace(target, trash / "old")
            os.replace(tmp, target)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
