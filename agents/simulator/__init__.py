"""A simulated multi-agent environment with known truth (offline evaluation of topologies).

Model
-----
* Queries have one of ``k`` latent types (domains). Every query has one correct answer and one
  *trap* answer (the plausible wrong option); every wrong agent gives the trap, the worst case for
  a vote.
* Agent ``j`` has a competence ``c[j, t]`` per type: alone it answers a type-``t`` query correctly
  with probability ``c[j, t]``. Specialists are strong on their own type, generalists are medium
  everywhere, distractors are weak everywhere.
* Propagation rule (agents in topological order, within a round): an agent first forms its own
  answer (correct w.p. ``c``). Then it reads its predecessors' final answers: with ``n_c`` correct
  and ``n_w`` wrong ones, a correct agent stays correct w.p. ``(1 - beta) ** n_w`` (each wrong
  message corrupts it independently w.p. ``beta``) and a wrong agent becomes correct w.p.
  ``1 - (1 - alpha) ** n_c`` (each correct message convinces it independently w.p. ``alpha``).
  With several rounds every agent-round is a node of the unrolled DAG (temporal edges connect
  consecutive rounds) and forms a fresh own answer.
* Decision: the topology's aggregator over final-round answers: ``majority`` of all active
  agents, ``sinks`` (majority of the active sinks) or ``last`` (the last agent in topological
  order). A tie goes to the answer of the first agent in topological order among the voters. A
  decision agent is simulated as a majority vote over everything it reads.
* Tokens: :class:`~dataprune.agents.costs.TokenCostModel` with each agent's prompt and output
  tokens (messages are re-read by their receivers).

Because correctness is binary per node, the accuracy of any topology is computed *exactly* by
dynamic programming over the joint correctness states (``2 ** n_nodes``). For ``n_agents <= 6`` every
sub-graph of the full mesh DAG (pool order) -- 40,069 topologies for 6 agents -- is enumerated and
evaluated exactly per type, which gives the oracle topology and the accuracy-vs-tokens frontier.

Modules: :mod:`~dataprune.agents.simulator.queries` (query types: built-in domains, query
records, template texts), :mod:`~dataprune.agents.simulator.environment` (the agent pool and
query registry), :mod:`~dataprune.agents.simulator.pool` (random pools from a config),
:mod:`~dataprune.agents.simulator.propagation` (the rule, exactly and sampled),
:mod:`~dataprune.agents.simulator.oracle` (brute-force oracle and its pruner),
:mod:`~dataprune.agents.simulator.evaluator` (the evaluator for mining),
:mod:`~dataprune.agents.simulator.flow` (sequential execution of dynamic workflows: simulated
agents with a noisy progress judgement) and :mod:`~dataprune.agents.simulator.flow_value` (exact
and Monte Carlo values of a flow policy).
"""

from __future__ import annotations

from dataprune.agents.simulator.environment import SimAgent, SimulatedEnvironment
from dataprune.agents.simulator.evaluator import SimulatorEvaluator
from dataprune.agents.simulator.flow import SimulatedFlowBackend, SimulatorFlowEvaluator
from dataprune.agents.simulator.flow_value import FlowValue, expected_flow, sample_flow
from dataprune.agents.simulator.oracle import OraclePruner, OracleTable
from dataprune.agents.simulator.pool import SCENARIOS, SimulatorConfig, make_environment
from dataprune.agents.simulator.queries import DOMAINS, SimQuery

__all__ = [
    "DOMAINS",
    "SCENARIOS",
    "FlowValue",
    "OraclePruner",
    "OracleTable",
    "SimAgent",
    "SimQuery",
    "SimulatedEnvironment",
    "SimulatedFlowBackend",
    "SimulatorConfig",
    "SimulatorEvaluator",
    "SimulatorFlowEvaluator",
    "expected_flow",
    "make_environment",
    "sample_flow",
]
