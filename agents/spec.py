"""Agent descriptions: who an agent is and which LLM answers for it."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from dataprune.config import ConfigMixin
from dataprune.errors import DataValidationError, UnknownOptionError

__all__ = ["LLM_BACKENDS", "AgentSpec", "LLMConfig", "as_agent_specs"]

#: Backends an :class:`LLMConfig` can name.
LLM_BACKENDS = ("openai", "hf", "simulated")

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True)
class LLMConfig(ConfigMixin):
    """Which model answers for an agent.

    Parameters
    ----------
    backend : {"openai", "hf", "simulated"}
        ``"openai"``: any OpenAI-compatible ``/chat/completions`` endpoint (OpenAI, vLLM,
        llama.cpp server, Ollama, ...); ``"hf"``: a local Hugging Face causal LM
        (SmolLM2-135M-Instruct offline by default); ``"simulated"``: the deterministic simulated
        backend of :mod:`dataprune.agents.simulator`.
    model : str, optional
        Model id sent to the endpoint, or a local path / hub id for ``"hf"``.
    base_url : str, optional
        Endpoint root for ``"openai"``, e.g. ``"http://127.0.0.1:8000/v1"``.
    api_key_env : str, default="OPENAI_API_KEY"
        Name of the environment variable holding the key (the key itself is never stored).
    temperature : float, default=0.0
    max_tokens : int, default=256
        Completion-token cap per call.
    """

    backend: str = "openai"
    model: str | None = None
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.0
    max_tokens: int = 256

    def __post_init__(self) -> None:
        if self.backend not in LLM_BACKENDS:
            raise UnknownOptionError(
                f"unknown LLM backend {self.backend!r}; valid: {', '.join(LLM_BACKENDS)}"
            )
        if self.backend == "openai" and not self.base_url:
            raise DataValidationError(
                "an 'openai' LLMConfig needs base_url (the endpoint root, e.g. "
                "'http://127.0.0.1:8000/v1')"
            )
        if self.max_tokens < 1:
            raise DataValidationError(f"max_tokens must be >= 1, got {self.max_tokens}")


@dataclass(frozen=True)
class AgentSpec:
    """One agent of the pool.

    Parameters
    ----------
    name : str
        Unique identifier (letters, digits, ``_ . -``); used as node id in every export.
    role : str, default=""
        Short role ("Math Solver", "Critic", ...).
    profile : str, default=""
        System prompt / description; embedded by the AGP pruner as the agent's node feature.
    llm : LLMConfig, optional
        Model answering for this agent (the executor may override it with one backend).
    required : bool, default=False
        Never pruned by any pruner.
    prompt_tokens, output_tokens : int, optional
        Expected prompt / completion tokens per call, used by token budgets
        (:class:`~dataprune.agents.costs.TokenCostModel`).
    """

    name: str
    role: str = ""
    profile: str = ""
    llm: LLMConfig | None = None
    required: bool = False
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise DataValidationError(
                f"agent name {self.name!r} is not valid; expected a non-empty string of letters, "
                "digits, '_', '.', '-' (not starting with '.' or '-')"
            )
        for attr in ("prompt_tokens", "output_tokens"):
            v = getattr(self, attr)
            if v is not None and (not isinstance(v, int) or v < 0):
                raise DataValidationError(f"agent {self.name!r}: {attr} must be an int >= 0")
        if isinstance(self.llm, Mapping):
            object.__setattr__(self, "llm", LLMConfig.from_dict(self.llm))

    @property
    def description(self) -> str:
        """The text that represents the agent (role and profile), used for its embedding."""
        parts = [p for p in (self.role, self.profile) if p]
        return ": ".join(parts) if parts else self.name

    def with_(self, **changes: Any) -> AgentSpec:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "role": self.role, "profile": self.profile}
        if self.llm is not None:
            d["llm"] = self.llm.to_dict()
        if self.required:
            d["required"] = True
        if self.prompt_tokens is not None:
            d["prompt_tokens"] = self.prompt_tokens
        if self.output_tokens is not None:
            d["output_tokens"] = self.output_tokens
        if self.metadata:
            d["metadata"] = dict(self.metadata)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, where: str | None = None) -> AgentSpec:
        if not isinstance(d, Mapping):
            raise DataValidationError(
                f"expected an agent object, got {type(d).__name__}", source=where
            )
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise DataValidationError(
                f"unknown agent keys {sorted(unknown)}; expected some of {sorted(known)}",
                source=where,
            )
        if "name" not in d:
            raise DataValidationError("agent object has no 'name'", source=where)
        kw = dict(d)
        if kw.get("llm") is not None:
            kw["llm"] = LLMConfig.from_dict(kw["llm"])
        return cls(**kw)


def as_agent_specs(agents: Sequence[AgentSpec | str | Mapping[str, Any]]) -> tuple[AgentSpec, ...]:
    """Normalise names, dicts or specs to a tuple of :class:`AgentSpec` with unique names."""
    if isinstance(agents, (str, bytes)) or not isinstance(agents, Sequence):
        raise DataValidationError(
            f"expected a sequence of agents (AgentSpec, name or dict), got {type(agents).__name__}"
        )
    out: list[AgentSpec] = []
    for i, a in enumerate(agents):
        if isinstance(a, AgentSpec):
            out.append(a)
        elif isinstance(a, str):
            out.append(AgentSpec(a))
        elif isinstance(a, Mapping):
            out.append(AgentSpec.from_dict(a, where=f"agent {i}"))
        else:
            raise DataValidationError(
                f"agent {i}: expected an AgentSpec, a name or a dict, got {type(a).__name__}"
            )
    seen: set[str] = set()
    for a in out:
        if a.name in seen:
            raise DataValidationError(f"duplicate agent name {a.name!r}; names must be unique")
        seen.add(a.name)
    if not out:
        raise DataValidationError("the agent pool is empty; expected at least one agent")
    return tuple(out)
