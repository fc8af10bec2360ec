"""Run topologies with real or simulated agents (level by level, concurrent within a level)."""

from __future__ import annotations

from dataprune.agents.executor.backends import (
    BackendError,
    ChatBackend,
    SimulatedBackend,
    make_backend,
)
from dataprune.agents.executor.hf import HFLocalBackend
from dataprune.agents.executor.http import OpenAIChatBackend
from dataprune.agents.executor.messages import (
    AgentCall,
    ChoiceField,
    ChoiceRequest,
    Completion,
    Message,
    build_chat_messages,
    extract_answer,
)
from dataprune.agents.executor.results import (
    AgentRun,
    ExecutionResult,
    TokenLedger,
    aggregate_answers,
)
from dataprune.agents.executor.runner import Executor

__all__ = [
    "AgentCall",
    "AgentRun",
    "BackendError",
    "ChatBackend",
    "ChoiceField",
    "ChoiceRequest",
    "Completion",
    "ExecutionResult",
    "Executor",
    "HFLocalBackend",
    "Message",
    "OpenAIChatBackend",
    "SimulatedBackend",
    "TokenLedger",
    "aggregate_answers",
    "build_chat_messages",
    "extract_answer",
    "make_backend",
]
