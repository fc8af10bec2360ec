"""Where a command writes: one check of every output path, made before any model or data is loaded.

Every sub-command calls :func:`check_output` for each path it will write (its main output and the
side files next to it) before it loads a model or reads its data, so a run cannot compute for an
hour and then fail on a path. The rules, in order:

- the path is not one of the inputs, also through symbolic links (inputs are never modified), and
  for a folder output, no input lies inside the folder it would replace;
- a file output is not an existing folder; a folder output is not an existing file;
- an existing, non-empty folder is replaced only with ``overwrite=True`` (``--overwrite``); an
  existing file is replaced (atomically, see :mod:`dataprune.atomic`);
- the folder that will hold it exists or can be created (no file in the way), and a file can be
  created there (checked by creating and removing a hidden probe file: this also catches read-only
  file systems and permissions that ``os.access`` misreports for root).

Each failure is a :class:`~dataprune.errors.DataValidationError` naming the path and what is
expected, which the CLI prints as one line with exit status 2.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from dataprune.errors import DataValidationError

__all__ = ["check_output", "input_paths"]

Kind = Literal["file", "dir"]


def input_paths(*inputs: Any) -> list[Path]:
    """The local paths among ``inputs`` (strings / path-likes that exist; hub ids are skipped)."""
    out = []
    for src in inputs:
        if isinstance(src, (str, os.PathLike)) and str(src) and Path(src).exists():
            out.append(Path(src))
    return out


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def _inside(child: Path, folder: Path) -> bool:
    try:
        child.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _nearest_existing(path: Path) -> Path:
    cur = path.absolute()
    while not cur.exists() and cur != cur.parent:
        cur = cur.parent
    return cur


def _probe_writable(folder: Path, what: Path) -> None:
    try:
        fd, probe = tempfile.mkstemp(prefix=".dataprune-probe-", dir=folder)
    except OSError as exc:
        reason = {
            errno.EROFS: "the file system is read-only",
            errno.EACCES: "permission denied",
            errno.EPERM: "permission denied",
            errno.ENOSPC: "no space left on the device",
        }.get(exc.errno, exc.strerror or type(exc).__name__)
        raise DataValidationError(
            f"cannot write here ({reason} in {folder}); choose another output path",
            source=str(what),
        ) from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def check_output(
    path: str | os.PathLike[str],
    *,
    kind: Kind = "file",
    inputs: Iterable[Any] = (),
    overwrite: bool = False,
) -> Path:
    """Check that ``path`` can be written as a ``kind`` output without touching any input.

    Parameters
    ----------
    path : str or path
        The output file or folder.
    kind : {"file", "dir"}, default="file"
        What the command writes there.
    inputs : iterable
        The command's inputs (paths; other values such as hub ids are ignored).
    overwrite : bool, default=False
        Whether an existing non-empty folder may be replaced (files are always replaced).

    Returns
    -------
    Path
        ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    DataValidationError
        One line naming the path and what is expected.
    """
    if kind not in ("file", "dir"):
        raise ValueError(f"kind must be 'file' or 'dir', got {kind!r}")
    out = Path(path)
    if not str(path):
        raise DataValidationError("the output path is empty")
    for src in input_paths(*inputs):
        # samefile follows symbolic links: a link to the input, or a path through a linked folder
        if (out.exists() and _same(out, src)) or out.absolute() == src.absolute():
            raise DataValidationError(
                "output path is the same file as the input; inputs are never overwritten, "
                "choose another output path",
                source=str(out),
            )
        if src.is_dir() and out.exists() and _inside(out, src):
            raise DataValidationError(
                f"the output is part of the input folder {src}; inputs are never overwritten, "
                "choose another output path",
                source=str(out),
            )
        if kind == "dir" and out.is_dir() and _inside(src, out):
            raise DataValidationError(
                f"the output folder holds the input {src}; inputs are never overwritten, "
                "choose another output folder",
                source=str(out),
            )
    if kind == "file" and out.is_dir():
        raise DataValidationError("is a folder; expected an output file path", source=str(out))
    if kind == "dir" and out.exists() and not out.is_dir():
        raise DataValidationError("is a file; expected an output folder", source=str(out))
    if kind == "dir" and out.is_dir() and any(out.iterdir()) and not overwrite:
        raise DataValidationError(
            "output folder exists and is not empty (use --overwrite to replace it)",
            source=str(out),
        )
    holder = out if kind == "dir" and out.is_dir() else out.absolute().parent
    existing = _nearest_existing(holder)
    if not existing.is_dir():
        raise DataValidationError(
            f"cannot create the output: {existing} is a file, not a folder", source=str(out)
        )
    _probe_writable(existing, out)
    return out
