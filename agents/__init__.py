"""Adaptive multi-agent graph pruning (installed as ``dataprune.agents``).

Objects: :class:`AgentSpec`, :class:`Topology` (DAG per round, node mask, edge probabilities,
rounds, decision/aggregator; presets and framework exports). Pruners: :class:`AGPPruner`
(query-conditioned GCN, Stage II training on AGP records) and the baselines of
:mod:`dataprune.agents.baselines`. Stage I mining: :func:`mine_subgraphs`. Execution:
:class:`Executor` with OpenAI-compatible, local Hugging Face and simulated backends. Dynamic
workflows (PriorDynaFlow): :class:`FlowPolicy` chooses the next agent at run time from a learned
Q-table and the acting agent's proposal, run by :class:`FlowExecutor` (:mod:`dataprune.agents.flow`).
Offline evaluation: :mod:`dataprune.agents.simulator`; whether AGP beats one fixed topology on
your own records: :func:`evaluate_agp`.

Every name is imported on first use (torch only when an AGP model is trained or loaded).
"""

from __future__ import annotations

from dataprune.lazy import lazy_exports

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
    "FlowConfig",
    "FlowExecutor",
    "FlowPolicy",
    "FlowTrace",
    "FullGraphPruner",
    "HFLocalBackend",
    "LLMConfig",
    "MajorityPruner",
    "NotFittedError",
    "OpenAIChatBackend",
    "PresetPruner",
    "RandomPruner",
    "SimulatedBackend",
    "TokenCostModel",
    "Topology",
    "TopologyPruner",
    "evaluate_agp",
    "load_agp_records",
    "make_pruner",
    "mine_subgraphs",
    "select_topology",
    "validate_agp_records",
]

_WHERE = {
    "AGPConfig": "dataprune.agents.agp",
    "AGPPruner": "dataprune.agents.agp",
    "AGPRecords": "dataprune.agents.records",
    "AgentPrunePruner": "dataprune.agents.baselines",
    "AgentSpec": "dataprune.agents.spec",
    "Evaluation": "dataprune.agents.mining",
    "ExecutionResult": "dataprune.agents.executor",
    "Executor": "dataprune.agents.executor",
    "ExecutorEvaluator": "dataprune.agents.mining",
    "FlowConfig": "dataprune.agents.flow",
    "FlowExecutor": "dataprune.agents.flow",
    "FlowPolicy": "dataprune.agents.flow",
    "FlowTrace": "dataprune.agents.flow",
    "FullGraphPruner": "dataprune.agents.baselines",
    "HFLocalBackend": "dataprune.agents.executor",
    "LLMConfig": "dataprune.agents.spec",
    "MajorityPruner": "dataprune.agents.baselines",
    "NotFittedError": "dataprune.errors",
    "OpenAIChatBackend": "dataprune.agents.executor",
    "PRUNERS": "dataprune.agents.baselines",
    "PresetPruner": "dataprune.agents.baselines",
    "RandomPruner": "dataprune.agents.baselines",
    "SimulatedBackend": "dataprune.agents.executor",
    "TokenCostModel": "dataprune.agents.costs",
    "Topology": "dataprune.agents.topology",
    "TopologyPruner": "dataprune.agents.pruner",
    "evaluate_agp": "dataprune.agents.agp.evaluation",
    "load_agp_records": "dataprune.agents.records",
    "make_pruner": "dataprune.agents.baselines",
    "mine_subgraphs": "dataprune.agents.mining",
    "select_topology": "dataprune.agents.pruner",
    "validate_agp_records": "dataprune.agents.records",
}

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, __all__)
