"""The pruner interface shared by AGP and the baselines, and probability-to-topology selection."""

from __future__ import annotations

import hashlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from dataprune.agents.costs import TokenCostModel
from dataprune.agents.spec import AgentSpec
from dataprune.agents.topology import Topology, acyclic_from_scores
from dataprune.errors import DataValidationError, NotFittedError
from dataprune.estimator import BaseEstimator, check_fitted

logger = logging.getLogger(__name__)

__all__ = [
    "NotFittedError",
    "TopologyPruner",
    "query_seed",
    "records_and_agents",
    "select_topology",
]


def records_and_agents(
    records: Any, agents: Sequence[Any] | None, base: Topology | None
) -> tuple[Any, tuple[AgentSpec, ...]]:
    """Validate Stage I records (list of dicts, :class:`AGPRecords` or a path) against the pool
    and resolve the pool: ``agents``, else ``base``'s agents, else ``agent_0 .. agent_{N-1}``.

    Returns
    -------
    records : AGPRecords
    agents : tuple of AgentSpec
    """
    import os

    from dataprune.agents.records import load_agp_records, validate_agp_records
    from dataprune.agents.spec import as_agent_specs

    n_expected = None
    if agents is not None:
        n_expected = len(agents)
    elif base is not None:
        n_expected = base.n_agents
    if isinstance(records, (str, os.PathLike)):
        recs = load_agp_records(records, n_agents=n_expected)
    else:
        recs = validate_agp_records(records, n_agents=n_expected)
    if agents is not None:
        pool = as_agent_specs(agents)
    elif base is not None:
        pool = base.agents
    else:
        pool = as_agent_specs([f"agent_{i}" for i in range(recs.n_agents)])
    return recs, pool


def query_seed(random_state: int | None, query: str) -> int:
    """A 64-bit seed from a random state and a query (same pair => same seed)."""
    h = hashlib.blake2b(f"{random_state}\x1f{query}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little")


def _required_names(agents: Sequence[AgentSpec], required: Iterable[str] | None) -> set[str]:
    names = {a.name for a in agents}
    req = {a.name for a in agents if a.required}
    for nm in required or ():
        if nm not in names:
            raise DataValidationError(
                f"unknown required agent {nm!r}; agents are: {', '.join(a.name for a in agents)}"
            )
        req.add(nm)
    return req


def select_topology(
    agents: Sequence[AgentSpec],
    node_prob: np.ndarray,
    edge_prob: np.ndarray,
    *,
    candidates: np.ndarray | None = None,
    node_threshold: float = 0.5,
    edge_threshold: float = 0.5,
    max_agents: int | None = None,
    required: Iterable[str] | None = None,
    token_budget: float | None = None,
    cost_model: TokenCostModel | None = None,
    sample: bool = False,
    rng: np.random.Generator | None = None,
    aggregator: str = "majority",
    metadata: dict[str, Any] | None = None,
) -> Topology:
    """Turn node and edge keep-probabilities into a :class:`Topology`.

    Steps: (1) hard pruning of nodes -- ``p >= node_threshold`` or a Bernoulli draw when
    ``sample``; required agents are always kept; if nothing survives the most probable agent is
    kept; (2) ``max_agents``: keep the required agents and then the most probable ones; (3) soft
    pruning of edges between kept agents (threshold or Bernoulli), restricted to ``candidates``,
    made acyclic by :func:`acyclic_from_scores`; (4) ``token_budget``: while the estimated cost
    exceeds it, drop the least probable non-required element (edge or agent).

    Parameters
    ----------
    node_prob : ndarray of shape (n_agents,)
        Keep-probability per agent (higher = keep).
    edge_prob : ndarray of shape (n_agents, n_agents)
        Keep-probability per edge.
    """
    n = len(agents)
    p_node = np.asarray(node_prob, dtype=np.float64).reshape(-1)
    P = np.asarray(edge_prob, dtype=np.float64)
    if p_node.shape != (n,) or P.shape != (n, n):
        raise DataValidationError(
            f"expected node_prob of shape ({n},) and edge_prob ({n}, {n}), got "
            f"{p_node.shape} and {P.shape}"
        )
    if token_budget is not None and not float(token_budget) >= 0:
        raise DataValidationError(f"token_budget must be >= 0, got {token_budget}")
    req_names = _required_names(agents, required)
    req = np.array([a.name in req_names for a in agents], dtype=bool)
    if sample:
        rng = rng if rng is not None else np.random.default_rng()
        keep = rng.random(n) < p_node
    else:
        keep = p_node >= node_threshold
    keep |= req
    if not keep.any():
        keep[int(np.argmax(p_node))] = True
    if max_agents is not None:
        if max_agents < 1:
            raise DataValidationError(f"max_agents must be >= 1, got {max_agents}")
        if req.sum() > max_agents:
            raise DataValidationError(
                f"{int(req.sum())} agents are required but max_agents is {max_agents}"
            )
        if keep.sum() > max_agents:
            order = np.lexsort((np.arange(n), -p_node))
            new = req.copy()
            for i in order:
                if new.sum() >= max_agents:
                    break
                if keep[i]:
                    new[i] = True
            keep = new
    C = np.ones((n, n), dtype=bool) if candidates is None else np.asarray(candidates, dtype=bool)
    C = C & keep[:, None] & keep[None, :]
    np.fill_diagonal(C, False)
    if sample:
        chosen = C & (rng.random((n, n)) < P)
    else:
        chosen = C & (edge_threshold <= P)
    A, dropped = acyclic_from_scores(P, chosen)
    meta = dict(metadata or {})
    meta["node_prob"] = [round(float(x), 6) for x in p_node]
    if dropped:
        meta["dropped_cycle_edges"] = [[agents[i].name, agents[j].name] for i, j in dropped]
    top = Topology(agents, A, active=keep, edge_prob=P, aggregator=aggregator, metadata=meta)
    if token_budget is not None:
        top = _fit_budget(top, p_node, P, req, token_budget, cost_model or TokenCostModel())
    return top


