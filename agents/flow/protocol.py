"""The a-priori step protocol: the line an agent appends to its output, and how it is read.

After doing its part, every agent of a dynamic workflow judges the task's progress and proposes
who acts next. On real backends it is asked (by :func:`flow_instruction`, appended to the
executor's usual prompt) to end its reply with one line::

    NEXT: <agent name or STOP>; PROGRESS: <number from 0 to 1>

:func:`parse_suffix` reads that line back, tolerantly: keys in any case and order, ``:`` or
``=``, separators ``;`` or ``,``, markdown emphasis and quotes around values, the two keys on two
consecutive lines, ``PROGRESS`` as a fraction or a percentage (``80%``, or a whole number in
``(1, 100]``), the agent given by its name or (when unique) its role, and ``END`` / ``DONE`` /
``FINISH`` / ``NONE`` for ``STOP``. The line must be among the reply's last three non-empty
lines (a "Next: ..." early in the reasoning is not a suffix). A missing or malformed line, or an
unknown agent, gives no proposal (the reason is logged and kept in :attr:`Proposal.issue`); it
never raises.

Small local models rarely write that line. With ``FlowConfig.suffix="choose"`` (or ``"auto"`` on a
backend with ``supports_choice``, such as :class:`~dataprune.agents.executor.HFLocalBackend`) the
prompt carries no instruction; instead :func:`flow_choice` asks, after the reply, a constrained
follow-up: the backend picks ``NEXT`` among the allowed agents and ``STOP`` by likelihood and
writes ``PROGRESS`` as the likelihood-weighted mean of 0, 0.25, 0.5, 0.75 and 1. It appends that
line to the reply, which :func:`parse_suffix` then reads like any other.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from dataprune.agents.executor.messages import (
    ChoiceField,
    ChoiceRequest,
    Message,
    build_chat_messages,
)
from dataprune.agents.spec import AgentSpec

logger = logging.getLogger(__name__)

__all__ = [
    "PROGRESS_LEVELS",
    "RESERVED_NAMES",
    "START",
    "STOP",
    "Proposal",
    "allowed_from_prompt",
    "flow_choice",
    "flow_instruction",
    "flow_messages",
    "parse_suffix",
    "strip_suffix",
]

#: The state before the first agent runs.
START = "START"
#: The action that ends a workflow.
STOP = "STOP"
#: Agent names a dynamic workflow refuses (compared case-insensitively): they mean START / STOP.
RESERVED_NAMES = frozenset({"start", "stop", "end", "done", "finish", "none"})
_STOP_WORDS = frozenset({"stop", "end", "done", "finish", "none"})

_KEY_RE = re.compile(r"\b(NEXT|PROGRESS)\b\s*\**\s*[:=]", re.IGNORECASE)
_NEXT_RE = re.compile(r"\bNEXT\b\s*\**\s*[:=]\s*(?P<v>.*?)\s*(?=;|\bPROGRESS\b|$)", re.IGNORECASE)
_PROGRESS_RE = re.compile(
    r"\bPROGRESS\b\s*\**\s*[:=]\s*\**\s*(?P<v>[-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*(?P<pct>%)?",
    re.IGNORECASE,
)
#: The PROGRESS values scored by a constrained follow-up.
PROGRESS_LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)

_VALUE_RE = re.compile(r"^[\w.\- ]+$")
_TAIL_LINES = 3  # the suffix must be among the last non-empty lines
_ALLOWED_PREFIX = "Agents you may hand over to:"


@dataclass(frozen=True)
class Proposal:
    """What an agent's suffix says about the next step.

    Attributes
    ----------
    next : str or None
        Proposed agent name, :data:`STOP`, or ``None`` (no usable proposal).
    progress : float or None
        The agent's judgement of how much of the task is solved, in ``[0, 1]``.
    issue : str or None
        Why (part of) the suffix could not be used: ``"missing"``, ``"malformed ..."``,
        ``"unknown agent ..."`` or ``"agent failed"``.
    raw : str or None
        The suffix line(s) as written.
    """

    next: str | None = None
    progress: float | None = None
    issue: str | None = None
    raw: str | None = None

    def action(self, stop_progress: float) -> str | None:
        """The proposed action: ``next``, else :data:`STOP` when ``progress >= stop_progress``.

        Parameters
        ----------
        stop_progress : float
            Progress at which an agent that names no successor is read as proposing STOP.

        Returns
        -------
        str or None
        """
        if self.next is not None:
            return self.next
        if self.progress is not None and self.progress >= stop_progress:
            return STOP
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Proposal:
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: d.get(k) for k in ("next", "progress", "issue", "raw")})


def _names_and_roles(agents: Sequence[AgentSpec | str]) -> tuple[dict[str, str], dict[str, str]]:
    by_name: dict[str, str] = {}
    roles: dict[str, list[str]] = {}
    for a in agents:
        name = a if isinstance(a, str) else a.name
        by_name[name.casefold()] = name
        role = "" if isinstance(a, str) else a.role
        if role:
            roles.setdefault(" ".join(role.split()).casefold(), []).append(name)
    unique_roles = {r: ns[0] for r, ns in roles.items() if len(ns) == 1}
    return by_name, unique_roles


def _suffix_lines(lines: list[str]) -> list[int]:
    """Indices of the trailing suffix block: the last line holding a key among the last three
    non-empty lines, and the key line right above it (ignoring blank lines) when the two keys are
    split over two lines."""
    tail = [i for i, ln in enumerate(lines) if ln.strip()][-_TAIL_LINES:]
    idx = [i for i in tail if _KEY_RE.search(lines[i])]
    if not idx:
        return []
    last = idx[-1]
    block = [last]
    prev = last - 1
    while prev >= 0 and not lines[prev].strip():
        prev -= 1
    if prev >= 0 and prev in idx:
        keys_last = {m.group(1).upper() for m in _KEY_RE.finditer(lines[last])}
        keys_prev = {m.group(1).upper() for m in _KEY_RE.finditer(lines[prev])}
        if not keys_last & keys_prev:
            block.insert(0, prev)
    return block


def strip_suffix(text: str | None) -> str | None:
    """``text`` without its trailing suffix line(s) (unchanged when there is none).

    Parameters
    ----------
    text : str or None

    Returns
    -------
    str or None
    """
    if text is None:
        return None
    lines = text.splitlines()
    block = _suffix_lines(lines)
    if not block:
        return text
    kept = [ln for i, ln in enumerate(lines) if i not in block]
    return "\n".join(kept).rstrip()


def _clean(value: str) -> str:
    v = value.strip().strip("*`\"'<>[](){},: ").rstrip(".").strip()
    return " ".join(v.split())


def parse_suffix(
    text: str | None, agents: Sequence[AgentSpec | str], *, log: bool = True
) -> tuple[str | None, Proposal]:
    """Split an agent's output into its content and its proposal.

    Parameters
    ----------
    text : str or None
        The agent's raw output.
    agents : sequence of AgentSpec or str
        The pool: a proposed agent must be one of them (by name, case-insensitively, or by a role
        no other agent has).
    log : bool, default=True
        Log why no proposal could be read.

    Returns
    -------
    content : str or None
        ``text`` without the suffix.
    proposal : Proposal
        ``Proposal(issue=...)`` (no proposal) when the suffix is missing or unusable.
    """
    if text is None or not text.strip():
        prop = Proposal(issue="missing")
        if log:
            logger.info("agent output is empty: no proposal")
        return text, prop
    lines = text.splitlines()
    block = _suffix_lines(lines)
    if not block:
        if log:
            logger.info("agent output has no 'NEXT: ...; PROGRESS: ...' line: no proposal")
        return text, Proposal(issue="missing")
    raw = " ".join(lines[i].strip() for i in block)
    content = "\n".join(ln for i, ln in enumerate(lines) if i not in block).rstrip()
    issues: list[str] = []
    nxt: str | None = None
    m = _NEXT_RE.search(raw)
    if m is not None:
        value = _clean(m.group("v"))
        by_name, by_role = _names_and_roles(agents)
        key = value.casefold()
        if not _VALUE_RE.match(value):
            issues.append(f"malformed NEXT value {m.group('v').strip()!r}")
        elif key in by_name:
            nxt = by_name[key]
        elif key in _STOP_WORDS:
            nxt = STOP
        elif key in by_role:
            nxt = by_role[key]
        else:
            issues.append(
                f"unknown agent {value!r} in NEXT (agents: {', '.join(by_name.values())})"
            )
    progress: float | None = None
    p = _PROGRESS_RE.search(raw)
    if p is not None:
        v = float(p.group("v"))
        if p.group("pct") or (1.0 < v <= 100.0 and v.is_integer()):
            v /= 100.0
        if 0.0 <= v <= 1.0:
            progress = v
        else:
            issues.append(f"malformed PROGRESS value {p.group('v')!r} (expected 0-1)")
    elif re.search(r"\bPROGRESS\b", raw, re.IGNORECASE):
        issues.append("malformed PROGRESS value (expected a number from 0 to 1)")
    issue = "; ".join(issues) or None
    if issue and log:
        logger.warning("agent suffix %r: %s", raw, issue)
    return content, Proposal(nxt, progress, issue, raw)


def flow_instruction(allowed: Sequence[AgentSpec | str]) -> str:
    """The request appended to an agent's prompt: judge progress, propose who acts next.

    Parameters
    ----------
    allowed : sequence of AgentSpec or str
        Agents the policy lets this agent hand over to (listed with their roles).

    Returns
    -------
    str
    """
    items = []
    for a in allowed:
        if isinstance(a, str):
            items.append(a)
        else:
            items.append(f"{a.name} ({a.role})" if a.role else a.name)
    listed = ", ".join(items) if items else "none"
    return (
        "Then judge how much of the task is solved and who should act next.\n"
        f"{_ALLOWED_PREFIX} {listed}.\n"
        "End your reply with one last line in exactly this form:\n"
        "NEXT: <agent name or STOP>; PROGRESS: <number from 0 to 1>\n"
        "Write STOP when your answer is final."
    )


def flow_choice(allowed: Sequence[AgentSpec | str]) -> ChoiceRequest:
    """The constrained follow-up asked after a reply (``FlowConfig.suffix="choose"``).

    Parameters
    ----------
    allowed : sequence of AgentSpec or str
        Agents the policy lets this agent hand over to; ``STOP`` is always an option.

    Returns
    -------
    ChoiceRequest
        Fields ``NEXT:`` (an allowed agent name or ``STOP``) and ``PROGRESS:`` (valued at
        :data:`PROGRESS_LEVELS`).
    """
    names = [a if isinstance(a, str) else a.name for a in allowed]
    listed = ", ".join(names) if names else "nobody"
    question = (
        f"Who should act next ({listed}), or STOP if your answer is final? And how much of the "
        "task is solved, from 0 to 1? Reply in one line: NEXT: <name or STOP>; PROGRESS: "
        "<number>"
    )
    return ChoiceRequest(
        question,
        (
            ChoiceField("NEXT:", tuple(f" {n}" for n in [*names, STOP])),
            ChoiceField(
                "PROGRESS:", tuple(f" {v:g}" for v in PROGRESS_LEVELS), values=PROGRESS_LEVELS
            ),
        ),
    )


def allowed_from_prompt(text: str) -> list[str] | None:
    """The agent names listed by :func:`flow_instruction` in a prompt (``None`` if absent).

    Parameters
    ----------
    text : str

    Returns
    -------
    list of str or None
    """
    for line in reversed(text.splitlines()):
        if line.startswith(_ALLOWED_PREFIX):
            body = line[len(_ALLOWED_PREFIX) :].strip().rstrip(".")
            if body == "none":
                return []
            return [item.split(" (", 1)[0].strip() for item in body.split(", ") if item.strip()]
    return None


def flow_messages(
    agent: AgentSpec,
    query: str,
    inbox: Sequence[Message],
    *,
    step: int,
    allowed: Sequence[AgentSpec | str],
    instruct: bool = True,
) -> list[dict[str, str]]:
    """The executor's chat messages for ``agent`` with :func:`flow_instruction` appended.

    Parameters
    ----------
    agent : AgentSpec
    query : str
    inbox : sequence of Message
    step : int
        Step number (from 1), shown as the round.
    allowed : sequence of AgentSpec or str
    instruct : bool, default=True
        Append the instruction (``False``: the line comes from :func:`flow_choice` instead).

    Returns
    -------
    list of dict
    """
    msgs = build_chat_messages(agent, query, inbox, round=step)
    if not instruct:
        return msgs
    msgs[-1] = {**msgs[-1], "content": msgs[-1]["content"] + "\n\n" + flow_instruction(allowed)}
    return msgs
