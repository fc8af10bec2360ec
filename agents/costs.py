"""Expected token cost of running a topology (used by token budgets and the simulator).

The cost of one run is, summed over rounds:

* every active agent: its prompt tokens (system prompt + query) plus its output tokens;
* every active spatial edge ``i -> j``: the output tokens of ``i``, re-read in ``j``'s prompt;
* every temporal edge ``i -> j`` into round ``r >= 2``: the output tokens of ``i``;
* a decision agent, when the topology has one: its prompt, every final-round output it reads,
  and its own output. Rule-based aggregators (majority vote) cost nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from dataprune.agents.topology import Topology

__all__ = ["TokenCostModel"]


@dataclass(frozen=True)
class TokenCostModel:
    """Per-agent expected prompt and output tokens.

    Parameters
    ----------
    prompt_tokens, output_tokens : mapping of agent name to int
        Expected tokens per call; agents not listed use the :class:`AgentSpec` fields
        ``prompt_tokens`` / ``output_tokens`` and then the defaults.
    default_prompt_tokens, default_output_tokens : int
        Fallbacks (a typical short system prompt + query, and a short answer).
    """

    prompt_tokens: Mapping[str, int] = field(default_factory=dict)
    output_tokens: Mapping[str, int] = field(default_factory=dict)
    default_prompt_tokens: int = 200
    default_output_tokens: int = 100

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields (``TokenCostModel(**d)`` rebuilds it)."""
        return {
            "prompt_tokens": dict(self.prompt_tokens),
            "output_tokens": dict(self.output_tokens),
            "default_prompt_tokens": self.default_prompt_tokens,
            "default_output_tokens": self.default_output_tokens,
        }

    def agent_costs(self, topology: Topology) -> tuple[np.ndarray, np.ndarray]:
        """Arrays ``(prompt, output)`` of shape (n_agents,) in the topology's agent order."""
        p = np.empty(topology.n_agents, dtype=np.float64)
        o = np.empty(topology.n_agents, dtype=np.float64)
        for i, a in enumerate(topology.agents):
            p[i] = self.prompt_tokens.get(
                a.name,
                a.prompt_tokens if a.prompt_tokens is not None else self.default_prompt_tokens,
            )
            o[i] = self.output_tokens.get(
                a.name,
                a.output_tokens if a.output_tokens is not None else self.default_output_tokens,
            )
        return p, o

    def estimate(self, topology: Topology) -> float:
        """Expected total tokens of one run of ``topology`` (see the module docstring)."""
        p, o = self.agent_costs(topology)
        act = topology.active
        A = topology.effective_adjacency()
        per_round = float(((p + o) * act).sum() + (A.sum(axis=1) * o).sum())
        total = per_round * topology.rounds
        if topology.rounds > 1:
            T = topology.effective_temporal()
            total += (topology.rounds - 1) * float((T.sum(axis=1) * o).sum())
        if topology.decision is not None:
            d = topology.decision
            dp = self.prompt_tokens.get(
                d.name,
                d.prompt_tokens if d.prompt_tokens is not None else self.default_prompt_tokens,
            )
            do = self.output_tokens.get(
                d.name,
                d.output_tokens if d.output_tokens is not None else self.default_output_tokens,
            )
            read = topology.decision_inputs_mask()
            total += dp + do + float((o * read).sum())
        return total
