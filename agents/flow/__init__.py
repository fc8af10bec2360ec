"""PriorDynaFlow: a-priori dynamic agent workflows (arXiv 2509.14547).

After each step the acting agent judges the task's progress and proposes the next agent or STOP;
a Q-table over role transitions, learned from earlier runs with a reward that weighs correctness
against tokens, combines with that proposal to choose who acts next.

Modules: :mod:`~dataprune.agents.flow.config` (:class:`FlowConfig`),
:mod:`~dataprune.agents.flow.protocol` (the ``NEXT: ...; PROGRESS: ...`` suffix),
:mod:`~dataprune.agents.flow.context` (what the next agent reads),
:mod:`~dataprune.agents.flow.qtable` (choice rule, update, pruning),
:mod:`~dataprune.agents.flow.policy` (:class:`FlowPolicy`),
:mod:`~dataprune.agents.flow.persist` (its JSON file),
:mod:`~dataprune.agents.flow.executor` (:class:`FlowExecutor`),
:mod:`~dataprune.agents.flow.trace` (:class:`FlowTrace`, its topology) and
:mod:`~dataprune.agents.flow.evaluate` (training evaluators). Simulator support:
:mod:`dataprune.agents.simulator.flow`. Names load on first use.
"""

from __future__ import annotations

from dataprune.lazy import lazy_exports

__all__ = [
    "CONTEXTS",
    "START",
    "STOP",
    "SUFFIX_MODES",
    "Decision",
    "FlowConfig",
    "FlowEvaluator",
    "FlowExecutor",
    "FlowPolicy",
    "FlowStep",
    "FlowTrace",
    "Proposal",
    "QTable",
    "exact_match_scorer",
    "flow_choice",
    "flow_instruction",
    "parse_suffix",
    "strip_suffix",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "CONTEXTS": "dataprune.agents.flow.context",
        "START": "dataprune.agents.flow.protocol",
        "STOP": "dataprune.agents.flow.protocol",
        "Decision": "dataprune.agents.flow.trace",
        "FlowConfig": "dataprune.agents.flow.config",
        "FlowEvaluator": "dataprune.agents.flow.evaluate",
        "FlowExecutor": "dataprune.agents.flow.executor",
        "FlowPolicy": "dataprune.agents.flow.policy",
        "FlowStep": "dataprune.agents.flow.trace",
        "FlowTrace": "dataprune.agents.flow.trace",
        "Proposal": "dataprune.agents.flow.protocol",
        "QTable": "dataprune.agents.flow.qtable",
        "SUFFIX_MODES": "dataprune.agents.flow.config",
        "exact_match_scorer": "dataprune.agents.flow.evaluate",
        "flow_choice": "dataprune.agents.flow.protocol",
        "flow_instruction": "dataprune.agents.flow.protocol",
        "parse_suffix": "dataprune.agents.flow.protocol",
        "strip_suffix": "dataprune.agents.flow.protocol",
    },
    __all__,
)
