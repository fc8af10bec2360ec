"""String-keyed registries (peft-style): unknown names fail with the list of valid ones."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from dataprune.errors import UnknownOptionError

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Generic[T]):
    """A named mapping from option strings to objects.

    Parameters
    ----------
    kind : str
        What the entries are ("selector", "model pruner", ...), used in error messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; usable as a decorator when ``obj`` is omitted."""
        key = name.lower()

        def _add(o: T) -> T:
            if key in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[key] = o
            return o

        if obj is None:
            return _add
        return _add(obj)

    def get(self, name: str) -> T:
        """Return the entry for ``name`` (case-insensitive) or raise :class:`UnknownOptionError`."""
        if not isinstance(name, str):
            raise UnknownOptionError(
                f"{self.kind} must be given by name (a string), got {type(name).__name__}; "
                f"valid: {', '.join(self.names())}"
            )
        try:
            return self._entries[name.lower()]
        except KeyError:
            raise UnknownOptionError(
                f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        """Sorted registered names."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
