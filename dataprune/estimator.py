"""scikit-learn-style parameter access shared by selectors and model pruners."""

from __future__ import annotations

from typing import Any

__all__ = ["ParamsMixin"]


class ParamsMixin:
    """``get_params()`` and ``repr`` from the ``__init__`` signature.

    Subclasses store every ``__init__`` argument under its own name (and nothing else in
    ``__init__``), as scikit-learn estimators do.
    """

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, by name."""
        import inspect

        sig = inspect.signature(type(self).__init__)
        return {p: getattr(self, p) for p in sig.parameters if p != "self"}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
