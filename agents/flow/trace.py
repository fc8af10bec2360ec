"""The record of one dynamic workflow run: steps, decisions, tokens, and its topology."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from dataprune.agents.executor.results import AgentRun, TokenLedger
from dataprune.agents.flow.protocol import START, STOP, Proposal
from dataprune.agents.spec import AgentSpec
from dataprune.agents.topology import Topology
from dataprune.errors import DataValidationError

logger = logging.getLogger(__name__)

__all__ = ["Decision", "FlowStep", "FlowTrace"]


@dataclass(frozen=True)
class Decision:
    """One choice of the policy.

    Attributes
    ----------
    state : str
        :data:`~dataprune.agents.flow.protocol.START` or the agent that just acted.
    action : str
        The next agent or :data:`~dataprune.agents.flow.protocol.STOP`.
    proposed : str or None
        The action the acting agent proposed (``None``: none, or not allowed here).
    explored : bool
        Chosen at random (epsilon-greedy exploration).
    forced : str or None
        ``"max_steps"`` or ``"budget"`` when the run had to stop.
    scores : dict
        ``Q + bonus`` of every allowed action (empty for explored and forced decisions).
    """

    state: str
    action: str
    proposed: str | None = None
    explored: bool = False
    forced: str | None = None
    scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return asdict(self)


@dataclass
class FlowStep:
    """One agent call of a dynamic workflow.

    Attributes
    ----------
    index : int
        Step number, from 1.
    state : str
        Who acted before (``START`` for the first step).
    run : AgentRun
        The executor's record of the call (raw output, tokens, attempts, status).
    content : str or None
        The output without its suffix (what later agents read).
    proposal : Proposal
        The acting agent's progress judgement and proposed successor.
    inputs : list of int
        Step numbers whose outputs this step read.
    """

    index: int
    state: str
    run: AgentRun
    content: str | None
    proposal: Proposal
    inputs: list[int] = field(default_factory=list)

    @property
    def agent(self) -> str:
        """The agent that acted."""
        return self.run.agent

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens of the call."""
        return int(self.run.prompt_tokens + self.run.completion_tokens)

    @property
    def ok(self) -> bool:
        """The call succeeded."""
        return self.run.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return {
            "index": self.index,
            "state": self.state,
            "agent": self.agent,
            "content": self.content,
            "proposal": self.proposal.to_dict(),
            "inputs": list(self.inputs),
            "run": asdict(self.run),
        }


@dataclass
class FlowTrace:
    """What a dynamic workflow run did.

    Attributes
    ----------
    query : str
    steps : list of FlowStep
    decisions : list of Decision
        ``len(steps) + 1`` choices: who starts, who follows each step, and the final STOP.
    answer : str or None
        The answer of the last step that produced one.
    stopped_by : {"policy", "max_steps", "budget"}
    ledger : TokenLedger
    wall_time_s : float
    context : str
        The context rule of the run.
    agents : tuple of AgentSpec
        The policy's pool (for :meth:`to_topology`).
    score : float or None
        Correctness of ``answer`` in ``[0, 1]`` once evaluated (what
        :meth:`FlowPolicy.update <dataprune.agents.flow.FlowPolicy.update>` learns from).
    """

    query: str
    steps: list[FlowStep]
    decisions: list[Decision]
    answer: str | None
    stopped_by: str
    ledger: TokenLedger
    wall_time_s: float
    context: str
    agents: tuple[AgentSpec, ...] = ()
    score: float | None = None

    @property
    def path(self) -> list[str]:
        """Agents in the order they acted."""
        return [s.agent for s in self.steps]

    @property
    def total_tokens(self) -> int:
        """Tokens of the whole run."""
        return int(self.ledger.total_tokens)

    def transitions(self) -> list[tuple[str, str | None, str, int]]:
        """``(state, proposed, action, tokens)`` per decision; ``tokens`` is the cost of the call
        the action started (0 for STOP)."""
        out = []
        for k, d in enumerate(self.decisions):
            tokens = self.steps[k].tokens if d.action != STOP and k < len(self.steps) else 0
            out.append((d.state, d.proposed, d.action, tokens))
        return out

    def node_names(self) -> list[str]:
        """Unique node names of the steps: the agent's name, ``name.2``, ``name.3``, ... for
        later visits of the same agent."""
        used = {a.name for a in self.agents} | set(self.path)
        seen: dict[str, int] = {}
        names = []
        for s in self.steps:
            k = seen[s.agent] = seen.get(s.agent, 0) + 1
            if k == 1:
                names.append(s.agent)
                continue
            nm = f"{s.agent}.{k}"
            while nm in used:
                nm += "_"
            used.add(nm)
            names.append(nm)
        return names

    def to_topology(self) -> Topology:
        """The path actually taken as a :class:`~dataprune.agents.topology.Topology`.

        One node per step (an agent that acted twice appears twice: ``name`` and ``name.2``),
        an edge ``i -> j`` for every output step ``j`` read, aggregator ``"last"`` (the answer of
        the last step). Every step is active (pruned agents are simply absent), so the mermaid,
        networkx, LangGraph and AutoGen exports apply.

        Returns
        -------
        Topology

        Raises
        ------
        DataValidationError
            When no agent ran.
        """
        if not self.steps:
            raise DataValidationError("the run has no step to turn into a topology")
        specs = {a.name: a for a in self.agents}
        names = self.node_names()
        nodes = []
        for nm, s in zip(names, self.steps):
            base = specs.get(s.agent, AgentSpec(s.agent))
            meta = {**dict(base.metadata), "agent": s.agent, "step": s.index}
            nodes.append(base.with_(name=nm, metadata=meta, required=False))
        n = len(nodes)
        adj = np.zeros((n, n), dtype=bool)
        for j, s in enumerate(self.steps):
            for i in s.inputs:
                adj[i - 1, j] = True
        return Topology(
            nodes,
            adj,
            aggregator="last",
            metadata={
                "flow": True,
                "query": self.query,
                "path": self.path,
                "stopped_by": self.stopped_by,
                "context": self.context,
                "total_tokens": self.total_tokens,
            },
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (steps with their runs, decisions, ledger)."""
        return {
            "query": self.query,
            "answer": self.answer,
            "path": self.path,
            "stopped_by": self.stopped_by,
            "context": self.context,
            "total_tokens": self.total_tokens,
            "score": self.score,
            "wall_time_s": round(self.wall_time_s, 4),
            "steps": [s.to_dict() for s in self.steps],
            "decisions": [d.to_dict() for d in self.decisions],
            "ledger": self.ledger.to_dict(),
        }

    def check(self) -> None:
        """Raise :class:`DataValidationError` unless the decisions chain the steps.

        The first decision is taken at START, decision ``k`` names step ``k + 1``'s agent, and
        the last decision is STOP.
        """
        if len(self.decisions) != len(self.steps) + 1:
            raise DataValidationError(
                f"a trace needs one decision more than steps, got {len(self.decisions)} "
                f"decisions for {len(self.steps)} steps"
            )
        if self.decisions[0].state != START or self.decisions[-1].action != STOP:
            raise DataValidationError("a trace's decisions must start at START and end with STOP")
        for k, s in enumerate(self.steps):
            if self.decisions[k].action != s.agent or self.decisions[k + 1].state != s.agent:
                raise DataValidationError(
                    f"step {s.index} ran {s.agent!r} but the decisions around it say "
                    f"{self.decisions[k].action!r} -> {self.decisions[k + 1].state!r}"
                )
