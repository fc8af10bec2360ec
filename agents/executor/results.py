"""What an execution records: each agent call (:class:`AgentRun`), the tokens per agent
(:class:`TokenLedger`), the whole run (:class:`ExecutionResult`), and how the final answer is
combined from the agents' answers (:func:`aggregate_answers`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dataprune.agents.topology import Topology

__all__ = ["AgentRun", "AgentTokens", "ExecutionResult", "TokenLedger", "aggregate_answers"]


@dataclass
class AgentRun:
    """One agent's work in one round.

    Attributes
    ----------
    agent : str
    round : int
    level : int
        Parallel level within the round (-1 for the decision agent and pruned agents).
    status : {"ok", "failed", "pruned"}
    output : str or None
    answer : str or None
        Extracted answer.
    prompt_tokens, completion_tokens : int
    usage_source : str
    attempts : int
    latency_s : float
    error : str or None
    inputs : list of str
        Senders whose messages it read.
    missing_inputs : list of str
        Predecessors that failed (their message is missing).
    """

    agent: str
    round: int
    level: int
    status: str
    output: str | None = None
    answer: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usage_source: str = ""
    attempts: int = 0
    latency_s: float = 0.0
    started_s: float = 0.0
    error: str | None = None
    inputs: list[str] = field(default_factory=list)
    missing_inputs: list[str] = field(default_factory=list)


@dataclass
class AgentTokens:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    failed_calls: int = 0
    usage_sources: list[str] = field(default_factory=list)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class TokenLedger:
    """Tokens per agent, from the endpoint's ``usage`` or tokenizer counts."""

    def __init__(self) -> None:
        self.agents: dict[str, AgentTokens] = {}

    def add(self, agent: str, run: AgentRun) -> None:
        t = self.agents.setdefault(agent, AgentTokens())
        t.prompt_tokens += run.prompt_tokens
        t.completion_tokens += run.completion_tokens
        t.calls += run.attempts
        t.failed_calls += run.attempts - (1 if run.status == "ok" else 0)
        if run.usage_source and run.usage_source not in t.usage_sources:
            t.usage_sources.append(run.usage_source)

    @property
    def prompt_tokens(self) -> int:
        return sum(t.prompt_tokens for t in self.agents.values())

    @property
    def completion_tokens(self) -> int:
        return sum(t.completion_tokens for t in self.agents.values())

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        return {
            "agents": {
                k: {**asdict(v), "total_tokens": v.total_tokens} for k, v in self.agents.items()
            },
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass
class ExecutionResult:
    """What a run produced.

    Attributes
    ----------
    query : str
    answer : str or None
        The final answer (``None`` when nothing could decide).
    decided_by : str
        ``"decision:<name>"``, or the aggregator rule used.
    runs : list of AgentRun
        Every agent-round, pruned agents included (status ``"pruned"``, never called).
    ledger : TokenLedger
    failed : list of str
        ``"name"`` (or ``"name@round"`` with several rounds) of agents that failed.
    skipped : list of str
        Pruned agents (not called).
    wall_time_s : float
    """

    query: str
    answer: str | None
    decided_by: str
    runs: list[AgentRun]
    ledger: TokenLedger
    failed: list[str]
    skipped: list[str]
    wall_time_s: float
    topology: Topology | None = None

    @property
    def ok(self) -> bool:
        """True when no agent failed and an answer was produced."""
        return not self.failed and self.answer is not None

    def run_of(self, agent: str, round: int | None = None) -> AgentRun:
        rs = [r for r in self.runs if r.agent == agent and (round is None or r.round == round)]
        if not rs:
            raise KeyError(agent)
        return rs[-1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "answer": self.answer,
            "decided_by": self.decided_by,
            "failed": self.failed,
            "skipped": self.skipped,
            "wall_time_s": round(self.wall_time_s, 4),
            "ledger": self.ledger.to_dict(),
            "runs": [asdict(r) for r in self.runs],
        }


def aggregate_answers(
    answers: list[str | None], rule: str = "majority"
) -> tuple[str | None, int | None]:
    """Combine extracted answers (given in topological order).

    ``"majority"``: most frequent answer (compared case-insensitively, whitespace-normalised);
    a tie goes to the answer of the earliest voter. ``"last"``: the last non-missing answer.
    Returns ``(answer, index of the voter whose text is returned)``.
    """
    valid = [(i, a) for i, a in enumerate(answers) if a is not None]
    if not valid:
        return None, None
    if rule == "last":
        i, a = valid[-1]
        return a, i

    def norm(a: str) -> str:
        return " ".join(a.split()).casefold()

    counts: dict[str, int] = {}
    for _, a in valid:
        counts[norm(a)] = counts.get(norm(a), 0) + 1
    top = max(counts.values())
    for i, a in valid:
        if counts[norm(a)] == top:
            return a, i
    return None, None  # pragma: no cover
