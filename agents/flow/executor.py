"""Run a dynamic workflow step by step with the executor's backends, retries and timeouts.

:class:`FlowExecutor` is an :class:`~dataprune.agents.executor.Executor` (static topologies
still run with :meth:`~dataprune.agents.executor.Executor.run`) that adds
:meth:`FlowExecutor.run_flow`. Every agent call goes through
:meth:`Executor.run_step <dataprune.agents.executor.Executor.run_step>` (same backends,
retries, timeouts and token ledger). A run:

1. at START the policy picks the first agent (no agent has spoken: the proposal is
   ``FlowConfig.start_agent``, default the first agent of the pool);
2. the agent runs with the executor's prompt, reading the earlier outputs its context rule
   names, and ends with ``NEXT: ...; PROGRESS: ...`` (among the agents the policy allows after
   it): asked for in the prompt (``FlowConfig.suffix="instruct"``), or chosen by likelihood in a
   constrained follow-up on backends that support it (``"choose"``; ``"auto"`` picks it there);
3. its suffix is parsed into a proposal and the policy picks the next agent or STOP;
4. hard limits: after ``max_steps`` calls the run stops; an agent is only called when
   ``tokens so far + its expected prompt and output tokens + the tokens it would read`` fits the
   token budget, and the run stops when none fits. The call's output is then capped at what the
   budget leaves after its prompt -- counted exactly before the call where the backend
   tokenises locally (``ChatBackend.count_prompt_tokens``), else estimated as the agent's
   expected prompt plus what it reads -- so with such a backend the ledger never exceeds the
   budget.

The answer is that of the last step that produced one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from dataprune.agents.executor.messages import Message, extract_answer
from dataprune.agents.executor.results import TokenLedger
from dataprune.agents.executor.runner import Executor
from dataprune.agents.flow.context import CONTEXTS
from dataprune.agents.flow.protocol import (
    START,
    STOP,
    Proposal,
    flow_choice,
    flow_messages,
    parse_suffix,
)
from dataprune.agents.flow.trace import Decision, FlowStep, FlowTrace
from dataprune.errors import DataValidationError

if TYPE_CHECKING:
    from dataprune.agents.flow.policy import FlowPolicy

logger = logging.getLogger(__name__)

__all__ = ["FlowExecutor", "affordable_agents", "check_token_budget"]


def check_token_budget(costs: Mapping[str, float], budget: float | None) -> None:
    """Raise when ``budget`` cannot pay for any single agent call.

    Parameters
    ----------
    costs : mapping of agent name to float
        Expected prompt plus output tokens of one call (reading nothing).
    budget : float or None

    Raises
    ------
    DataValidationError
    """
    if budget is None or not costs:
        return
    name = min(costs, key=lambda a: costs[a])
    if budget < costs[name]:
        raise DataValidationError(
            f"token budget {budget:g} is too small for any agent: the cheapest call "
            f"({name!r}) needs about {costs[name]:g} tokens"
        )


def affordable_agents(
    costs: Mapping[str, float], spent: float, read_tokens: float, budget: float | None
) -> set[str] | None:
    """Agents whose next call is expected to fit the budget (``None``: no budget).

    Parameters
    ----------
    costs : mapping of agent name to float
        Expected prompt plus output tokens of one call.
    spent : float
        Tokens used so far.
    read_tokens : float
        Tokens of the outputs the next agent would read.
    budget : float or None

    Returns
    -------
    set of str or None
    """
    if budget is None:
        return None
    return {a for a, c in costs.items() if spent + c + read_tokens <= budget + 1e-9}


def _strip_then(parser: Callable[[str | None], str | None]) -> Callable[[str | None], str | None]:
    from dataprune.agents.flow.protocol import strip_suffix

    def parse(text: str | None) -> str | None:
        return parser(strip_suffix(text))

    return parse


class FlowExecutor(Executor):
    """An :class:`~dataprune.agents.executor.Executor` that also runs dynamic workflows.

    Parameters
    ----------
    backend : ChatBackend or mapping of agent name to ChatBackend, optional
        As for :class:`~dataprune.agents.executor.Executor`.
    max_steps : int, optional
        Agent calls per query at most (default: the policy's ``config_.max_steps``).
    token_budget : float, optional
        Tokens per query at most (default: the policy's ``config_.token_budget``).
    **kwargs
        ``max_workers``, ``timeout_s``, ``max_retries``, ``retry_backoff_s``, ``answer_parser``
        of :class:`~dataprune.agents.executor.Executor`; the answer parser reads the output
        without its suffix line.
    """

    def __init__(
        self,
        backend: Any = None,
        *,
        max_steps: int | None = None,
        token_budget: float | None = None,
        **kwargs: Any,
    ) -> None:
        parser = kwargs.pop("answer_parser", None) or extract_answer
        super().__init__(backend, answer_parser=_strip_then(parser), **kwargs)
        if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 1):
            raise DataValidationError(f"max_steps must be an int >= 1, got {max_steps!r}")
        if token_budget is not None and token_budget <= 0:
            raise DataValidationError(f"token_budget must be > 0, got {token_budget}")
        self.max_steps = max_steps
        self.token_budget = token_budget

    def run_flow(
        self,
        policy: FlowPolicy,
        query: str,
        *,
        explore: bool = False,
        rng: np.random.Generator | None = None,
        max_steps: int | None = None,
        token_budget: float | None = None,
    ) -> FlowTrace:
        """Run ``query`` as a dynamic workflow chosen step by step by ``policy``.

        Parameters
        ----------
        policy : FlowPolicy
            A fitted (or cold-start) policy.
        query : str
        explore : bool, default=False
            Epsilon-greedy with the policy's current ``epsilon_`` (training); else greedy.
        rng : numpy Generator, optional
            Exploration draws (default: seeded from the policy's ``random_state_`` and the
            query).
        max_steps, token_budget : optional
            Override this executor's and the policy's limits for this run.

        Returns
        -------
        FlowTrace

        Raises
        ------
        DataValidationError
            For an empty query, a budget below the cheapest agent call, or an agent without a
            backend.
        """
        policy.check_is_fitted()
        if not isinstance(query, str) or not query.strip():
            raise DataValidationError("expected a non-empty query string")
        cfg = policy.config_
        steps_cap = max_steps or self.max_steps or cfg.max_steps
        budget = token_budget if token_budget is not None else self.token_budget
        budget = budget if budget is not None else cfg.token_budget
        costs = policy.call_costs_
        check_token_budget(costs, budget)
        rule = CONTEXTS.get(cfg.context)
        specs = {a.name: a for a in policy.agents_}
        epsilon = policy.epsilon_ if explore else 0.0
        if explore and rng is None:
            rng = np.random.default_rng(policy.query_seed(query))
        t0 = time.perf_counter()
        ledger = TokenLedger()
        steps: list[FlowStep] = []
        decisions: list[Decision] = []
        state, proposal, stopped_by = START, None, "policy"
        while True:
            reads = [steps[i] for i in rule.reads(len(steps)) if steps[i].ok]
            read_tokens = sum(s.run.completion_tokens for s in reads)
            if len(steps) >= steps_cap:
                decisions.append(Decision(state, STOP, forced="max_steps"))
                stopped_by = "max_steps"
                break
            allowed = affordable_agents(costs, ledger.total_tokens, read_tokens, budget)
            if state != START and allowed is not None and not (allowed & set(specs)):
                decisions.append(Decision(state, STOP, forced="budget"))
                stopped_by = "budget"
                break
            d = policy.decide(state, proposal, allowed=allowed, epsilon=epsilon, rng=rng)
            if d.action == STOP:
                decisions.append(d)
                break
            agent = specs[d.action]
            k = len(steps) + 1
            inbox = [Message(s.agent, s.content or "", s.index) for s in reads]
            call = self._flow_call(policy, agent, query, inbox, k)
            cap = None
            if budget is not None:
                counted = self.backend_for(agent).count_prompt_tokens(call)
                if counted is None:
                    counted = policy.prompt_costs_[agent.name] + read_tokens
                cap = int(np.floor(budget - ledger.total_tokens - counted + 1e-9))
                if cap < 1:
                    logger.info(
                        "budget stop: %s would read %d tokens with %g left",
                        agent.name,
                        counted,
                        budget - ledger.total_tokens,
                    )
                    decisions.append(Decision(state, STOP, forced="budget"))
                    stopped_by = "budget"
                    break
            decisions.append(d)
            run = self.run_step(
                agent,
                query,
                inbox,
                round=k,
                level=k - 1,
                messages=call.messages,
                ledger=ledger,
                t0=t0,
                max_new_tokens=cap,
                choice=call.choice,
            )
            if run.status == "ok":
                content, proposal = parse_suffix(run.output, policy.agents_)
            else:
                content, proposal = None, Proposal(issue="agent failed")
            steps.append(FlowStep(k, state, run, content, proposal, [s.index for s in reads]))
            state = agent.name
        answer = next((s.run.answer for s in reversed(steps) if s.ok and s.run.answer), None)
        return FlowTrace(
            query=query,
            steps=steps,
            decisions=decisions,
            answer=answer,
            stopped_by=stopped_by,
            ledger=ledger,
            wall_time_s=time.perf_counter() - t0,
            context=rule.name,
            agents=tuple(policy.agents_),
        )

    def _flow_call(
        self, policy: FlowPolicy, agent: Any, query: str, inbox: list[Message], step: int
    ) -> Any:
        """The call for ``agent`` at ``step``: instruction in the prompt or a choice request."""
        backend = self.backend_for(agent)
        mode = policy.config_.suffix
        if mode == "choose" and not backend.supports_choice:
            raise DataValidationError(
                f"FlowConfig.suffix='choose' needs a backend with a constrained follow-up; "
                f"{type(backend).__name__} (agent {agent.name!r}) has none: use 'instruct'"
            )
        choose = mode == "choose" or (mode == "auto" and backend.supports_choice)
        allowed = policy.allowed_after(agent.name)
        msgs = flow_messages(agent, query, inbox, step=step, allowed=allowed, instruct=not choose)
        return self.make_call(
            agent,
            query,
            inbox,
            round=step,
            messages=msgs,
            choice=flow_choice(allowed) if choose else None,
        )
