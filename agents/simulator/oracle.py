"""The brute-force oracle: every sub-graph of the full mesh DAG evaluated exactly.

For ``n_agents <= 6`` every sub-graph of the full mesh DAG (pool order) -- 40,068 non-empty
topologies for 6 agents -- is evaluated exactly per query type by a dynamic programme vectorised
over the edge sets of each agent subset (majority decision). The table gives the utility-optimal
topology per type and the accuracy-vs-tokens frontier; :class:`OraclePruner` predicts the
optimal topology for a query's true type (an upper bound no real pruner can reach).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dataprune.agents.pruner import TopologyPruner
from dataprune.agents.simulator.propagation import _popcount, p_correct
from dataprune.agents.topology import Topology
from dataprune.errors import DataValidationError

if TYPE_CHECKING:
    from dataprune.agents.simulator.environment import SimulatedEnvironment

logger = logging.getLogger(__name__)

__all__ = ["OraclePruner", "OracleTable", "build_oracle_table", "oracle_topology"]

_MAX_ORACLE_AGENTS = 6


@dataclass
class OracleTable:
    """Every sub-graph of the full mesh DAG with its exact accuracy per type and its tokens.

    Attributes
    ----------
    active : ndarray of bool, shape (n_topologies, n_agents)
    adjacency : ndarray of bool, shape (n_topologies, n_agents, n_agents)
    tokens : ndarray of shape (n_topologies,)
    accuracy : ndarray of shape (n_topologies, n_types)
    """

    active: np.ndarray
    adjacency: np.ndarray
    tokens: np.ndarray
    accuracy: np.ndarray
    _frontier: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.tokens)

    def best(self, qtype: int, *, token_penalty: float, reference_tokens: float) -> int:
        """Row maximising ``accuracy - token_penalty * tokens / reference_tokens`` (ties: fewer
        tokens, then first row)."""
        u = self.accuracy[:, qtype] - token_penalty * self.tokens / reference_tokens
        best = u.max()
        cand = np.flatnonzero(u >= best - 1e-12)
        return int(cand[np.argmin(self.tokens[cand])])

    def frontier(self, qtype: int) -> tuple[np.ndarray, np.ndarray]:
        """``(tokens, best accuracy with at most that many tokens)``, tokens ascending."""
        if qtype not in self._frontier:
            order = np.argsort(self.tokens, kind="stable")
            t = self.tokens[order]
            acc = np.maximum.accumulate(self.accuracy[order, qtype])
            self._frontier[qtype] = (t, acc)
        return self._frontier[qtype]

    def frontier_accuracy(self, qtype: int, tokens: float) -> float:
        """Best exact accuracy reachable with at most ``tokens`` tokens (0 if none fits)."""
        t, acc = self.frontier(qtype)
        k = np.searchsorted(t, tokens + 1e-9, side="right")
        return float(acc[k - 1]) if k > 0 else 0.0


def build_oracle_table(env: SimulatedEnvironment) -> OracleTable:
    """Evaluate every non-empty sub-graph of ``env``'s full mesh DAG exactly.

    Parameters
    ----------
    env : SimulatedEnvironment
        At most 6 agents.

    Returns
    -------
    OracleTable
        Rows ordered by agent subset (bit mask ascending), then by edge set.
    """
    n = env.n_agents
    if n > _MAX_ORACLE_AGENTS:
        raise DataValidationError(
            f"the brute-force oracle supports at most {_MAX_ORACLE_AGENTS} agents, got {n}"
        )
    comp = env.competence
    cm = env.cost_model()
    full = env.full_topology()
    pt, ot = cm.agent_costs(full)
    acts, adjs, toks, accs = [], [], [], []
    for subset_bits in range(1, 1 << n):
        S = [i for i in range(n) if subset_bits >> i & 1]
        m = len(S)
        pairs = [(a, b) for b in range(m) for a in range(b)]
        n_e = 1 << len(pairs)
        e = np.arange(n_e, dtype=np.int64)
        predmask = np.zeros((n_e, m), dtype=np.int64)
        edge_cost = np.zeros(n_e)
        A = np.zeros((n_e, n, n), dtype=bool)
        for k, (a, b) in enumerate(pairs):
            bit = (e >> k) & 1
            predmask[:, b] |= bit << a
            edge_cost += bit * ot[S[a]]
            A[:, S[a], S[b]] = bit.astype(bool)
        base = float(sum(pt[i] + ot[i] for i in S))
        acc_t = np.zeros((n_e, env.n_types))
        states_all = np.arange(1 << m, dtype=np.int64)
        cnt = _popcount(states_all)
        win = (2 * cnt > m) | ((2 * cnt == m) & ((states_all & 1) == 1))
        for t in range(env.n_types):
            p = np.zeros((n_e, 1 << m))
            p[:, 0] = 1.0
            for b in range(m):
                st = np.arange(1 << b, dtype=np.int64)
                pm = predmask[:, b][:, None]
                nc = _popcount(st[None, :] & pm)
                npred = _popcount(predmask[:, b])[:, None]
                nw = npred - nc
                pc = p_correct(comp[S[b], t], nc, nw, alpha=env.alpha, beta=env.beta)
                cur = p[:, : 1 << b].copy()
                p[:, : 1 << b] = cur * (1 - pc)
                p[:, 1 << b : 1 << (b + 1)] = cur * pc
            acc_t[:, t] = p[:, win].sum(axis=1)
        act = np.zeros((n_e, n), dtype=bool)
        act[:, S] = True
        acts.append(act)
        adjs.append(A)
        toks.append(base + edge_cost)
        accs.append(acc_t)
    table = OracleTable(
        np.concatenate(acts), np.concatenate(adjs), np.concatenate(toks), np.concatenate(accs)
    )
    logger.info("oracle: evaluated %d sub-graphs exactly for %d types", len(table), env.n_types)
    return table


def oracle_topology(
    env: SimulatedEnvironment,
    qtype: int,
    *,
    token_penalty: float = 0.1,
    aggregator: str = "majority",
) -> Topology:
    """The utility-optimal sub-graph for a type (utility = accuracy - penalty * tokens/full).

    Ties go to the sub-graph with fewer tokens, then to the first row of the oracle table.

    Parameters
    ----------
    env : SimulatedEnvironment
    qtype : int
    token_penalty : float, default=0.1
        Weight of the tokens relative to those of the full topology.
    aggregator : str, default="majority"
        Aggregator of the returned topology.

    Returns
    -------
    Topology
    """
    table = env.oracle_table()
    ref = env.tokens(env.full_topology())
    k = table.best(qtype, token_penalty=token_penalty, reference_tokens=ref)
    return Topology(
        env.agent_specs(),
        table.adjacency[k],
        active=table.active[k],
        aggregator=aggregator,
        metadata={"pruner": "oracle", "qtype": env.type_names[qtype]},
    )


class OraclePruner(TopologyPruner):
    """Upper bound for benchmarks: the exact utility-optimal sub-graph for the query's TRUE type.

    It reads the latent type from the environment, which no real pruner can do.

    Parameters
    ----------
    env : SimulatedEnvironment
    token_penalty : float, default=0.1
        Utility weight of the tokens (see :func:`oracle_topology`).
    aggregator : str, default="majority"
        Aggregator of the predicted topologies.
    """

    name = "oracle"

    def __init__(
        self, env: SimulatedEnvironment, *, token_penalty: float = 0.1, aggregator: str = "majority"
    ) -> None:
        self.env = env
        self.token_penalty = token_penalty
        self.aggregator = aggregator

    def fit(
        self, records: Any = None, *, queries: Any = None, evaluator: Any = None
    ) -> OraclePruner:
        """Compute the oracle topology of every query type (the arguments are ignored)."""
        self.agents_ = tuple(self.env.agent_specs())
        self._by_type = {
            t: self.env.oracle_topology(
                t, token_penalty=self.token_penalty, aggregator=self.aggregator
            )
            for t in range(self.env.n_types)
        }
        return self

    def predict(self, query: str) -> Topology:
        """A copy of the oracle topology of the query's true type."""
        self._check_fitted()
        return self._by_type[self.env.lookup(query).qtype]._replace()
