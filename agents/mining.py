"""Stage I of AGP: mine high-utility sub-graphs per query with any evaluator.

For every training query, candidate sub-graphs of a base topology (the full graph) are run by an
evaluator -- the simulator (:class:`~dataprune.agents.simulator.SimulatorEvaluator`) or real LLM
agents through the executor (:class:`ExecutorEvaluator`) -- and the best one by

    utility = score - token_penalty * tokens / tokens(base)

is stored as an AGP record ``{"task", "edge_weight", "mask"}`` (``mask`` = 1 means PRUNED; with
``top_k > 1``, ``edge_weight`` is the fraction of the ``top_k`` best candidates that keep each
edge: a soft label). Extra keys ``score``, ``tokens``, ``utility`` are added. Mining is resumable:
with ``checkpoint=PATH`` each finished query is appended to a JSONL file, and a rerun skips the
queries already there.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from dataprune.agents.topology import Topology
from dataprune.errors import DataValidationError, UnknownOptionError
from dataprune.progress import progress
from dataprune.registry import Registry
from dataprune.seeding import resolve_seed

if TYPE_CHECKING:
    from dataprune.agents.executor import Executor

logger = logging.getLogger(__name__)

__all__ = [
    "CANDIDATE_STRATEGIES",
    "Evaluation",
    "Evaluator",
    "ExecutorEvaluator",
    "candidate_subgraphs",
    "mine_subgraphs",
    "utility",
]


@dataclass(frozen=True)
class Evaluation:
    """Outcome of running a topology on a query.

    Attributes
    ----------
    score : float
        Quality in [0, 1]; higher = better (1 = correct).
    tokens : float
        Tokens one run of the topology used.
    """

    score: float
    tokens: float


class Evaluator(Protocol):
    """Anything that runs a topology on a query and scores it."""

    def evaluate(self, query: str, topology: Topology) -> Evaluation: ...


def utility(evaluation: Evaluation, *, token_penalty: float, reference_tokens: float) -> float:
    """``score - token_penalty * tokens / reference_tokens`` (higher = better)."""
    return float(evaluation.score - token_penalty * evaluation.tokens / max(reference_tokens, 1e-9))


class ExecutorEvaluator:
    """Evaluate topologies by really running them with an :class:`~dataprune.agents.executor.Executor`.

    Parameters
    ----------
    executor : Executor
    scorer : callable(query, answer) -> float
        Score in [0, 1] of the final answer (``answer`` is ``None`` when the run failed).
    """

    def __init__(self, executor: Executor, scorer: Callable[[str, str | None], float]) -> None:
        self.executor = executor
        self.scorer = scorer

    def evaluate(self, query: str, topology: Topology) -> Evaluation:
        result = self.executor.run(topology, query)
        score = float(self.scorer(query, result.answer))
        if not 0.0 <= score <= 1.0:
            raise DataValidationError(f"scorer returned {score}; expected a score in [0, 1]")
        return Evaluation(score, float(result.ledger.total_tokens))


# ---------------------------------------------------------------------- candidate strategies
CANDIDATE_STRATEGIES: Registry[Callable[..., list[Topology]]] = Registry("candidate strategy")


def _required_mask(base: Topology) -> np.ndarray:
    return np.array([a.required for a in base.agents], dtype=bool)


def _dedup(tops: list[Topology]) -> list[Topology]:
    seen, out = set(), []
    for t in tops:
        k = t.key()
        if k not in seen:
            seen.add(k)
            out.append(t)
    return out


@CANDIDATE_STRATEGIES.register("exhaustive")
def _exhaustive(base: Topology, *, n_candidates: int, rng: np.random.Generator) -> list[Topology]:
    """Every agent subset (containing the required agents) times every subset of its edges."""
    n = base.n_agents
    req = _required_mask(base)
    A = base.effective_adjacency()
    base_act = base.active
    total = 0
    subsets = []
    for bits in range(1, 1 << n):
        act = np.array([(bits >> i) & 1 for i in range(n)], dtype=bool)
        if (act & ~base_act).any() or (req & ~act).any():
            continue
        edges = np.argwhere(A & act[:, None] & act[None, :])
        total += 1 << len(edges)
        subsets.append((act, edges))
    if total > n_candidates:
        raise DataValidationError(
            f"exhaustive search would evaluate {total} sub-graphs per query (> n_candidates="
            f"{n_candidates}); raise n_candidates or use strategy='random' or 'greedy'"
        )
    out = []
    for act, edges in subsets:
        for eb in range(1 << len(edges)):
            M = np.zeros((n, n), dtype=bool)
            for k, (i, j) in enumerate(edges):
                if eb >> k & 1:
                    M[i, j] = True
            out.append(base._replace(adjacency=M, active=act))
    return out


@CANDIDATE_STRATEGIES.register("random")
def _random(base: Topology, *, n_candidates: int, rng: np.random.Generator) -> list[Topology]:
    """The base graph, every single agent, and random sub-graphs (node keep-rate ~ U(0.2, 1),
    edge keep-rate ~ U(0, 1))."""
    n = base.n_agents
    req = _required_mask(base)
    A = base.effective_adjacency()
    base_act = base.active
    out = [base]
    for i in range(n):
        if base_act[i]:
            act = req.copy()
            act[i] = True
            out.append(base._replace(adjacency=A & act[:, None] & act[None, :], active=act))
    tries = 0
    while len(_dedup(out)) < n_candidates and tries < 20 * n_candidates:
        tries += 1
        act = (rng.random(n) < rng.uniform(0.2, 1.0)) & base_act | req
        if not act.any():
            continue
        M = A & (rng.random((n, n)) < rng.uniform(0.0, 1.0))
        out.append(base._replace(adjacency=M, active=act))
    return _dedup(out)[:n_candidates]


def candidate_subgraphs(
    base: Topology,
    *,
    strategy: str = "random",
    n_candidates: int = 64,
    random_state: int | np.random.Generator | None = None,
) -> list[Topology]:
    """Candidate sub-graphs of ``base`` (required agents always kept).

    Parameters
    ----------
    base : Topology
        The graph to prune (e.g. :meth:`Topology.full`).
    strategy : {"random", "exhaustive"}
        ``"exhaustive"`` enumerates every sub-graph (fails when more than ``n_candidates``).
    """
    if n_candidates < 1:
        raise DataValidationError(f"n_candidates must be >= 1, got {n_candidates}")
    fn = CANDIDATE_STRATEGIES.get(strategy)
    return fn(base, n_candidates=n_candidates, rng=np.random.default_rng(random_state))


def _greedy(
    query: str,
    base: Topology,
    evaluator: Evaluator,
    *,
    token_penalty: float,
    ref: float,
    max_evals: int,
) -> list[tuple[float, Evaluation, Topology]]:
    """Hill-climbing from ``base``: remove the node or edge that most improves utility."""
    req = _required_mask(base)
    cur = base
    ev = evaluator.evaluate(query, cur)
    cur_u = utility(ev, token_penalty=token_penalty, reference_tokens=ref)
    seen = [(cur_u, ev, cur)]
    n_evals = 1
    while n_evals < max_evals:
        moves = [
            cur.prune(agents=[nm])
            for i, nm in enumerate(cur.names)
            if cur.active[i] and not req[i] and cur.n_active_agents > 1
        ]
        moves += [cur.prune(edges=[e]) for e in cur.edges()]
        best = None
        for m in moves:
            if n_evals >= max_evals:
                break
            e = evaluator.evaluate(query, m)
            n_evals += 1
            u = utility(e, token_penalty=token_penalty, reference_tokens=ref)
            seen.append((u, e, m))
            if u > cur_u + 1e-12 and (best is None or u > best[0]):
                best = (u, e, m)
        if best is None:
            break
        cur_u, _, cur = best
    return seen


def _select(
    query: str,
    cands: list[Topology],
    evaluator: Evaluator,
    *,
    token_penalty: float,
    ref: float,
    halving: bool,
) -> list[tuple[float, Evaluation, Topology]]:
    """Rank candidates (best first) by mean utility; with ``halving``, successive halving."""
    evals: list[list[Evaluation]] = [[] for _ in cands]

    def mean_u(i: int) -> float:
        return float(
            np.mean(
                [utility(e, token_penalty=token_penalty, reference_tokens=ref) for e in evals[i]]
            )
        )

    def rank(ids: list[int]) -> list[int]:
        return sorted(ids, key=lambda i: (-mean_u(i), evals[i][-1].tokens, i))

    alive = list(range(len(cands)))
    for i in alive:
        evals[i].append(evaluator.evaluate(query, cands[i]))
    while halving and len(alive) > 1:
        alive = rank(alive)[: (len(alive) + 1) // 2]
        if len(alive) == 1:
            break
        for i in alive:
            evals[i].append(evaluator.evaluate(query, cands[i]))
    # most-evaluated first (the survivors of the last rounds), then by mean utility
    order = sorted(
        range(len(cands)), key=lambda i: (-len(evals[i]), -mean_u(i), evals[i][-1].tokens, i)
    )
    out = []
    for i in order:
        ev = Evaluation(
            float(np.mean([e.score for e in evals[i]])),
            float(np.mean([e.tokens for e in evals[i]])),
        )
        out.append((mean_u(i), ev, cands[i]))
    return out


def mine_subgraphs(
    queries: Sequence[str],
    base: Topology,
    evaluator: Evaluator,
    *,
    strategy: str = "random",
    n_candidates: int = 64,
    token_penalty: float = 0.1,
    selection: str = "halving",
    top_k: int = 1,
    reference_tokens: float | None = None,
    random_state: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    show_progress_bar: bool | None = None,
) -> list[dict[str, Any]]:
    """Stage I: the best sub-graph per query, as AGP records.

    Parameters
    ----------
    queries : sequence of str, length n_queries
    base : Topology
        The graph being pruned; its agent order defines the record indices.
    evaluator : Evaluator
        ``evaluate(query, topology) -> Evaluation``.
    strategy : {"random", "exhaustive", "greedy"}, default="random"
        Candidate generation; ``"greedy"`` hill-climbs from ``base`` with at most
        ``n_candidates`` evaluations.
    n_candidates : int, default=64
        Candidates (evaluations) per query.
    token_penalty : float, default=0.1
        Utility trade-off (score points per full-graph token budget).
    selection : {"halving", "argmax"}, default="halving"
        ``"argmax"`` evaluates every candidate once and keeps the best. With a noisy evaluator
        (real agents: one run is right or wrong) that favours cheap graphs that got lucky (the
        winner's curse). ``"halving"`` (successive halving) evaluates every candidate once, keeps
        the better half by mean utility, evaluates the survivors again, and so on until one is
        left: about twice the evaluations, and the winner has been run ``log2(n_candidates)``
        times.
    top_k : int, default=1
        Edge labels are averaged over the ``top_k`` best candidates (soft labels).
    reference_tokens : float, optional
        Token normaliser of the utility; default: the tokens of ``base`` on the first query.
    random_state : int or None, default=None
        Seed of the candidate draws (per query: the seed and the query's index). ``None`` draws a
        fresh seed, so a resumed checkpoint then mixes two seeds; pass an int to resume exactly.
    checkpoint : path, optional
        JSONL file to append finished records to and resume from.

    Returns
    -------
    list of dict, length n_queries
        AGP records in query order.
    """
    if isinstance(queries, str):
        raise DataValidationError("queries must be a list of strings, not one string")
    queries = list(queries)
    for i, q in enumerate(queries):
        if not isinstance(q, str) or not q.strip():
            raise DataValidationError("expected a non-empty query string", record=i)
    if strategy not in ("random", "exhaustive", "greedy"):
        raise UnknownOptionError(
            f"unknown mining strategy {strategy!r}; valid: exhaustive, greedy, random"
        )
    if top_k < 1:
        raise DataValidationError(f"top_k must be >= 1, got {top_k}")
    if selection not in ("halving", "argmax"):
        raise UnknownOptionError(f"unknown selection {selection!r}; valid: argmax, halving")
    if reference_tokens is not None:
        ref = float(reference_tokens)
    else:
        ref = float(evaluator.evaluate(queries[0], base).tokens) if queries else 1.0
    seed = resolve_seed(random_state)
    done: dict[str, dict[str, Any]] = {}
    ck = Path(checkpoint) if checkpoint is not None else None
    if ck is not None and ck.is_file():
        for ln, line in enumerate(ck.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    logger.warning("checkpoint %s line %d is truncated; mining it again", ck, ln)
                    continue
                done[rec["task"]] = rec
        logger.info("resuming mining: %d/%d queries already in %s", len(done), len(queries), ck)
    out_fh = None
    if ck is not None:
        ck.parent.mkdir(parents=True, exist_ok=True)
        out_fh = open(ck, "a", encoding="utf-8")  # noqa: SIM115 - appended line by line
    try:
        records = []
        for qi, q in enumerate(
            progress(queries, show_progress_bar=show_progress_bar, desc="Mining", unit="query")
        ):
            if q in done:
                records.append(done[q])
                continue
            rng = np.random.default_rng([seed, qi])
            if strategy == "greedy":
                scored = _greedy(
                    q, base, evaluator, token_penalty=token_penalty, ref=ref, max_evals=n_candidates
                )
            else:
                cands = candidate_subgraphs(
                    base, strategy=strategy, n_candidates=n_candidates, random_state=rng
                )
                scored = _select(
                    q,
                    cands,
                    evaluator,
                    token_penalty=token_penalty,
                    ref=ref,
                    halving=selection == "halving",
                )
            if strategy == "greedy":
                scored.sort(key=lambda x: (-x[0], x[1].tokens))
            best_u, best_e, best_t = scored[0]
            top = scored[:top_k]
            E = np.mean([t.effective_adjacency().astype(np.float64) for _, _, t in top], axis=0)
            rec = {
                "task": q,
                "edge_weight": E.round(6).tolist(),
                "mask": [int(not a) for a in best_t.active],
                "score": float(best_e.score),
                "tokens": float(best_e.tokens),
                "utility": float(best_u),
            }
            records.append(rec)
            done[q] = rec
            if out_fh is not None:
                out_fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                out_fh.flush()
    finally:
        if out_fh is not None:
            out_fh.close()
    return records
