"""The stage contract: a config dataclass, what the stage needs, and ``run`` on the survivors."""

from __future__ import annotations

import logging
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from dataprune.config import ConfigMixin
from dataprune.errors import DataValidationError, UnknownOptionError
from dataprune.registry import Registry

logger = logging.getLogger(__name__)

__all__ = ["STAGES", "Stage", "StageConfig", "StageOutput", "register_stage"]


class StageConfig(ConfigMixin):
    """Base of every stage's options (a dataclass); ``check`` validates values before any work."""

    def check(self, stage: str) -> None:
        """Raise :class:`DataValidationError` naming ``stage`` and the bad option."""


_TYPE_NAMES = {float: "a number", int: "an integer", str: "a string", bool: "true or false"}
_PLURALS = {float: "numbers", int: "integers", str: "strings", bool: "true/false values"}


def _expected(hint: Any, value: Any) -> str | None:
    """``None`` when ``value`` fits the option's type ``hint`` (as a YAML recipe writes it: an
    integer is a number, a list a list), else what was expected, in words."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return None
    if origin in (typing.Union, types.UnionType):
        wanted = [_expected(a, value) for a in args if a is not type(None)]
        if (value is None and type(None) in args) or any(w is None for w in wanted):
            return None
        return " or ".join(w for w in wanted if w) + (" or null" if type(None) in args else "")
    if origin in (list, tuple):
        what = f"a list of {_PLURALS.get(args[0], 'values') if args else 'values'}"
        if not isinstance(value, (list, tuple)):
            return what
        return what if any(args and _expected(args[0], v) is not None for v in value) else None
    if origin is dict or hint is dict:
        return None if isinstance(value, Mapping) else "a mapping"
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(hint, type):
        ok = isinstance(value, hint)
    else:  # an annotation this check does not know: the config's own check decides
        return None
    return None if ok else _TYPE_NAMES.get(hint, hint.__name__)


def bad_option(stage: str, option: str, expected: str, got: Any) -> DataValidationError:
    return DataValidationError(
        f"stage {stage!r}, option {option!r}: expected {expected}, got {got!r}"
    )


@dataclass
class StageOutput:
    """What a stage decided about the records it saw.

    Attributes
    ----------
    dropped : ndarray of shape (n_seen,), bool
        Per seen record (in the order of ``seen``): dropped by this stage.
    reason : list of str or None, length n_seen
        Why each dropped record was dropped (``None`` for survivors).
    duplicate_of : ndarray of shape (n_seen,), int64
        For duplicates: the *view position* of the record it duplicates (kept by this stage);
        -1 otherwise.
    scores : dict of str to ndarray of shape (n_seen,), float64
        Per-record scores this stage computed (status columns, report histograms).
    order : ndarray of int64 or None
        View positions of the survivors in the stage's preference order (selection stages).
    details : dict
        JSON-able findings for the report (cuts, thresholds, duplicate groups as view positions).
    """

    dropped: np.ndarray
    reason: list[str | None]
    duplicate_of: np.ndarray
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    order: np.ndarray | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def keep_all(cls, n_seen: int, **kw: Any) -> StageOutput:
        return cls(np.zeros(n_seen, bool), [None] * n_seen, np.full(n_seen, -1, np.int64), **kw)


class Stage:
    """A curation stage. Subclasses set ``kind``, ``config_class``, ``needs`` and ``run``.

    ``needs`` lists what the stage reads from the context beyond the texts: ``"embeddings"``,
    ``"lm"`` (the causal LM), ``"labels"``, ``"sft"`` (prompt/response records), ``"budget"``.
    """

    kind: ClassVar[str] = ""
    config_class: ClassVar[type[StageConfig]]
    needs: ClassVar[frozenset[str]] = frozenset()
    summary: ClassVar[str] = ""

    def __init__(self, label: str, config: StageConfig) -> None:
        self.label = label
        self.config = config

    @classmethod
    def from_options(cls, label: str, options: Mapping[str, Any]) -> Stage:
        valid = sorted(f.name for f in fields(cls.config_class))  # type: ignore[arg-type]
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise UnknownOptionError(
                f"stage {label!r}: unknown option(s) {', '.join(unknown)}; valid: "
                f"{', '.join(valid) or '(none)'}"
            )
        hints = typing.get_type_hints(cls.config_class)
        for name, value in options.items():
            expected = _expected(hints[name], value)
            if expected is not None:
                raise bad_option(label, name, expected, value)
        try:
            config = cls.config_class(**dict(options))
        except TypeError as exc:  # a required option is missing
            raise DataValidationError(f"stage {label!r}: {exc}") from None
        config.check(label)
        return cls(label, config)

    def default_label(self) -> str:
        return self.kind

    def run(self, ctx: Any, seen: np.ndarray) -> StageOutput:  # pragma: no cover - abstract
        raise NotImplementedError


STAGES: Registry[type[Stage]] = Registry("curation stage")


def register_stage(cls: type[Stage]) -> type[Stage]:
    """Class decorator: register a stage under its ``kind``."""
    STAGES.register(cls.kind, cls)
    return cls
