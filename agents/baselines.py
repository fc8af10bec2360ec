"""Baseline pruners behind the :class:`~dataprune.agents.pruner.TopologyPruner` interface.

* ``full``: the base graph (by default the full mesh DAG), every agent and edge.
* ``chain`` / ``star`` / ``layered``: fixed presets.
* ``random``: a random sub-graph per query (seeded by the query, so reproducible).
* ``majority``: one fixed topology learned from Stage I records -- each agent and edge kept
  when most records keep it -- the query-independent baseline AGP's per-query choice has to
  beat (:func:`~dataprune.agents.agp.evaluation.evaluate_agp`).
* ``agentprune``: AgentPrune-style (ICLR 2025) -- one *global* set of edge logits over the base
  graph, trained by policy gradient (REINFORCE with a moving-average baseline) on the utility of
  sampled graphs, with periodic magnitude pruning of the weakest edges; every agent always runs
  (AgentPrune prunes communication, not agents) and every query gets the same graph.

``make_pruner(name, **params)`` builds any of them, or ``"agp"``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from dataprune.agents.mining import Evaluator, utility
from dataprune.agents.pruner import TopologyPruner, query_seed
from dataprune.agents.spec import AgentSpec
from dataprune.agents.topology import Topology
from dataprune.errors import DataValidationError
from dataprune.estimator import check_fitted
from dataprune.progress import progress
from dataprune.registry import Registry
from dataprune.seeding import resolve_seed

logger = logging.getLogger(__name__)

__all__ = [
    "PRUNERS",
    "AgentPrunePruner",
    "FullGraphPruner",
    "MajorityPruner",
    "PresetPruner",
    "RandomPruner",
    "make_pruner",
]

PRUNERS: Registry[Any] = Registry("agent pruner")


def _base_for(agents: tuple[AgentSpec, ...], base: Topology | None, aggregator: str) -> Topology:
    if base is None:
        return Topology.full(agents, aggregator=aggregator)
    if [a.name for a in base.agents] != [a.name for a in agents]:
        raise DataValidationError("base topology agents differ from the pruner's agents")
    return base


class FullGraphPruner(TopologyPruner):
    """Always the base graph (default: the full mesh DAG over the pool)."""

    name = "full"

    def __init__(
        self,
        agents: Sequence[AgentSpec | str] | None = None,
        *,
        base: Topology | None = None,
        aggregator: str = "majority",
    ) -> None:
        self.agents = agents
        self.base = base
        self.aggregator = aggregator

    def _resolve_agents(self) -> tuple[AgentSpec, ...]:
        if self.agents is None and self.base is not None:
            return self.base.agents
        return super()._resolve_agents()

    def fit(
        self, records: Any = None, *, queries: Any = None, evaluator: Any = None
    ) -> FullGraphPruner:
        self.agents_ = self._resolve_agents()
        self.base_ = _base_for(self.agents_, self.base, self.aggregator)
        return self

    def predict(self, query: str) -> Topology:
        self._check_fitted()
        t = self.base_._replace(metadata={"pruner": self.name})
        return t


class PresetPruner(TopologyPruner):
    """A fixed preset: ``chain``, ``star``, ``full``, ``layered`` (see :meth:`Topology.preset`)."""

    name = "preset"

    def __init__(
        self,
        agents: Sequence[AgentSpec | str] | None = None,
        *,
        kind: str = "chain",
        aggregator: str = "majority",
        preset_params: dict[str, Any] | None = None,
    ) -> None:
        self.agents = agents
        self.kind = kind
        self.aggregator = aggregator
        self.preset_params = preset_params

    def fit(
        self, records: Any = None, *, queries: Any = None, evaluator: Any = None
    ) -> PresetPruner:
        self.agents_ = self._resolve_agents()
        params = dict(self.preset_params or {})
        params.setdefault("aggregator", self.aggregator)
        self.topology_ = Topology.preset(self.kind, self.agents_, **params)
        self.topology_.metadata["pruner"] = self.kind
        return self

    def predict(self, query: str) -> Topology:
        self._check_fitted()
        return self.topology_._replace()


class RandomPruner(TopologyPruner):
    """A random sub-graph of the base graph per query (reproducible per query and seed).

    Parameters
    ----------
    p_agent, p_edge : float, default=0.5
        Keep-probabilities of agents and of base edges between kept agents.
    random_state : int or None, default=None
        Seed mixed with each query; ``None`` draws one at ``fit`` (``random_state_``).
    """

    name = "random"

    def __init__(
        self,
        agents: Sequence[AgentSpec | str] | None = None,
        *,
        p_agent: float = 0.5,
        p_edge: float = 0.5,
        base: Topology | None = None,
        aggregator: str = "majority",
        random_state: int | None = None,
    ) -> None:
        self.agents = agents
        self.p_agent = p_agent
        self.p_edge = p_edge
        self.base = base
        self.aggregator = aggregator
        self.random_state = random_state

    def fit(
        self, records: Any = None, *, queries: Any = None, evaluator: Any = None
    ) -> RandomPruner:
        for v, nm in ((self.p_agent, "p_agent"), (self.p_edge, "p_edge")):
            if not 0.0 <= v <= 1.0:
                raise DataValidationError(f"{nm} must be in [0, 1], got {v}")
        self.agents_ = (
            self.base.agents if self.agents is None and self.base else self._resolve_agents()
        )
        self.base_ = _base_for(self.agents_, self.base, self.aggregator)
        self.random_state_ = resolve_seed(self.random_state)
        return self

    def predict(self, query: str) -> Topology:
        self._check_fitted()
        rng = np.random.default_rng(query_seed(self.random_state_, query))
        n = len(self.agents_)
        req = np.array([a.required for a in self.agents_], dtype=bool)
        act = (rng.random(n) < self.p_agent) | req
        act &= self.base_.active
        if not act.any():
            act[int(rng.integers(n))] = True
        A = self.base_.effective_adjacency() & (rng.random((n, n)) < self.p_edge)
        return self.base_._replace(adjacency=A, active=act, metadata={"pruner": self.name})


class AgentPrunePruner(TopologyPruner):
    """AgentPrune-style global edge pruning trained by policy gradient.

    Parameters
    ----------
    agents : sequence of AgentSpec or str, optional
        Default: the base graph's agents.
    base : Topology, optional
        Graph whose edges are learned (default: the full mesh DAG).
    n_iterations : int, default=200
        Policy-gradient steps.
    batch_size : int, default=4
        Queries (one sampled graph each) per step.
    learning_rate : float, default=0.5
        Step size on the edge logits.
    prune_every : int, default=25
        Magnitude pruning period (steps).
    pruning_rate : float, default=0.1
        Fraction of the remaining edges with the smallest keep-probability pruned each period.
    max_sparsity : float, default=0.8
        Never prune more than this fraction of the base edges.
    token_penalty : float, default=0.1
        Utility = score - token_penalty * tokens / tokens(base).
    edge_threshold : float, default=0.5
        Unpruned edges with keep-probability >= threshold are in the final graph.
    random_state : int or None, default=None
        Seed of the sampled graphs and batches (``None``: fresh randomness each ``fit``).

    Attributes
    ----------
    edge_logits_ : ndarray (n_agents, n_agents)
    pruned_ : ndarray of bool (n_agents, n_agents)
        Edges removed by magnitude pruning.
    history_ : list of float
        Mean utility per step.
    """

    name = "agentprune"

    def __init__(
        self,
        agents: Sequence[AgentSpec | str] | None = None,
        *,
        base: Topology | None = None,
        n_iterations: int = 200,
        batch_size: int = 4,
        learning_rate: float = 0.5,
        prune_every: int = 25,
        pruning_rate: float = 0.1,
        max_sparsity: float = 0.8,
        token_penalty: float = 0.1,
        edge_threshold: float = 0.5,
        aggregator: str = "majority",
        random_state: int | None = None,
        show_progress_bar: bool | None = None,
    ) -> None:
        self.agents = agents
        self.base = base
        self.n_iterations = n_iterations
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.prune_every = prune_every
        self.pruning_rate = pruning_rate
        self.max_sparsity = max_sparsity
        self.token_penalty = token_penalty
        self.edge_threshold = edge_threshold
        self.aggregator = aggregator
        self.random_state = random_state
        self.show_progress_bar = show_progress_bar

    def fit(
        self,
        records: Any = None,
        *,
        queries: Sequence[str] | None = None,
        evaluator: Evaluator | None = None,
    ) -> AgentPrunePruner:
        """Train the global edge logits by running ``evaluator`` on ``queries``."""
        if queries is None or evaluator is None or isinstance(queries, str) or not list(queries):
            raise DataValidationError(
                "AgentPrunePruner.fit needs training queries and an evaluator "
                "(fit(queries=[...], evaluator=...)); it learns online, not from records"
            )
        if self.n_iterations < 1 or self.batch_size < 1 or self.prune_every < 1:
            raise DataValidationError("n_iterations, batch_size and prune_every must be >= 1")
        queries = list(queries)
        self.agents_ = (
            self.base.agents if self.agents is None and self.base else self._resolve_agents()
        )
        base = _base_for(self.agents_, self.base, self.aggregator)
        self.base_ = base
        rng = np.random.default_rng(self.random_state)
        n = len(self.agents_)
        E = base.effective_adjacency()
        n_base = int(E.sum())
        theta = np.zeros((n, n))
        pruned = np.zeros((n, n), dtype=bool)
        ref = None
        b = None
        history = []
        for it in progress(
            range(self.n_iterations),
            show_progress_bar=self.show_progress_bar,
            desc="AgentPrune",
            unit="step",
        ):
            live = E & ~pruned
            prob = 1.0 / (1.0 + np.exp(-theta))
            grads = np.zeros((n, n))
            us = []
            for _ in range(self.batch_size):
                q = queries[int(rng.integers(len(queries)))]
                sample = live & (rng.random((n, n)) < prob)
                ev = evaluator.evaluate(q, base._replace(adjacency=sample))
                if ref is None:
                    ref = evaluator.evaluate(q, base).tokens
                u = utility(ev, token_penalty=self.token_penalty, reference_tokens=ref)
                us.append(u)
                adv = u - (b if b is not None else u)
                grads += adv * (sample.astype(float) - prob) * live
            mean_u = float(np.mean(us))
            b = mean_u if b is None else 0.9 * b + 0.1 * mean_u
            theta += self.learning_rate * grads / self.batch_size
            history.append(mean_u)
            if (it + 1) % self.prune_every == 0:
                live = E & ~pruned
                n_live = int(live.sum())
                max_pruned = int(np.floor(self.max_sparsity * n_base))
                k = min(int(np.ceil(self.pruning_rate * n_live)), max_pruned - int(pruned.sum()))
                if k > 0:
                    prob = 1.0 / (1.0 + np.exp(-theta))
                    ii, jj = np.nonzero(live)
                    order = np.lexsort((jj, ii, prob[ii, jj]))[:k]
                    pruned[ii[order], jj[order]] = True
        self.edge_logits_ = theta
        self.pruned_ = pruned
        self.history_ = history
        prob = 1.0 / (1.0 + np.exp(-theta))
        A = E & ~pruned & (prob >= self.edge_threshold)
        P = np.where(E & ~pruned, prob, 0.0)
        self.topology_ = base._replace(adjacency=A, edge_prob=P, metadata={"pruner": self.name})
        return self

    def predict(self, query: str) -> Topology:
        check_fitted(self, ["agents_", "topology_"])
        return self.topology_._replace()


class MajorityPruner(TopologyPruner):
    """One fixed topology from Stage I records: the per-position majority.

    ``fit`` takes each agent's keep rate and each edge's mean weight over the records (the
    query-independent part of what the records say) and turns them into a topology the way AGP
    turns its per-query probabilities into one (:func:`~dataprune.agents.pruner.select_topology`:
    agents with a rate >= ``node_threshold``, edges >= ``edge_threshold`` among them, restricted
    to ``base``'s edges, made acyclic); every query gets it. If AGP does not beat this on your
    records (``dataprune agents evaluate``), deploy this instead.

    Parameters
    ----------
    agents : sequence of AgentSpec or str, optional
        The pool (default: ``base``'s agents, else ``agent_0 .. agent_{N-1}`` from the records).
    base : Topology, optional
        Candidate edges (default: the full mesh DAG).
    node_threshold, edge_threshold : float, default=0.5
        Keep rates at or above which an agent / edge is kept.
    aggregator : str, default="majority"

    Attributes
    ----------
    node_prob_ : ndarray of shape (n_agents,)
        Share of the records that keep each agent.
    edge_prob_ : ndarray of shape (n_agents, n_agents)
        Mean edge weight over the records.
    topology_ : Topology
        The topology every query gets.
    n_records_ : int
    """

    name = "majority"

    def __init__(
        self,
        agents: Sequence[AgentSpec | str] | None = None,
        *,
        base: Topology | None = None,
        node_threshold: float = 0.5,
        edge_threshold: float = 0.5,
        aggregator: str = "majority",
    ) -> None:
        self.agents = agents
        self.base = base
        self.node_threshold = node_threshold
        self.edge_threshold = edge_threshold
        self.aggregator = aggregator

    def fit(
        self, records: Any = None, *, queries: Any = None, evaluator: Any = None
    ) -> MajorityPruner:
        """Learn the fixed topology from Stage I records (list of dicts, AGPRecords or a path)."""
        from dataprune.agents.pruner import records_and_agents, select_topology

        if records is None:
            raise DataValidationError("MajorityPruner.fit needs Stage I records")
        recs, agents = records_and_agents(records, self.agents, self.base)
        base = _base_for(agents, self.base, self.aggregator)
        self.node_prob_ = np.asarray(recs.keep, dtype=np.float64).mean(axis=0)
        self.edge_prob_ = np.asarray(recs.edge_weight, dtype=np.float64).mean(axis=0)
        self.topology_ = select_topology(
            agents,
            self.node_prob_,
            self.edge_prob_,
            candidates=base.effective_adjacency(),
            node_threshold=self.node_threshold,
            edge_threshold=self.edge_threshold,
            aggregator=self.aggregator,
            metadata={"pruner": self.name},
        )
        self.agents_ = agents
        self.n_records_ = len(recs)
        return self

    def predict(self, query: str) -> Topology:
        check_fitted(self, ["agents_", "topology_"])
        return self.topology_._replace()


def _agp_factory(**params: Any) -> TopologyPruner:
    from dataprune.agents.agp import AGPPruner

    return AGPPruner(**params)


PRUNERS.register("full", FullGraphPruner)
PRUNERS.register("chain", lambda **kw: PresetPruner(kind="chain", **kw))
PRUNERS.register("star", lambda **kw: PresetPruner(kind="star", **kw))
PRUNERS.register("layered", lambda **kw: PresetPruner(kind="layered", **kw))
PRUNERS.register("random", RandomPruner)
PRUNERS.register("agentprune", AgentPrunePruner)
PRUNERS.register("majority", MajorityPruner)
PRUNERS.register("agp", _agp_factory)


def make_pruner(name: str, **params: Any) -> TopologyPruner:
    """Build a registered pruner by name (``agp``, ``agentprune``, ``majority``, ``full``,
    ``chain``, ``star``, ``layered``, ``random``)."""
    return PRUNERS.get(name)(**params)
