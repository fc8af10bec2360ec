"""Progress-bar policy shared by long-running functions (sentence-transformers' manners).

``show_progress_bar=None`` means: show a bar when the ``dataprune`` logger is at INFO or more
verbose, hide it otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

__all__ = ["progress", "resolve_show_progress_bar"]


def resolve_show_progress_bar(show_progress_bar: bool | None) -> bool:
    """Resolve the tri-state ``show_progress_bar`` option."""
    if show_progress_bar is not None:
        return bool(show_progress_bar)
    return logging.getLogger("dataprune").getEffectiveLevel() <= logging.INFO


def progress(
    iterable: Iterable[Any] | None = None,
    *,
    show_progress_bar: bool | None = None,
    **kwargs: Any,
):
    """Wrap ``iterable`` in a tqdm bar when the policy says so (otherwise a disabled bar)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not resolve_show_progress_bar(show_progress_bar), **kwargs)
