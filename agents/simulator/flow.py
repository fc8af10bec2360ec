"""Simulated agents of a dynamic workflow, and the simulator as a flow-training evaluator.

:class:`SimulatedFlowBackend` answers like :class:`~dataprune.agents.executor.SimulatedBackend`
(the propagation rule of :mod:`dataprune.agents.simulator` over the messages an agent reads; a
step's draws are a pure function of ``(random_state, query, agent, step)``) and appends the
a-priori suffix ``NEXT: ...; PROGRESS: ...``:

* **progress** is a noisy self-assessment: the agent believes its answer is right when it is,
  except that with probability ``progress_noise`` (the documented error rate) the belief is
  flipped. It reports ``PROGRESS: 0.90`` when it believes it solved the task, ``0.20`` otherwise.
  The policy sees only this report; the truth stays inside the simulated agent.
* **proposal**: an agent that believes it solved the task proposes STOP; otherwise it proposes,
  among the agents its prompt lists, the one most competent on the query's type (agents
  recognise the domain), except that with probability ``proposal_noise`` it proposes one of them
  uniformly at random (:func:`proposal_distribution`).

Exact and Monte Carlo values of a policy: :mod:`~dataprune.agents.simulator.flow_value`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dataprune.agents.executor.backends import SimulatedBackend
from dataprune.agents.executor.messages import AgentCall, Completion, extract_answer
from dataprune.agents.flow.protocol import STOP, allowed_from_prompt
from dataprune.agents.simulator.propagation import _stable_uniform
from dataprune.errors import DataValidationError

if TYPE_CHECKING:
    from dataprune.agents.simulator.environment import SimulatedEnvironment

logger = logging.getLogger(__name__)

__all__ = [
    "PROGRESS_OPEN",
    "PROGRESS_SOLVED",
    "SimulatedFlowBackend",
    "SimulatorFlowEvaluator",
    "proposal_distribution",
]

#: Progress a simulated agent reports when it believes it solved the task.
PROGRESS_SOLVED = 0.9
#: Progress a simulated agent reports otherwise.
PROGRESS_OPEN = 0.2


def _check_rate(value: float, name: str) -> float:
    if not 0.0 <= value <= 1.0:
        raise DataValidationError(f"{name} must be in [0, 1], got {value}")
    return float(value)


def proposal_distribution(
    env: SimulatedEnvironment, agent: str, qtype: int, allowed: Sequence[str], noise: float
) -> list[tuple[str, float]]:
    """What an agent that believes the task unsolved proposes, with probabilities.

    Parameters
    ----------
    env : SimulatedEnvironment
    agent : str
        The acting agent (never proposes itself).
    qtype : int
        The query's type.
    allowed : sequence of str
        Agents its prompt lists.
    noise : float
        Probability of a uniformly random proposal among them.

    Returns
    -------
    list of (str, float)
        Proposals in ``allowed`` order with their probabilities (``[(STOP, 1.0)]`` when there
        is nobody to hand over to).
    """
    names = {a.name for a in env.agents}
    others = [a for a in allowed if a != agent and a in names]
    if not others:
        return [(STOP, 1.0)]
    comp = env.competence[:, qtype]
    idx = {a.name: i for i, a in enumerate(env.agents)}
    best = max(others, key=lambda a: (comp[idx[a]], -others.index(a)))
    m = len(others)
    return [(a, noise / m + (1.0 - noise if a == best else 0.0)) for a in others]


class SimulatedFlowBackend(SimulatedBackend):
    """Simulated agents that append a noisy progress judgement and a proposal (module docs).

    Parameters
    ----------
    env : SimulatedEnvironment
    progress_noise : float, default=0.2
        Probability that an agent's belief about its own correctness is wrong.
    proposal_noise : float, default=0.1
        Probability of a uniformly random proposal instead of the most competent agent.
    random_state : int, optional
        Default: the environment's.
    latency_s : float, default=0.0
    """

    name = "simulated-flow"

    def __init__(
        self,
        env: SimulatedEnvironment,
        *,
        progress_noise: float = 0.2,
        proposal_noise: float = 0.1,
        random_state: int | None = None,
        latency_s: float = 0.0,
    ) -> None:
        super().__init__(env, random_state=random_state, latency_s=latency_s)
        self.progress_noise = _check_rate(progress_noise, "progress_noise")
        self.proposal_noise = _check_rate(proposal_noise, "proposal_noise")

    def complete(self, call: AgentCall) -> Completion:
        base = super().complete(call)
        if call.is_decision:
            return base
        q = self.env.lookup(call.query)
        name = call.agent.name
        correct = extract_answer(base.text) == q.answer
        seed = (self.random_state, call.query, name, call.round)
        believes = correct != (_stable_uniform("progress", *seed) < self.progress_noise)
        if believes:
            nxt = STOP
        else:
            listed = allowed_from_prompt(call.messages[-1]["content"]) if call.messages else None
            if listed is None:
                listed = [a.name for a in self.env.agents]
            dist = proposal_distribution(self.env, name, q.qtype, listed, self.proposal_noise)
            u, acc = _stable_uniform("proposal", *seed), 0.0
            nxt = dist[-1][0]
            for a, p in dist:
                acc += p
                if u < acc:
                    nxt = a
                    break
        progress = PROGRESS_SOLVED if believes else PROGRESS_OPEN
        text = f"{base.text}\nNEXT: {nxt}; PROGRESS: {progress:.2f}"
        return Completion(
            text, base.prompt_tokens, base.completion_tokens, "simulated", "simulated"
        )

    def describe(self) -> dict[str, str]:
        return {
            **super().describe(),
            "progress_noise": str(self.progress_noise),
            "proposal_noise": str(self.proposal_noise),
        }


class SimulatorFlowEvaluator:
    """Train a flow policy on the simulator: simulated agents, correctness from the truth.

    Parameters
    ----------
    env : SimulatedEnvironment
    progress_noise, proposal_noise : float
        Of the :class:`SimulatedFlowBackend`.
    random_state : int, optional
        Of the backend (default: the environment's).
    scenario : str, optional
        Name of the :data:`~dataprune.agents.simulator.pool.SCENARIOS` entry the environment was
        built from (recorded by :meth:`describe`, so a saved policy can rebuild it).
    """

    def __init__(
        self,
        env: SimulatedEnvironment,
        *,
        progress_noise: float = 0.2,
        proposal_noise: float = 0.1,
        random_state: int | None = None,
        scenario: str | None = None,
    ) -> None:
        self.env = env
        self.scenario = scenario
        self.backend = SimulatedFlowBackend(
            env,
            progress_noise=progress_noise,
            proposal_noise=proposal_noise,
            random_state=random_state,
        )

    def agents(self) -> list:
        """The simulated pool as agent specs."""
        return self.env.agent_specs()

    def score(self, query: str, answer: str | None) -> float:
        """1.0 when ``answer`` is the query's correct option (the evaluator, not the policy,
        knows the truth)."""
        return float(answer is not None and answer == self.env.lookup(query).answer)

    def describe(self) -> dict[str, Any]:
        """JSON-able description saved with a policy."""
        return {
            "kind": "simulator",
            "scenario": self.scenario,
            "progress_noise": self.backend.progress_noise,
            "proposal_noise": self.backend.proposal_noise,
            "random_state": self.backend.random_state,
            "env_random_state": self.env.random_state,
            "n_agents": self.env.n_agents,
        }
