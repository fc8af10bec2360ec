"""Exact and Monte Carlo values of a flow policy in the simulator.

For a greedy policy (no exploration) :func:`expected_flow` enumerates every outcome of every step
of a run with :class:`~dataprune.agents.simulator.flow.SimulatedFlowBackend` agents (correct or
not, belief flipped or not, each proposal) and merges outcomes that lead to the same state (agent,
proposal, steps, the correct / wrong counts of what the next agent reads, and -- with a token
budget -- the exact tokens spent and read; without one, tokens add up linearly): this gives the
exact expected accuracy, tokens and reward of the policy per query type. :func:`sample_flow` runs
the policy on sampled queries with :class:`~dataprune.agents.flow.FlowExecutor` and reports means
with 95 % normal confidence intervals (for exploring policies, or to check the exact values).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dataprune.agents.flow.context import CONTEXTS
from dataprune.agents.flow.executor import FlowExecutor, affordable_agents, check_token_budget
from dataprune.agents.flow.protocol import START, STOP, Proposal
from dataprune.agents.simulator.flow import SimulatedFlowBackend, _check_rate, proposal_distribution
from dataprune.agents.simulator.propagation import p_correct
from dataprune.errors import DataValidationError

if TYPE_CHECKING:
    from dataprune.agents.flow.policy import FlowPolicy
    from dataprune.agents.simulator.environment import SimulatedEnvironment

logger = logging.getLogger(__name__)

__all__ = ["FlowValue", "expected_flow", "sample_flow"]


@dataclass(frozen=True)
class FlowValue:
    """Expected accuracy, tokens and reward of a flow policy.

    Attributes
    ----------
    accuracy, tokens, reward, steps : float
        Means (reward = accuracy - cost_weight * tokens / token_scale).
    method : {"exact", "monte_carlo"}
    n_runs : int
        Sampled runs (0 for exact values).
    accuracy_ci, tokens_ci, reward_ci : float
        Half-widths of 95 % confidence intervals (0 for exact values).
    """

    accuracy: float
    tokens: float
    reward: float
    steps: float
    method: str
    n_runs: int = 0
    accuracy_ci: float = 0.0
    tokens_ci: float = 0.0
    reward_ci: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return asdict(self)


def _type_weights(env: SimulatedEnvironment, qtype: int | None, weights: Any) -> np.ndarray:
    k = env.n_types
    if qtype is not None:
        if not 0 <= qtype < k:
            raise DataValidationError(f"qtype must be in [0, {k}), got {qtype}")
        w = np.zeros(k)
        w[qtype] = 1.0
        return w
    w = np.full(k, 1.0 / k) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (k,) or (w < 0).any() or w.sum() <= 0:
        raise DataValidationError(f"type_weights must be {k} non-negative numbers")
    return w / w.sum()


def _expected_one_type(
    env: SimulatedEnvironment,
    policy: FlowPolicy,
    qtype: int,
    *,
    progress_noise: float,
    proposal_noise: float,
    max_steps: int,
    budget: float | None,
) -> tuple[float, float, float]:
    window = CONTEXTS.get(policy.config_.context).window
    idx = {a.name: i for i, a in enumerate(env.agents)}
    missing = [a.name for a in policy.agents_ if a.name not in idx]
    if missing:
        raise DataValidationError(
            f"agent {missing[0]!r} is not in the simulated environment; agents are: "
            f"{', '.join(idx)}"
        )
    comp = env.competence[:, qtype]
    costs = policy.call_costs_
    prompt = {a.name: a.prompt_tokens for a in env.agents}
    out = {a.name: a.output_tokens for a in env.agents}
    dists = {
        a.name: proposal_distribution(
            env, a.name, qtype, [b.name for b in policy.allowed_after(a.name)], proposal_noise
        )
        for a in policy.agents_
    }
    decisions: dict[Any, str] = {}

    # A node is what the next decision and the correctness rule depend on: (agent, proposal,
    # steps, correct/wrong summary of what the next agent reads, last step correct, and -- only
    # with a token budget -- the exact tokens spent and read). Its value is (probability,
    # probability-weighted tokens spent, probability-weighted tokens the next agent reads), so
    # without a budget paths that differ only in tokens merge and tokens add up linearly.
    def counts(summary: Any) -> tuple[int, int]:
        if window is None:
            return summary
        n_c = sum(c for c, _ in summary)
        return n_c, len(summary) - n_c

    def extend(summary: Any, correct: bool, o: int) -> Any:
        if window is None:
            return (summary[0] + correct, summary[1] + (not correct))
        return (*summary, (correct, o))[-window:]

    init = (0, 0) if window is None else ()
    frontier: dict[Any, tuple[float, float, float]] = {
        (START, None, 0, init, False, None if budget is None else (0, 0)): (1.0, 0.0, 0.0)
    }
    acc = tok = steps = 0.0
    while frontier:
        nxt_frontier: dict[Any, list[float]] = {}
        for (state, prop, k, summary, last_ok, exact), (p, w_spent, w_read) in frontier.items():
            n_c, n_w = counts(summary)
            if window is not None:
                w_read = p * sum(o for _, o in summary)
            allowed = None
            if exact is not None:
                read_now = exact[1] if window is None else sum(o for _, o in summary)
                allowed = affordable_agents(costs, exact[0], read_now, budget)
            stop = k >= max_steps or (state != START and allowed is not None and not allowed)
            if not stop:
                key = (state, prop, None if allowed is None else frozenset(allowed))
                if key not in decisions:
                    proposal = None if state == START else Proposal(prop, None)
                    decisions[key] = policy.decide(state, proposal, allowed=allowed).action
                action = decisions[key]
                stop = action == STOP
            if stop:
                acc += p * last_ok
                tok += w_spent
                steps += p * k
                continue
            i = idx[action]
            pc = float(p_correct(comp[i], n_c, n_w, alpha=env.alpha, beta=env.beta))
            own = prompt[action] + out[action]
            child_spent = w_spent + w_read + p * own
            child_read = w_read + p * out[action]
            for correct, pcor in ((True, pc), (False, 1.0 - pc)):
                new_summary = extend(summary, correct, out[action])
                for believes, pb in (
                    (correct, 1.0 - progress_noise),
                    (not correct, progress_noise),
                ):
                    for nxt, pp in [(STOP, 1.0)] if believes else dists[action]:
                        q = pcor * pb * pp
                        if q <= 0.0:
                            continue
                        new_exact = None
                        if exact is not None:
                            new_exact = (exact[0] + read_now + own, exact[1] + out[action])
                        node = (action, nxt, k + 1, new_summary, correct, new_exact)
                        cur = nxt_frontier.setdefault(node, [0.0, 0.0, 0.0])
                        cur[0] += p * q
                        cur[1] += q * child_spent
                        cur[2] += q * child_read
        frontier = {k_: (v[0], v[1], v[2]) for k_, v in nxt_frontier.items()}
    return acc, tok, steps


def expected_flow(
    env: SimulatedEnvironment,
    policy: FlowPolicy,
    qtype: int | None = None,
    *,
    type_weights: Sequence[float] | None = None,
    progress_noise: float = 0.2,
    proposal_noise: float = 0.1,
    max_steps: int | None = None,
    token_budget: float | None = None,
) -> FlowValue:
    """Exact expected accuracy, tokens and reward of a greedy flow policy (module docs).

    Parameters
    ----------
    env : SimulatedEnvironment
    policy : FlowPolicy
        Fitted (or cold start), over agents of ``env``.
    qtype : int, optional
        One query type; default: the mixture ``type_weights`` (uniform by default, as
        :meth:`SimulatedEnvironment.make_queries` draws them).
    type_weights : sequence of float, optional
    progress_noise, proposal_noise : float
        Of the simulated agents (:class:`SimulatedFlowBackend`).
    max_steps, token_budget : optional
        Default: the policy's config.

    Returns
    -------
    FlowValue
        ``method="exact"``.
    """
    policy.check_is_fitted()
    _check_rate(progress_noise, "progress_noise")
    _check_rate(proposal_noise, "proposal_noise")
    cfg = policy.config_
    steps_cap = max_steps or cfg.max_steps
    budget = token_budget if token_budget is not None else cfg.token_budget
    check_token_budget(policy.call_costs_, budget)
    w = _type_weights(env, qtype, type_weights)
    acc = tok = steps = 0.0
    for t in np.flatnonzero(w > 0):
        a, k, s = _expected_one_type(
            env,
            policy,
            int(t),
            progress_noise=progress_noise,
            proposal_noise=proposal_noise,
            max_steps=steps_cap,
            budget=budget,
        )
        acc, tok, steps = acc + w[t] * a, tok + w[t] * k, steps + w[t] * s
    reward = acc - cfg.cost_weight * tok / policy.token_scale_
    return FlowValue(float(acc), float(tok), float(reward), float(steps), "exact")


def sample_flow(
    env: SimulatedEnvironment,
    policy: FlowPolicy,
    queries: Sequence[str] | int = 400,
    *,
    progress_noise: float = 0.2,
    proposal_noise: float = 0.1,
    explore: bool = False,
    random_state: int = 0,
    max_steps: int | None = None,
    token_budget: float | None = None,
) -> FlowValue:
    """Monte Carlo value of a flow policy: one run per query, 95 % normal confidence intervals.

    Parameters
    ----------
    env : SimulatedEnvironment
    policy : FlowPolicy
    queries : sequence of str or int, default=400
        Query texts, or how many to draw with ``env.make_queries(n, random_state=...)``.
    progress_noise, proposal_noise : float
        Of the simulated agents.
    explore : bool, default=False
        Run epsilon-greedy with the policy's current epsilon.
    random_state : int, default=0
        Seeds drawn queries, the backend and exploration.
    max_steps, token_budget : optional
        Default: the policy's config.

    Returns
    -------
    FlowValue
        ``method="monte_carlo"``.
    """
    policy.check_is_fitted()
    if isinstance(queries, int):
        if queries < 2:
            raise DataValidationError(
                f"need at least 2 runs for a confidence interval, got {queries}"
            )
        queries = [q.text for q in env.make_queries(queries, random_state=random_state)]
    queries = list(queries)
    if len(queries) < 2:
        raise DataValidationError("need at least 2 queries for a confidence interval")
    backend = SimulatedFlowBackend(
        env, progress_noise=progress_noise, proposal_noise=proposal_noise, random_state=random_state
    )
    runner = FlowExecutor(backend, max_steps=max_steps, token_budget=token_budget, max_retries=0)
    rng = np.random.default_rng(random_state)
    scores, tokens, steps = [], [], []
    for q in queries:
        trace = runner.run_flow(policy, q, explore=explore, rng=rng if explore else None)
        scores.append(float(trace.answer == env.lookup(q).answer))
        tokens.append(float(trace.total_tokens))
        steps.append(float(len(trace.steps)))
    s, t = np.asarray(scores), np.asarray(tokens)
    r = s - policy.config_.cost_weight * t / policy.token_scale_
    n = len(queries)

    def ci(x: np.ndarray) -> float:
        return float(1.96 * x.std(ddof=1) / np.sqrt(n))

    return FlowValue(
        float(s.mean()),
        float(t.mean()),
        float(r.mean()),
        float(np.mean(steps)),
        "monte_carlo",
        n,
        ci(s),
        ci(t),
        ci(r),
    )
