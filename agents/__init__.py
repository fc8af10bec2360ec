"""Adaptive multi-agent graph pruning (installed as ``dataprune.agents``).

Objects: :class:`AgentSpec`, :class:`Topology` (DAG per round, node mask, edge probabilities,
rounds, decision/aggregator; presets and framework exports). Pruners: :class:`AGPPruner`
(query-conditioned GCN, Stage II training on AGP records) and the baselines of
:mod:`dataprune.agents.baselines`. Stage I mining: :func:`mine_subgraphs`. Execution:
:class:`Executor` with OpenAI-compatible, local Hugging Face and simulated backends. Offline
evaluation: :mod:`dataprune.agents.simulator`.

Torch is only imported when an AGP model is trained or loaded.
"""

from __future__ import annotations

from dataprune.agents.agp import AGPConfig, AGPPruner
from dataprune.agents.baselines import (
    PRUNERS,
    AgentPrunePruner,
    FullGraphPruner,
    PresetPruner,
    RandomPruner,
    make_pruner,
)
from dataprune.agents.costs import TokenCostModel
from dataprune.agents.executor import (
    ExecutionResult,
    Executor,
    HFLocalBackend,
    OpenAIChatBackend,
    SimulatedBackend,
)
from dataprune.agents.mining import Evaluation, ExecutorEvaluator, mine_subgraphs
from dataprune.agents.pruner import NotFittedError, TopologyPruner, select_topology
from dataprune.agents.records import AGPRecords, load_agp_records, validate_agp_records
from dataprune.agents.spec import AgentSpec, LLMConfig
from dataprune.agents.topology import Topology

__all__ = [
    "PRUNERS",
    "AGPConfig",
    "AGPPruner",
    "AGPRecords",
    "AgentPrunePruner",
    "AgentSpec",
    "Evaluation",
    "ExecutionResult",
    "Executor",
    "ExecutorEvaluator",
    "FullGraphPruner",
    "HFLocalBackend",
    "LLMConfig",
    "NotFittedError",
    "OpenAIChatBackend",
    "PresetPruner",
    "RandomPruner",
    "SimulatedBackend",
    "TokenCostModel",
    "Topology",
    "TopologyPruner",
    "load_agp_records",
    "make_pruner",
    "mine_subgraphs",
    "select_topology",
    "validate_agp_records",
]
