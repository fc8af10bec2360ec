"""The base every config dataclass shares: ``to_dict`` / ``from_dict`` (peft-style configs)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any, TypeVar

from dataprune.errors import DataValidationError, UnknownOptionError

__all__ = ["ConfigMixin"]

C = TypeVar("C", bound="ConfigMixin")


def _lists(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _lists(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_lists(v) for v in obj]
    return obj


class ConfigMixin:
    """``to_dict`` (JSON-able, nested configs included) and its inverse ``from_dict``.

    ``from_dict`` refuses unknown keys with a message listing the valid ones, unless the class
    sets ``_ignore_unknown_keys = True`` (configs read back from older checkpoints).
    """

    _ignore_unknown_keys = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-able parameters (for manifests, cards and logs); tuples become lists, as JSON
        reads them back."""
        return _lists(asdict(self))  # type: ignore[call-overload]

    @classmethod
    def _from_dict_defaults(cls, d: dict[str, Any]) -> dict[str, Any]:
        """Hook: fill keys that older saved configs lack (default: none)."""
        return d

    @classmethod
    def from_dict(cls: type[C], d: Mapping[str, Any]) -> C:
        """Inverse of :meth:`to_dict`."""
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - known)
        if unknown and not cls._ignore_unknown_keys:
            raise UnknownOptionError(
                f"unknown {cls.__name__} field(s) {', '.join(unknown)}; valid: "
                f"{', '.join(sorted(known))}"
            )
        kwargs = cls._from_dict_defaults({k: v for k, v in d.items() if k in known})
        return cls(**kwargs)

    @classmethod
    def from_options(cls: type[C], options: Mapping[str, Any] | C | None) -> C:
        """The config a function's ``config=`` argument names: ``None`` gives the defaults, an
        instance is returned as is, a mapping goes through :meth:`from_dict` (an unknown key is
        an error listing the valid ones)."""
        if options is None:
            return cls()
        if isinstance(options, cls):
            return options
        if not isinstance(options, Mapping):
            raise DataValidationError(
                f"{cls.__name__} options must be a mapping or a {cls.__name__}, got "
                f"{type(options).__name__}"
            )
        return cls.from_dict(options)
