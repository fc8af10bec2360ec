"""Chat backends: the interface, the deterministic simulated backend, and the factory."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from dataprune.agents.executor.messages import AgentCall, Completion, extract_answer
from dataprune.agents.spec import LLMConfig
from dataprune.errors import DataValidationError

if TYPE_CHECKING:
    from dataprune.agents.simulator import SimulatedEnvironment

__all__ = ["BackendError", "ChatBackend", "SimulatedBackend", "make_backend"]


class BackendError(RuntimeError):
    """A backend call failed.

    Parameters
    ----------
    message : str
    retryable : bool, default=True
        Transient failures (timeouts, connection errors, HTTP 429/5xx) are retried by the
        executor; others (HTTP 400/401/404, malformed answers) are not.
    retry_after : float, optional
        Seconds the server asked to wait (``Retry-After``).
    """

    def __init__(self, message: str, *, retryable: bool = True, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class ChatBackend(ABC):
    """Answers one :class:`AgentCall`. Implementations must be thread-safe (the executor calls
    agents of one level concurrently) and honour ``call.timeout``."""

    name: str = "backend"
    #: Whether :meth:`complete` answers ``call.choice`` (a constrained follow-up).
    supports_choice: bool = False

    @abstractmethod
    def complete(self, call: AgentCall) -> Completion:
        """Return the agent's output and token usage, or raise :class:`BackendError`."""

    def count_prompt_tokens(self, call: AgentCall) -> int | None:
        """Prompt tokens ``call`` will be charged, counted before the call (``None``: unknown).

        Parameters
        ----------
        call : AgentCall

        Returns
        -------
        int or None
            Exact for backends that tokenise locally; ``None`` where only the server knows.
        """
        return None

    def describe(self) -> dict[str, str]:
        """JSON-able description for manifests and results."""
        return {"backend": self.name}


class SimulatedBackend(ChatBackend):
    """Deterministic agents following the simulator's propagation rule.

    Each agent answers ``"Answer: X"``; whether ``X`` is the query's correct answer or its trap is
    drawn from the agent's competence and the answers in its inbox exactly as in
    :mod:`dataprune.agents.simulator`, with pseudo-random draws that are a pure function of
    ``(random_state, query, agent, round)`` -- so a run is reproducible and topologies are compared
    on common random numbers. Token usage is the environment's per-agent prompt/output tokens plus
    the output tokens of every message read. A decision agent returns the majority answer of its
    inbox (ties: the first message).

    Parameters
    ----------
    env : SimulatedEnvironment
    random_state : int, optional
        Default: the environment's.
    latency_s : float, default=0.0
        Sleep per call (to exercise concurrency and timeouts).
    """

    name = "simulated"

    def __init__(
        self, env: SimulatedEnvironment, *, random_state: int | None = None, latency_s: float = 0.0
    ) -> None:
        self.env = env
        self.random_state = env.random_state if random_state is None else int(random_state)
        self.latency_s = float(latency_s)
        self._out_tokens = {a.name: a.output_tokens for a in env.agents}

    def complete(self, call: AgentCall) -> Completion:
        from dataprune.agents.simulator.propagation import _stable_uniform

        if self.latency_s:
            if self.latency_s > call.timeout:
                time.sleep(call.timeout)
                raise BackendError(f"simulated call took longer than {call.timeout:.2f} s")
            time.sleep(self.latency_s)
        q = self.env.lookup(call.query)
        agent = call.agent
        read_tokens = sum(
            self._out_tokens.get(m.sender, 0) or len(m.content) // 4 for m in call.inbox
        )
        answers = [extract_answer(m.content) for m in call.inbox]
        if call.is_decision:
            counts: dict[str, int] = {}
            for a in answers:
                if a is not None:
                    counts[a] = counts.get(a, 0) + 1
            if counts:
                top = max(counts.values())
                ans = next(a for a in answers if a is not None and counts[a] == top)
            else:
                ans = q.trap
            prompt = agent.prompt_tokens if agent.prompt_tokens is not None else 200
            out = agent.output_tokens if agent.output_tokens is not None else 100
            return Completion(f"Answer: {ans}", prompt + read_tokens, out, "simulated", "simulated")
        try:
            sim_agent = self.env.agents[[a.name for a in self.env.agents].index(agent.name)]
        except ValueError:
            raise BackendError(
                f"agent {agent.name!r} is not in the simulated environment", retryable=False
            ) from None
        c = sim_agent.competence[q.qtype]
        n_c = sum(a == q.answer for a in answers)
        n_w = sum(a is not None and a != q.answer for a in answers)
        seed = (self.random_state, call.query, agent.name, call.round)
        own = _stable_uniform("own", *seed) < c
        u = _stable_uniform("propagate", *seed)
        if own:
            correct = u < (1 - self.env.beta) ** n_w
        else:
            correct = u < 1 - (1 - self.env.alpha) ** n_c
        ans = q.answer if correct else q.trap
        return Completion(
            f"Answer: {ans}",
            sim_agent.prompt_tokens + read_tokens,
            sim_agent.output_tokens,
            "simulated",
            "simulated",
        )

    def describe(self) -> dict[str, str]:
        return {"backend": self.name, "random_state": str(self.random_state)}


def make_backend(llm: LLMConfig) -> ChatBackend:
    """A backend for an agent's :class:`LLMConfig` (``openai`` or ``hf``)."""
    if llm.backend == "openai":
        import os

        from dataprune.agents.executor.http import OpenAIChatBackend

        return OpenAIChatBackend(
            llm.base_url or "",
            llm.model or "",
            api_key=os.environ.get(llm.api_key_env),
            temperature=llm.temperature,
            max_tokens=llm.max_tokens,
        )
    if llm.backend == "hf":
        from dataprune.agents.executor.hf import HFLocalBackend

        return HFLocalBackend(llm.model, max_new_tokens=llm.max_tokens, temperature=llm.temperature)
    raise DataValidationError(
        "a 'simulated' LLMConfig needs an environment: pass "
        "Executor(backend=SimulatedBackend(env)) instead"
    )
