"""Where the toolkit keeps converted models and embedding caches."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir(*parts: str, create: bool = True) -> Path:
    """Return the cache directory (``$DATAPRUNE_CACHE`` or the user cache dir), joined with ``parts``.

    Parameters
    ----------
    *parts : str
        Sub-directories below the cache root.
    create : bool, default=True
        Create the directory when missing.
    """
    root = os.environ.get("DATAPRUNE_CACHE")
    if root:
        base = Path(root).expanduser()
    else:
        from platformdirs import user_cache_dir

        base = Path(user_cache_dir("dataprune", appauthor=False))
    path = base.joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
