"""What agents send and receive: messages, chat prompts, and answer extraction."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dataprune.agents.spec import AgentSpec

__all__ = [
    "AgentCall",
    "ChoiceField",
    "ChoiceRequest",
    "Completion",
    "Message",
    "build_chat_messages",
    "extract_answer",
]

_ANSWER_RE = re.compile(r"(?:final\s+)?answer\s*(?:is)?\s*[:=]\s*(.+)", re.IGNORECASE)


@dataclass(frozen=True)
class Message:
    """One agent output delivered to another agent.

    Attributes
    ----------
    sender : str
    content : str
    round : int
        Round (from 1) in which the sender produced it.
    """

    sender: str
    content: str
    round: int = 1


@dataclass(frozen=True)
class ChoiceField:
    """One field of a :class:`ChoiceRequest`: a prefix and the texts that may follow it.

    Attributes
    ----------
    prefix : str
        Text written before the choice (e.g. ``"NEXT: "``).
    options : tuple of str
        The allowed continuations, scored by their log-likelihood (summed over tokens).
    values : tuple of float, optional
        One number per option. With values, the field's answer is their expectation under the
        options' normalised likelihoods (written with 2 decimals) instead of the most likely
        option.
    """

    prefix: str
    options: tuple[str, ...]
    values: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not self.options:
            raise ValueError("a ChoiceField needs at least one option")
        if self.values is not None and len(self.values) != len(self.options):
            raise ValueError(
                f"ChoiceField has {len(self.options)} options but {len(self.values)} values"
            )


@dataclass(frozen=True)
class ChoiceRequest:
    """A constrained follow-up after the agent's reply, for models too small to follow a format.

    A backend that supports it (``ChatBackend.supports_choice``) asks ``question`` after the reply
    and, field by field, picks among each field's options by likelihood, each conditioned on the
    fields chosen before it. The chosen line (the fields joined by ``separator``) is appended to
    the reply on a line of its own, so callers parse it like a line the model wrote.

    Attributes
    ----------
    question : str
        The follow-up user message.
    fields : tuple of ChoiceField
    separator : str, default="; "
    """

    question: str
    fields: tuple[ChoiceField, ...]
    separator: str = "; "


@dataclass(frozen=True)
class AgentCall:
    """Everything a backend needs for one agent call.

    Attributes
    ----------
    agent : AgentSpec
    query : str
    inbox : tuple of Message
        Predecessors' outputs (spatial in this round, temporal from the previous round).
    round : int
    messages : list of dict
        OpenAI-style chat messages built from the above (``role`` / ``content``).
    timeout : float
        Seconds allowed for this attempt.
    is_decision : bool
        True for the decision agent.
    max_new_tokens : int, optional
        Cap on this call's output tokens (with ``choice``: generated plus follow-up tokens), on
        top of the backend's own cap; a hard token budget sets it.
    choice : ChoiceRequest, optional
        A constrained follow-up (backends without ``supports_choice`` ignore it).
    """

    agent: AgentSpec
    query: str
    inbox: tuple[Message, ...]
    round: int
    messages: list[dict[str, str]]
    timeout: float
    is_decision: bool = False
    max_new_tokens: int | None = None
    choice: ChoiceRequest | None = None


@dataclass(frozen=True)
class Completion:
    """A backend's answer with its token usage.

    Attributes
    ----------
    text : str
    prompt_tokens, completion_tokens : int
    usage_source : str
        ``"usage"`` (the endpoint's ``usage`` field), ``"tokenizer"`` (counted locally),
        ``"simulated"`` or ``"estimate"`` (characters / 4, when neither is available).
    model : str
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    usage_source: str = "usage"
    model: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def build_chat_messages(
    agent: AgentSpec,
    query: str,
    inbox: Sequence[Message],
    *,
    round: int = 1,
    is_decision: bool = False,
) -> list[dict[str, str]]:
    """OpenAI-style messages: the agent's profile as system prompt, the task and its inbox."""
    system = agent.profile or (
        f"You are {agent.role}." if agent.role else "You are a helpful agent."
    )
    parts = [f"Task:\n{query.strip()}"]
    if inbox:
        lines = [f"[{m.sender}, round {m.round}] {m.content.strip()}" for m in inbox]
        parts.append("Messages from other agents:\n" + "\n".join(lines))
    if is_decision:
        parts.append(
            "You are the decision maker. Weigh the agents' answers and give the final answer on "
            "the last line as 'Answer: <answer>'."
        )
    else:
        parts.append("Think briefly, then give your answer on the last line as 'Answer: <answer>'.")
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(parts)}]


def extract_answer(text: str | None) -> str | None:
    """The answer in an agent's output: the last ``Answer: ...`` line, else the last non-empty
    line; surrounding whitespace, quotes and a trailing period removed. ``None`` for empty text."""
    if not text or not text.strip():
        return None
    hits = _ANSWER_RE.findall(text)
    ans = hits[-1] if hits else [ln for ln in text.splitlines() if ln.strip()][-1]
    ans = ans.strip().strip("*`\"' ").rstrip(".").strip()
    return ans or None
