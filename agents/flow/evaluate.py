"""Evaluators for training a flow policy: who answers agent calls, and how answers are scored.

:meth:`FlowPolicy.fit <dataprune.agents.flow.FlowPolicy.fit>` needs an object with

* ``backend``: a :class:`~dataprune.agents.executor.ChatBackend`, a mapping agent name ->
  backend, or ``None`` (each agent's ``llm`` config);
* ``score(query, answer) -> float`` in ``[0, 1]`` (``answer`` is ``None`` when nothing answered);
* optionally ``agents()`` (the pool, when the policy was built without one) and ``describe()``
  (JSON-able, saved with the policy).

:class:`FlowEvaluator` wraps any backend and scorer;
:class:`~dataprune.agents.simulator.flow.SimulatorFlowEvaluator` is the simulator's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from dataprune.agents.spec import AgentSpec, as_agent_specs
from dataprune.errors import DataValidationError

__all__ = ["FlowEvaluator", "FlowEvaluatorProtocol", "exact_match_scorer"]


class FlowEvaluatorProtocol(Protocol):
    """What :meth:`FlowPolicy.fit` needs from an evaluator."""

    backend: Any

    def score(self, query: str, answer: str | None) -> float: ...


def exact_match_scorer(answers: Mapping[str, str]) -> Callable[[str, str | None], float]:
    """A scorer: 1.0 when the answer equals the query's reference (case and spaces ignored).

    Parameters
    ----------
    answers : mapping of query to reference answer

    Returns
    -------
    callable(query, answer) -> float
    """
    refs = {q: " ".join(str(a).split()).casefold() for q, a in answers.items()}

    def score(query: str, answer: str | None) -> float:
        if query not in refs:
            raise DataValidationError(f"no reference answer for query {query[:60]!r}")
        if answer is None:
            return 0.0
        return float(" ".join(answer.split()).casefold() == refs[query])

    return score


class FlowEvaluator:
    """Any backend with any scorer.

    Parameters
    ----------
    backend : ChatBackend, mapping of agent name to ChatBackend, or None
        Who answers agent calls (``None``: each agent's ``llm`` config).
    scorer : callable(query, answer) -> float
        Correctness in ``[0, 1]`` of a final answer.
    agents : sequence of AgentSpec or str, optional
        The pool (for a policy built without one).
    """

    def __init__(
        self,
        backend: Any,
        scorer: Callable[[str, str | None], float],
        *,
        agents: Sequence[AgentSpec | str] | None = None,
    ) -> None:
        if not callable(scorer):
            raise DataValidationError("scorer must be callable(query, answer) -> float")
        self.backend = backend
        self.scorer = scorer
        self._agents = None if agents is None else as_agent_specs(agents)

    def agents(self) -> tuple[AgentSpec, ...] | None:
        """The pool given at construction (or ``None``)."""
        return self._agents

    def score(self, query: str, answer: str | None) -> float:
        """The scorer's value, checked to lie in ``[0, 1]``."""
        s = float(self.scorer(query, answer))
        if not 0.0 <= s <= 1.0:
            raise DataValidationError(f"scorer returned {s}; expected a score in [0, 1]")
        return s

    def describe(self) -> dict[str, Any]:
        """JSON-able description saved with a policy."""
        b = self.backend
        desc = b.describe() if hasattr(b, "describe") else {"backend": type(b).__name__}
        return {"kind": "backend", **desc} if b is not None else {"kind": "agents"}
