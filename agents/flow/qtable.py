"""The Q-table over role transitions: choice rule, Q-learning update and pruning.

States are ``START`` and the agents; actions are the agents and ``STOP``. A state cannot hand
over to itself, and ``START -> STOP`` does not exist (at least one agent runs). Every transition
``s -> a`` has two Q-values: ``Q1(s, a)`` for when the acting agent proposed ``a`` and
``Q0(s, a)`` for when it did not, so the table learns how far each role's proposals can be
trusted (a distractor's "STOP" is worth less than a specialist's).

Choice rule
-----------
Among the allowed actions ``A(s)`` (valid, not pruned, within the token budget; only STOP once
``max_steps`` is reached), with the acting agent's proposal ``p`` (at START: the start agent)::

    score(a) = Q1(s, a) + proposal_bonus    if a == p
             = Q0(s, a)                     otherwise
    action   = argmax_a score(a)          (ties: the proposal, then STOP, then pool order)

and, with probability ``epsilon``, a uniformly random action of ``A(s)`` instead (training).
With an all-zero table (cold start) the proposal decides. A proposal outside ``A(s)`` counts as
no proposal.

Update
------
Every transition ``(s, p, a)`` of a finished episode, from the last to the first (so the final
reward reaches the first transition in one episode), with ``Qx = Q1`` if ``a == p`` else ``Q0``::

    Qx(s, a) += learning_rate * (target - Qx(s, a))
    target    = r                                                   if a == STOP
              = r + discount * max_{a' in A*(a)} score'(a')         otherwise

where ``score'`` is the score above without the bonus, at the next state ``a`` with the proposal
its agent actually made, ``A*`` the valid, unpruned actions, ``r = score`` for STOP and
``r = -cost_weight * tokens(call of a) / token_scale`` for an agent. Summed over an episode
(``discount = 1``) the rewards are ``score - cost_weight * tokens / token_scale``.

Pruning
-------
A transition updated at least ``prune_min_visits`` times whose Q-values (of the variants seen)
are all below ``prune_threshold`` is pruned for good; STOP and the last unpruned action of a
state never are.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

import numpy as np

from dataprune.agents.flow.protocol import START, STOP
from dataprune.errors import DataValidationError

logger = logging.getLogger(__name__)

__all__ = ["QTable"]


class QTable:
    """Q-values, visit counts and pruned transitions of a pool.

    Parameters
    ----------
    agents : sequence of str
        Agent names, in pool order.

    Attributes
    ----------
    states : list of str
        ``[START, *agents]``.
    actions : list of str
        ``[*agents, STOP]``.
    q : ndarray of shape (2, n_agents + 1, n_agents + 1)
        Q-values: ``q[1]`` when the action was proposed, ``q[0]`` when not; rows = states,
        columns = actions.
    visits : ndarray of int64, same shape
        Updates per variant and transition.
    pruned : ndarray of bool, shape (n_agents + 1, n_agents + 1)
    valid : ndarray of bool, shape (n_agents + 1, n_agents + 1)
        Transitions that exist (no self hand-over, no ``START -> STOP``).
    """

    def __init__(self, agents: Sequence[str]) -> None:
        self.agents = list(agents)
        n = len(self.agents)
        self.states = [START, *self.agents]
        self.actions = [*self.agents, STOP]
        self._state_idx = {s: i for i, s in enumerate(self.states)}
        self._action_idx = {a: i for i, a in enumerate(self.actions)}
        self.q = np.zeros((2, n + 1, n + 1), dtype=np.float64)
        self.visits = np.zeros((2, n + 1, n + 1), dtype=np.int64)
        self.pruned = np.zeros((n + 1, n + 1), dtype=bool)
        valid = np.ones((n + 1, n + 1), dtype=bool)
        valid[0, n] = False
        for i in range(n):
            valid[i + 1, i] = False
        self.valid = valid

    @property
    def n_agents(self) -> int:
        """Number of agents."""
        return len(self.agents)

    def state_index(self, state: str) -> int:
        """Row of ``state`` (raises with the valid states when unknown)."""
        try:
            return self._state_idx[state]
        except KeyError:
            raise DataValidationError(
                f"unknown state {state!r}; states are: {', '.join(self.states)}"
            ) from None

    def action_index(self, action: str) -> int:
        """Column of ``action`` (raises with the valid actions when unknown)."""
        try:
            return self._action_idx[action]
        except KeyError:
            raise DataValidationError(
                f"unknown agent {action!r}; agents are: {', '.join(self.agents)} (or {STOP})"
            ) from None

    def open_actions(self, state: str) -> list[str]:
        """Valid, unpruned actions of ``state`` in column order."""
        s = self.state_index(state)
        return [a for j, a in enumerate(self.actions) if self.valid[s, j] and not self.pruned[s, j]]

    def candidates(
        self, state: str, allowed: Collection[str] | None = None, *, stop_only: bool = False
    ) -> list[int]:
        """Columns the policy may choose from ``state``.

        Parameters
        ----------
        state : str
        allowed : collection of str, optional
            Agents that may run now (e.g. those within the token budget); STOP is always
            allowed where valid.
        stop_only : bool, default=False
            Only STOP (``max_steps`` reached).
        """
        s = self.state_index(state)
        out = []
        for j, a in enumerate(self.actions):
            if not self.valid[s, j] or self.pruned[s, j]:
                continue
            if a == STOP or (not stop_only and (allowed is None or a in allowed)):
                out.append(j)
        return out

    def scores(self, state: str, proposed: str | None, cands: Sequence[int]) -> np.ndarray:
        """``Q1`` for the proposed column, ``Q0`` for the others, over ``cands`` (no bonus)."""
        s = self.state_index(state)
        p = self._action_idx.get(proposed) if proposed is not None else None
        return np.array([self.q[int(j == p), s, j] for j in cands], dtype=np.float64)

    def choose(
        self,
        state: str,
        proposed: str | None,
        cands: list[int],
        *,
        proposal_bonus: float,
    ) -> tuple[int, dict[str, float]]:
        """The greedy choice among ``cands`` (see the module docstring) and the scores."""
        n = self.n_agents
        p = self._action_idx.get(proposed) if proposed is not None else None
        vals = self.scores(state, proposed, cands)
        scores = {
            self.actions[j]: float(v + (proposal_bonus if j == p else 0.0))
            for j, v in zip(cands, vals)
        }
        best = max(scores.values())
        order = ([p] if p in cands else []) + ([n] if n in cands else []) + sorted(cands)
        for j in order:
            if scores[self.actions[j]] >= best - 1e-12:
                return j, scores
        raise AssertionError("unreachable")  # pragma: no cover

    def update(
        self,
        transitions: Sequence[tuple[str, str | None, str, float]],
        *,
        learning_rate: float,
        discount: float,
    ) -> list[tuple[int, int, int]]:
        """Q-learning over one episode, last transition first.

        Parameters
        ----------
        transitions : sequence of (state, proposed, action, reward)
            In episode order; ``proposed`` is the proposal the choice saw (``None``: none).
        learning_rate, discount : float

        Returns
        -------
        list of (int, int, int)
            The updated ``(variant, state, action)`` cells.
        """
        cells = []
        for s, p, a, r in transitions:
            si, ai = self.state_index(s), self.action_index(a)
            if not self.valid[si, ai]:
                raise DataValidationError(f"invalid transition {s} -> {a}")
            if p is not None:
                self.action_index(p)
            cells.append((int(p == a), si, ai, float(r), p))
        n = self.n_agents
        if cells and cells[-1][2] != n:
            raise DataValidationError("an episode must end with STOP")
        for t in range(len(cells) - 1, -1, -1):
            x, s, a, r, _ = cells[t]
            if a == n:
                target = r
            else:
                nxt_state = self.states[a + 1]
                nxt_prop = cells[t + 1][4]
                open_ = [
                    j for j in range(n + 1) if self.valid[a + 1, j] and not self.pruned[a + 1, j]
                ]
                target = r + discount * float(self.scores(nxt_state, nxt_prop, open_).max())
            self.q[x, s, a] += learning_rate * (target - self.q[x, s, a])
            self.visits[x, s, a] += 1
        return [(x, s, a) for x, s, a, _, _ in cells]

    def prune(
        self, cells: Sequence[tuple[int, int, int]], *, threshold: float, min_visits: int
    ) -> int:
        """Prune the transitions of ``cells`` that qualify; returns how many were pruned."""
        if min_visits <= 0:
            return 0
        n = self.n_agents
        count = 0
        for s, a in dict.fromkeys((s, a) for _, s, a in cells):
            if a == n or self.pruned[s, a]:
                continue
            seen = self.visits[:, s, a] > 0
            if self.visits[:, s, a].sum() < min_visits or (self.q[seen, s, a] >= threshold).any():
                continue
            if (self.valid[s] & ~self.pruned[s]).sum() <= 1:
                continue
            self.pruned[s, a] = True
            count += 1
            logger.info(
                "pruned transition %s -> %s (Q=%s after %d visits)",
                self.states[s],
                self.actions[a],
                np.round(self.q[seen, s, a], 3).tolist(),
                int(self.visits[:, s, a].sum()),
            )
        return count
