"""Lazy package exports: ``package.Name`` imports the module that defines ``Name`` on first use.

Each package ``__init__`` maps its public names to their modules and installs the pair of
module-level hooks this returns, so ``import dataprune`` (and ``dataprune --help``) import no
numpy, torch or transformers::

    __getattr__, __dir__ = lazy_exports(__name__, {"select": "dataprune.selection.api"}, __all__)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, where: Mapping[str, str], public: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__`` / ``__dir__`` for ``package``.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    where : mapping
        Public name -> module that defines it (absolute, or relative to ``package`` with a
        leading dot).
    public : iterable of str
        The package's ``__all__`` (what ``dir()`` lists besides its own globals).
    """
    names = sorted(set(public))

    def module_getattr(name: str) -> Any:
        if name in where:
            target = where[name]
            module = importlib.import_module(target, package if target.startswith(".") else None)
            value = getattr(module, name)
            setattr(sys.modules[package], name, value)  # later look-ups skip this hook
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def module_dir() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return module_getattr, module_dir
