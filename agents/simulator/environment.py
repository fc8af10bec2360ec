"""The simulated environment: a pool of agents with known competence per query type.

:class:`SimulatedEnvironment` holds the pool (competences, token costs), draws and registers
queries, and evaluates topologies under the propagation rule of :mod:`dataprune.agents.simulator`
exactly (:mod:`~dataprune.agents.simulator.propagation`) or by one sampled run; its oracle is
built by :mod:`~dataprune.agents.simulator.oracle`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dataprune.agents.costs import TokenCostModel
from dataprune.agents.simulator.oracle import OracleTable, build_oracle_table, oracle_topology
from dataprune.agents.simulator.propagation import (
    NodeGraph,
    _stable_uniform,
    exact_accuracy,
    sample_correct,
)
from dataprune.agents.simulator.queries import SimQuery, _template_query
from dataprune.agents.spec import AgentSpec
from dataprune.agents.topology import Topology
from dataprune.errors import DataValidationError

logger = logging.getLogger(__name__)

__all__ = ["SimAgent", "SimulatedEnvironment"]

_MAX_EXACT_NODES = 20


@dataclass(frozen=True)
class SimAgent:
    """An agent of the simulated pool (competence per query type, token costs)."""

    name: str
    role: str
    profile: str
    competence: tuple[float, ...]
    prompt_tokens: int
    output_tokens: int
    kind: str = "specialist"

    def spec(self) -> AgentSpec:
        """The agent as an :class:`~dataprune.agents.spec.AgentSpec` (``kind`` in metadata)."""
        return AgentSpec(
            self.name,
            role=self.role,
            profile=self.profile,
            prompt_tokens=self.prompt_tokens,
            output_tokens=self.output_tokens,
            metadata={"kind": self.kind},
        )


class SimulatedEnvironment:
    """Agents with per-type competence, the propagation rule, token costs, and the oracle.

    Parameters
    ----------
    agents : sequence of SimAgent
    type_names : sequence of str
        One name per query type (length = len(competence) of every agent).
    alpha, beta : float
        Propagation rule (see :mod:`dataprune.agents.simulator`).
    random_state : int, default=0
        Seeds query generation and the simulated backend's draws.
    """

    def __init__(
        self,
        agents: Sequence[SimAgent],
        type_names: Sequence[str],
        *,
        alpha: float = 0.7,
        beta: float = 0.1,
        random_state: int = 0,
    ) -> None:
        if not agents:
            raise DataValidationError("the simulated environment needs at least one agent")
        k = len(type_names)
        for a in agents:
            if len(a.competence) != k:
                raise DataValidationError(
                    f"agent {a.name!r} has {len(a.competence)} competences but there are {k} types"
                )
            if any(not 0.0 <= c <= 1.0 for c in a.competence):
                raise DataValidationError(f"agent {a.name!r}: competences must be in [0, 1]")
        for v, nm in ((alpha, "alpha"), (beta, "beta")):
            if not 0.0 <= v <= 1.0:
                raise DataValidationError(f"{nm} must be in [0, 1], got {v}")
        self.agents = list(agents)
        self.type_names = list(type_names)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.random_state = int(random_state)
        self._by_name = {a.name: i for i, a in enumerate(self.agents)}
        self._queries: dict[str, SimQuery] = {}
        self._oracle: OracleTable | None = None
        self._acc_cache: dict[tuple[Any, ...], float] = {}

    # ------------------------------------------------------------------ pool and costs
    @property
    def n_agents(self) -> int:
        """Number of agents in the pool."""
        return len(self.agents)

    @property
    def n_types(self) -> int:
        """Number of query types."""
        return len(self.type_names)

    @property
    def competence(self) -> np.ndarray:
        """Array (n_agents, n_types)."""
        return np.array([a.competence for a in self.agents], dtype=np.float64)

    def agent_specs(self) -> list[AgentSpec]:
        """The pool as agent specs, in pool order."""
        return [a.spec() for a in self.agents]

    def cost_model(self) -> TokenCostModel:
        """Token costs of the pool's agents."""
        return TokenCostModel(
            prompt_tokens={a.name: a.prompt_tokens for a in self.agents},
            output_tokens={a.name: a.output_tokens for a in self.agents},
        )

    def full_topology(self, **kwargs: Any) -> Topology:
        """The full mesh DAG over the pool (the graph every pruner prunes)."""
        return Topology.full(self.agent_specs(), **kwargs)

    def tokens(self, topology: Topology) -> float:
        """Expected tokens of one run of ``topology``."""
        return self.cost_model().estimate(topology)

    # ------------------------------------------------------------------ queries
    def make_queries(
        self,
        n: int,
        *,
        texts: Mapping[str, Sequence[str]] | None = None,
        type_weights: Sequence[float] | None = None,
        random_state: int | None = None,
    ) -> list[SimQuery]:
        """Draw ``n`` queries (types at random) and register them for :meth:`lookup`.

        Parameters
        ----------
        texts : mapping of type name to list of str, optional
            Real query texts per type (sampled without replacement while they last); default:
            the built-in templates of :data:`~dataprune.agents.simulator.queries.DOMAINS`.
        """
        rng = np.random.default_rng(
            self.random_state + 7919 if random_state is None else random_state
        )
        k = self.n_types
        w = np.full(k, 1.0 / k) if type_weights is None else np.asarray(type_weights, float)
        if w.shape != (k,) or (w < 0).any() or w.sum() <= 0:
            raise DataValidationError(f"type_weights must be {k} non-negative numbers")
        w = w / w.sum()
        pools: dict[int, list[str]] = {}
        if texts is not None:
            for t, name in enumerate(self.type_names):
                if name not in texts or not texts[name]:
                    raise DataValidationError(f"no query texts given for type {name!r}")
                pools[t] = list(rng.permutation(np.array(list(texts[name]), dtype=object)))
        out = []
        start = len(self._queries)
        for i in range(n):
            t = int(rng.choice(k, p=w))
            if texts is not None:
                if not pools[t]:
                    pools[t] = list(
                        rng.permutation(np.array(list(texts[self.type_names[t]]), dtype=object))
                    )
                text = str(pools[t].pop())
            else:
                text = _template_query(self.type_names[t], rng)
            if text in self._queries or any(q.text == text for q in out):
                text = f"{text} (case {start + i})"
            opts = ["A", "B", "C", "D"]
            ans = opts[int(rng.integers(4))]
            trap = opts[(opts.index(ans) + 1 + int(rng.integers(3))) % 4]
            q = SimQuery(text, t, ans, trap, start + i)
            out.append(q)
            self._queries[text] = q
        return out

    def register(self, queries: Sequence[SimQuery]) -> None:
        """Register queries for :meth:`lookup` (a text registered again is replaced)."""
        for q in queries:
            self._queries[q.text] = q

    def lookup(self, text: str) -> SimQuery:
        """The registered query with this text; an unknown text gets a stable hashed type."""
        q = self._queries.get(text)
        if q is not None:
            return q
        u = _stable_uniform("type", self.random_state, text)
        t = min(int(u * self.n_types), self.n_types - 1)
        return SimQuery(text, t, "A", "B", -1)

    # ------------------------------------------------------------------ exact evaluation
    def _nodes(self, topology: Topology) -> NodeGraph:
        """Unrolled nodes as pool indices in processing order, predecessor lists, voter nodes."""
        idx = {nm: i for i, nm in enumerate(topology.names)}
        for nm in topology.active_names:
            if nm not in self._by_name:
                raise DataValidationError(
                    f"agent {nm!r} is not in the simulated environment; agents are: "
                    f"{', '.join(self._by_name)}"
                )
        nodes, edges = topology.unrolled()
        pos = {nid: k for k, (nid, _, _) in enumerate(nodes)}
        preds: list[list[int]] = [[] for _ in nodes]
        for s, d in edges:
            preds[pos[d]].append(pos[s])
        agent_of = [self._by_name[nm] for _, nm, _ in nodes]
        del idx
        final = [k for k, (_, _, r) in enumerate(nodes) if r == topology.rounds]
        if topology.decision is not None or topology.aggregator == "majority":
            voters = final
        elif topology.aggregator == "sinks":
            sinks = set(topology.sinks())
            voters = [k for k in final if nodes[k][1] in sinks]
        else:  # last
            voters = final[-1:]
        return NodeGraph(agent_of, preds, voters)

    def expected_accuracy(self, topology: Topology, qtype: int) -> float:
        """Exact probability that ``topology`` answers a type-``qtype`` query correctly."""
        key = (topology.key(), topology.aggregator, topology.decision is not None, qtype)
        if key in self._acc_cache:
            return self._acc_cache[key]
        if topology.n_active_agents == 0:
            return 0.0
        graph = self._nodes(topology)
        m = len(graph.agent_of)
        if m > _MAX_EXACT_NODES:
            raise DataValidationError(
                f"exact evaluation supports at most {_MAX_EXACT_NODES} agent-rounds, got {m}; "
                "use simulate() for Monte Carlo estimates"
            )
        comp = self.competence[:, qtype]
        acc = exact_accuracy(graph, comp, alpha=self.alpha, beta=self.beta)
        self._acc_cache[key] = acc
        return acc

    def simulate(
        self,
        topology: Topology,
        query: SimQuery,
        *,
        random_state: int | np.random.Generator | None = None,
    ) -> bool:
        """One Monte Carlo run of the propagation rule; True when the decision is correct."""
        rng = np.random.default_rng(random_state)
        graph = self._nodes(topology)
        comp = self.competence[:, query.qtype]
        return sample_correct(graph, comp, rng, alpha=self.alpha, beta=self.beta)

    # ------------------------------------------------------------------ oracle
    def oracle_table(self) -> OracleTable:
        """Every sub-graph of the full mesh DAG, evaluated exactly (``n_agents <= 6``)."""
        if self._oracle is None:
            self._oracle = build_oracle_table(self)
        return self._oracle

    def oracle_topology(
        self, qtype: int, *, token_penalty: float = 0.1, aggregator: str = "majority"
    ) -> Topology:
        """The utility-optimal sub-graph for a type (utility = accuracy - penalty * tokens/full)."""
        return oracle_topology(self, qtype, token_penalty=token_penalty, aggregator=aggregator)
