"""PriorDynaFlow (arXiv 2509.14547): a learned, a-priori dynamic agent workflow policy.

Where :class:`~dataprune.agents.agp.AGPPruner` fixes one topology per query before anything
runs, a :class:`FlowPolicy` builds the workflow while it runs: after each step the acting agent
judges the task's progress and proposes the next agent or STOP
(:mod:`~dataprune.agents.flow.protocol`), and a Q-table over role transitions, learned from
earlier runs with a reward that weighs correctness against tokens, combines with that proposal
to choose who acts next (:mod:`~dataprune.agents.flow.qtable` documents the rule, the update and
the pruning). Runs go through :class:`~dataprune.agents.flow.FlowExecutor`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dataprune.agents.costs import TokenCostModel
from dataprune.agents.flow.config import FlowConfig
from dataprune.agents.flow.protocol import RESERVED_NAMES, START, STOP, Proposal
from dataprune.agents.flow.qtable import QTable
from dataprune.agents.flow.trace import Decision, FlowTrace
from dataprune.agents.spec import AgentSpec, as_agent_specs
from dataprune.errors import DataValidationError
from dataprune.estimator import BaseEstimator, check_fitted
from dataprune.seeding import resolve_seed

logger = logging.getLogger(__name__)

__all__ = ["FlowPolicy"]


def _call_costs(
    agents: Sequence[AgentSpec], cost_model: TokenCostModel | None
) -> tuple[dict[str, float], dict[str, float]]:
    """Expected prompt + output tokens, and prompt tokens, of one call of every agent (reading
    nothing)."""
    from dataprune.agents.topology import Topology

    top = Topology(agents, np.zeros((len(agents), len(agents)), dtype=bool))
    p, o = (cost_model or TokenCostModel()).agent_costs(top)
    total = {a.name: float(p[i] + o[i]) for i, a in enumerate(agents)}
    return total, {a.name: float(p[i]) for i, a in enumerate(agents)}


class FlowPolicy(BaseEstimator):
    """Choose the next agent (or STOP) of a workflow from a learned Q-table and the acting
    agent's a-priori proposal.

    Parameters
    ----------
    agents : sequence of AgentSpec or str, optional
        The pool (default at ``fit``: the evaluator's ``agents()``). Names ``START``, ``STOP``,
        ``END``, ``DONE``, ``FINISH`` and ``NONE`` (any case) are reserved.
    config : FlowConfig, optional
        Reward, learning, exploration, pruning and run limits.
    cost_model : TokenCostModel, optional
        Expected tokens per call (token budget checks and the default ``token_scale``); default:
        the agents' ``prompt_tokens`` / ``output_tokens`` fields.
    random_state : int or None, default=None
        Seeds exploration and the order of training queries; ``None`` draws one at ``fit``
        (recorded as ``random_state_``).

    Attributes
    ----------
    agents_ : tuple of AgentSpec
    config_ : FlowConfig
    table_ : QTable
        Q-values, visits and pruned transitions, shape (n_agents + 1, n_agents + 1).
    epsilon_ : float
        Current exploration rate.
    n_episodes_ : int
        Episodes learned from.
    history_ : list of dict
        Per training epoch: mean return, score and tokens, epsilon, pruned transitions.
    token_scale_ : float
    call_costs_ : dict of str to float
        Expected prompt + output tokens of one call per agent.
    prompt_costs_ : dict of str to float
        Expected prompt tokens of one call per agent (reading nothing); the hard token budget
        uses them where a backend cannot count a prompt before the call.
    random_state_ : int
    trained_on_ : dict
        The evaluator's description (kept in saved policies).
    """

    def __init__(
        self,
        agents: Sequence[AgentSpec | str] | None = None,
        *,
        config: FlowConfig | None = None,
        cost_model: TokenCostModel | None = None,
        random_state: int | None = None,
    ) -> None:
        self.agents = agents
        self.config = config
        self.cost_model = cost_model
        self.random_state = random_state

    # ------------------------------------------------------------------ set-up
    def check_is_fitted(self) -> None:
        """Raise :class:`~dataprune.errors.NotFittedError` before ``fit``, ``update`` or
        ``load``."""
        check_fitted(self, "table_")

    def _initialise(self, agents: Sequence[AgentSpec | str] | None) -> None:
        if agents is None:
            raise DataValidationError(
                "the policy has no agents: pass FlowPolicy(agents=...) or an evaluator with agents()"
            )
        specs = as_agent_specs(agents)
        bad = [a.name for a in specs if a.name.casefold() in RESERVED_NAMES]
        if bad:
            raise DataValidationError(
                f"agent name {bad[0]!r} is reserved in dynamic workflows (it means START or STOP)"
            )
        cfg = self.config if self.config is not None else FlowConfig()
        if not isinstance(cfg, FlowConfig):
            raise DataValidationError(f"config must be a FlowConfig, got {type(cfg).__name__}")
        names = [a.name for a in specs]
        if cfg.start_agent is not None and cfg.start_agent not in names:
            raise DataValidationError(
                f"unknown start_agent {cfg.start_agent!r}; agents are: {', '.join(names)}"
            )
        costs, prompt_costs = _call_costs(specs, self.cost_model)
        self.agents_ = specs
        self.config_ = cfg
        self.random_state_ = resolve_seed(self.random_state)
        self.call_costs_ = costs
        self.prompt_costs_ = prompt_costs
        self.token_scale_ = float(cfg.token_scale or np.mean(list(costs.values())) or 1.0)
        self.table_ = QTable(names)
        self.epsilon_ = float(cfg.epsilon)
        self.n_episodes_ = 0
        self.history_: list[dict[str, Any]] = []
        self.trained_on_: dict[str, Any] = {}

    @property
    def start_agent(self) -> str:
        """The agent proposed at START."""
        self.check_is_fitted()
        return self.config_.start_agent or self.agents_[0].name

    def allowed_after(self, state: str) -> list[AgentSpec]:
        """Agents the policy may hand over to after ``state`` (valid, not pruned), pool order."""
        self.check_is_fitted()
        open_ = set(self.table_.open_actions(state))
        return [a for a in self.agents_ if a.name in open_]

    def query_seed(self, query: str) -> int:
        """Seed of a run's exploration draws (``random_state_`` and the query)."""
        from dataprune.agents.pruner import query_seed

        self.check_is_fitted()
        return query_seed(self.random_state_, query)

    # ------------------------------------------------------------------ decisions
    def decide(
        self,
        state: str,
        proposal: Proposal | None = None,
        *,
        allowed: Collection[str] | None = None,
        epsilon: float = 0.0,
        rng: np.random.Generator | None = None,
    ) -> Decision:
        """The next action after ``state`` given the acting agent's proposal.

        Parameters
        ----------
        state : str
            ``"START"`` or the agent that just acted.
        proposal : Proposal, optional
            Its proposal (at START: ``start_agent``).
        allowed : collection of str, optional
            Agents that may run now (e.g. within the token budget); default all.
        epsilon : float, default=0.0
            Probability of a uniformly random allowed action.
        rng : numpy Generator, optional
            Needed when ``epsilon > 0``.

        Returns
        -------
        Decision

        Raises
        ------
        DataValidationError
            For an unknown state, or when no agent may start.
        """
        self.check_is_fitted()
        cfg = self.config_
        if state == START and proposal is None:
            proposed: str | None = self.start_agent
        else:
            proposed = proposal.action(cfg.stop_progress) if proposal is not None else None
        cands = self.table_.candidates(state, allowed)
        if not cands:
            raise DataValidationError(
                f"no agent may act after {state} (every transition is pruned or over budget)"
            )
        names = [self.table_.actions[j] for j in cands]
        if proposed is not None and proposed not in names:
            logger.debug("proposal %s is not allowed after %s; ignored", proposed, state)
            proposed = None
        if epsilon > 0.0:
            if rng is None:
                raise DataValidationError("exploration (epsilon > 0) needs an rng")
            if rng.random() < epsilon:
                j = cands[int(rng.integers(len(cands)))]
                return Decision(state, self.table_.actions[j], proposed, explored=True)
        j, scores = self.table_.choose(state, proposed, cands, proposal_bonus=cfg.proposal_bonus)
        return Decision(state, self.table_.actions[j], proposed, scores=scores)

    def q_values(self, *, proposed: bool = False) -> dict[str, dict[str, float]]:
        """``{state: {action: Q}}`` over valid transitions (pruned ones included).

        Parameters
        ----------
        proposed : bool, default=False
            The values for when the acting agent proposed the action (``Q1``) instead of those
            for when it did not (``Q0``).
        """
        self.check_is_fitted()
        t = self.table_
        x = int(proposed)
        return {
            s: {a: float(t.q[x, i, j]) for j, a in enumerate(t.actions) if t.valid[i, j]}
            for i, s in enumerate(t.states)
        }

    def pruned_transitions(self) -> list[tuple[str, str]]:
        """``(state, action)`` pairs pruned so far."""
        self.check_is_fitted()
        t = self.table_
        return [(t.states[i], t.actions[j]) for i, j in zip(*np.nonzero(t.pruned))]

    # ------------------------------------------------------------------ learning
    def reward(self, trace: FlowTrace, score: float) -> float:
        """``score - cost_weight * tokens / token_scale_`` of a run."""
        self.check_is_fitted()
        return float(score - self.config_.cost_weight * trace.total_tokens / self.token_scale_)

    def update(self, trace: FlowTrace, score: float | None = None) -> FlowPolicy:
        """Learn online from one finished run (initialises a cold-start table when unfitted).

        Parameters
        ----------
        trace : FlowTrace
            A run of :meth:`FlowExecutor.run_flow <dataprune.agents.flow.FlowExecutor.run_flow>`
            over this policy's agents.
        score : float, optional
            Correctness of ``trace.answer`` in ``[0, 1]`` (default: ``trace.score``).

        Returns
        -------
        self
        """
        if not hasattr(self, "table_"):
            self._initialise(self.agents)
        if not isinstance(trace, FlowTrace):
            raise DataValidationError(f"expected a FlowTrace, got {type(trace).__name__}")
        score = trace.score if score is None else score
        if score is None or not 0.0 <= float(score) <= 1.0:
            raise DataValidationError(
                f"update needs the run's score in [0, 1] (got {score!r}); pass update(trace, score)"
            )
        trace.check()
        cfg = self.config_
        per_token = cfg.cost_weight / self.token_scale_
        rewards = [
            (s, p, a, float(score) if a == STOP else -per_token * tokens)
            for s, p, a, tokens in trace.transitions()
        ]
        cells = self.table_.update(rewards, learning_rate=cfg.learning_rate, discount=cfg.discount)
        self.table_.prune(cells, threshold=cfg.prune_threshold, min_visits=cfg.prune_min_visits)
        self.epsilon_ = max(cfg.epsilon_min, self.epsilon_ * cfg.epsilon_decay)
        self.n_episodes_ += 1
        return self

    def fit(self, queries: Sequence[str], evaluator: Any, *, executor: Any = None) -> FlowPolicy:
        """Learn from episodes: every epoch runs each training query once (epsilon-greedy) and
        updates the table with the evaluator's score.

        Parameters
        ----------
        queries : sequence of str
            Training queries (may be empty only with ``n_epochs == 0``: the cold-start policy).
        evaluator : object
            ``backend`` and ``score(query, answer)`` (see :mod:`~dataprune.agents.flow.evaluate`),
            e.g. :class:`~dataprune.agents.simulator.flow.SimulatorFlowEvaluator`.
        executor : FlowExecutor, optional
            Runs the episodes (default: ``FlowExecutor(evaluator.backend)``).

        Returns
        -------
        self
        """
        from dataprune.agents.flow.executor import FlowExecutor, check_token_budget

        if isinstance(queries, str) or not isinstance(queries, Sequence):
            raise DataValidationError("fit expects a sequence of query strings")
        queries = list(queries)
        for i, q in enumerate(queries):
            if not isinstance(q, str) or not q.strip():
                raise DataValidationError("expected a non-empty query string", record=i)
        if not callable(getattr(evaluator, "score", None)) or not hasattr(evaluator, "backend"):
            raise DataValidationError(
                "evaluator must have a backend and score(query, answer) -> float "
                "(see dataprune.agents.flow.evaluate)"
            )
        agents = self.agents
        if agents is None and callable(getattr(evaluator, "agents", None)):
            agents = evaluator.agents()
        self._initialise(agents)
        cfg = self.config_
        if not queries and cfg.n_epochs > 0:
            raise DataValidationError("fit needs at least one training query")
        check_token_budget(self.call_costs_, cfg.token_budget)
        if callable(getattr(evaluator, "describe", None)):
            self.trained_on_ = dict(evaluator.describe())
        runner = executor if executor is not None else FlowExecutor(evaluator.backend)
        rng = np.random.default_rng(self.random_state_)
        best, stale = -math.inf, 0
        for epoch in range(cfg.n_epochs):
            returns, scores, tokens = [], [], []
            for i in rng.permutation(len(queries)):
                trace = runner.run_flow(self, queries[i], explore=True, rng=rng)
                trace.score = evaluator.score(queries[i], trace.answer)
                returns.append(self.reward(trace, trace.score))
                scores.append(trace.score)
                tokens.append(trace.total_tokens)
                self.update(trace)
            mean_return = float(np.mean(returns))
            self.history_.append(
                {
                    "epoch": epoch + 1,
                    "mean_return": mean_return,
                    "mean_score": float(np.mean(scores)),
                    "mean_tokens": float(np.mean(tokens)),
                    "epsilon": self.epsilon_,
                    "n_pruned": int(self.table_.pruned.sum()),
                }
            )
            logger.info(
                "flow epoch %d: return %.4f, score %.3f, tokens %.0f, epsilon %.3f",
                epoch + 1,
                mean_return,
                self.history_[-1]["mean_score"],
                self.history_[-1]["mean_tokens"],
                self.epsilon_,
            )
            if mean_return > best + cfg.tol:
                best, stale = mean_return, 0
            else:
                stale += 1
                if cfg.patience and stale >= cfg.patience and epoch + 1 < cfg.n_epochs:
                    logger.info("flow training stopped early after epoch %d", epoch + 1)
                    break
        return self

    # ------------------------------------------------------------------ export
    def to_langgraph(self, agent_fns: Any, **kwargs: Any) -> Any:
        """A LangGraph ``StateGraph`` whose router calls this policy
        (:func:`~dataprune.agents.export.langgraph.policy_to_langgraph`)."""
        from dataprune.agents.export.langgraph import policy_to_langgraph

        return policy_to_langgraph(self, agent_fns, **kwargs)

    def describe(self) -> str:
        """A short text summary: pool, episodes, and per state the best learned action when it
        is proposed (``Q1``) and when it is not (``Q0``), over transitions tried at least once."""
        self.check_is_fitted()
        t = self.table_
        lines = [
            f"flow policy over {len(self.agents_)} agents, {self.n_episodes_} episodes, "
            f"{int(t.pruned.sum())} pruned transitions, context {self.config_.context!r}"
        ]
        for s in t.states:
            i = t.state_index(s)
            open_ = [t.action_index(a) for a in t.open_actions(s)]
            parts = []
            for x, label in ((1, "when proposed"), (0, "otherwise")):
                tried = [j for j in open_ if t.visits[x, i, j] > 0]
                if tried:
                    b = max(tried, key=lambda j: t.q[x, i, j])
                    parts.append(f"{label} -> {t.actions[b]} (Q{x}={t.q[x, i, b]:.3f})")
            if parts:
                lines.append(f"  {s}: " + "; ".join(parts))
        return "\n".join(lines)

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """Everything :meth:`load` needs, JSON-able (:mod:`~dataprune.agents.flow.persist`)."""
        from dataprune.agents.flow.persist import policy_to_dict

        return policy_to_dict(self)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the policy as one JSON file (no pickle)."""
        from dataprune.atomic import atomic_write_json

        out = Path(path)
        if out.is_dir():
            raise DataValidationError(
                "expected a file for the policy, found a folder", source=str(out)
            )
        atomic_write_json(out, self.to_dict())
        return out

    @classmethod
    def from_dict(cls, d: Any, *, source: str | None = None) -> FlowPolicy:
        """Inverse of :meth:`to_dict` (every field checked; errors name ``source``)."""
        from dataprune.agents.flow.persist import policy_from_dict

        return policy_from_dict(cls, d, source=source)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FlowPolicy:
        """Load a policy written by :meth:`save`.

        Raises
        ------
        DataValidationError
            One line naming the file for a missing, unreadable or malformed policy.
        """
        from dataprune.agents.flow.persist import read_policy_file

        return cls.from_dict(read_policy_file(path), source=str(Path(path)))
