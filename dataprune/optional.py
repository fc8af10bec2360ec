"""Lazy imports of optional integrations with an install hint when missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from dataprune.errors import OptionalDependencyError

__all__ = ["require"]


def require(module: str, extra: str, *, purpose: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`OptionalDependencyError` naming the extra to install.

    Parameters
    ----------
    module : str
        Dotted module name, e.g. ``"langchain_core.documents"``.
    extra : str
        Name of the ``dataprune`` extra that provides it, e.g. ``"langchain"``.
    purpose : str, optional
        What the caller wanted to do, shown in the message.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = f" for {purpose}" if purpose else ""
        raise OptionalDependencyError(
            f"{module!r} is needed{what} but is not installed; "
            f"install it with: pip install 'dataprune[{extra}]'"
        ) from exc
