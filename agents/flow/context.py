"""What an agent of a dynamic workflow reads: the context rules ``"all"`` and ``"last"``.

A rule names the earlier steps whose outputs the next agent receives as messages. ``"all"``:
every earlier step (a growing transcript, the reference implementation's shared state);
``"last"``: only the previous step (a relay, the cheapest in tokens). Steps that failed have no
output and are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from dataprune.registry import Registry

__all__ = ["CONTEXTS", "ContextRule"]


@dataclass(frozen=True)
class ContextRule:
    """Which earlier steps an agent reads.

    Attributes
    ----------
    name : str
    window : int or None
        How many of the most recent steps are read (``None`` = all of them).
    description : str
    """

    name: str
    window: int | None
    description: str

    def reads(self, n_done: int) -> list[int]:
        """Indices (0-based) of the earlier steps read by step ``n_done`` (0-based).

        Parameters
        ----------
        n_done : int
            Steps already run.

        Returns
        -------
        list of int
            Increasing indices in ``[0, n_done)``.
        """
        start = 0 if self.window is None else max(0, n_done - self.window)
        return list(range(start, n_done))


#: Context rules by name (``FlowConfig.context``).
CONTEXTS: Registry[ContextRule] = Registry("flow context")
CONTEXTS.register("all", ContextRule("all", None, "every earlier step's output"))
CONTEXTS.register("last", ContextRule("last", 1, "the previous step's output only"))