def _fit_budget(
    top: Topology,
    p_node: np.ndarray,
    P: np.ndarray,
    req: np.ndarray,
    budget: float,
    cost_model: TokenCostModel,
) -> Topology:
    cost = cost_model.estimate(top)
    removed = []
    while cost > budget:
        A = top.effective_adjacency()
        act = top.active
        cands: list[tuple[float, int, str, Any]] = []
        for i, j in zip(*np.nonzero(A)):
            cands.append((P[i, j], 0, "edge", (int(i), int(j))))
        for i in np.flatnonzero(act & ~req):
            if act.sum() > 1:
                cands.append((p_node[i], 1, "agent", int(i)))
        if not cands:
            break
        cands.sort(key=lambda c: (c[0], c[1], str(c[3])))
        _, _, kind, what = cands[0]
        if kind == "edge":
            Anew = top.adjacency.copy()
            Anew[what] = False
            top = top._replace(adjacency=Anew)
            removed.append([top.names[what[0]], top.names[what[1]]])
        else:
            a = top.active.copy()
            a[what] = False
            top = top._replace(active=a)
            removed.append(top.names[what])
        cost = cost_model.estimate(top)
    top.metadata["estimated_tokens"] = round(cost, 1)
    top.metadata["token_budget"] = budget
    if removed:
        top.metadata["removed_for_budget"] = removed
    if cost > budget:
        top.metadata["over_budget"] = True
        logger.warning(
            "token budget %.0f cannot be met (required agents alone need %.0f tokens)", budget, cost
        )
    return top


class TopologyPruner(BaseEstimator, ABC):
    """Predicts, per query, which agents run and which messages are sent.

    Subclasses follow the scikit-learn contract: ``__init__`` stores parameters, ``fit`` returns
    ``self`` and sets attributes ending in ``_`` (at least ``agents_``), ``predict`` returns a
    :class:`Topology` over ``agents_``.
    """

    #: Registry name.
    name: str = "pruner"

    def fit(
        self,
        records: Any = None,
        *,
        queries: Sequence[str] | None = None,
        evaluator: Any = None,
    ) -> TopologyPruner:
        """Learn from AGP records and/or by running an evaluator on training queries.

        Pruners that learn nothing (presets, random) only set ``agents_``.
        """
        self.agents_ = self._resolve_agents()
        return self

    def _resolve_agents(self) -> tuple[AgentSpec, ...]:
        from dataprune.agents.spec import as_agent_specs

        agents = getattr(self, "agents", None)
        if agents is None:
            raise DataValidationError(f"{type(self).__name__} needs the agent pool (agents=...)")
        return as_agent_specs(agents)

    def _check_fitted(self) -> None:
        check_fitted(self, "agents_")

    @abstractmethod
    def predict(self, query: str) -> Topology:
        """The topology for ``query``."""

    def predict_many(self, queries: Sequence[str]) -> list[Topology]:
        """One topology per query."""
        return [self.predict(q) for q in queries]
