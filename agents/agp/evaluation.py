"""Does AGP's per-query pruning beat one fixed topology on *your* Stage I records?

AGP predicts, per query, which agents run and which messages are sent. The strongest simple
baseline is query-independent: the per-position majority of the training records (an agent
runs when it runs in most of them; each edge keeps its mean weight). On the released AGP files
the trained pruner does not beat it (``benchmarks/results/agents_replay.md``), so a user should
see on their own records whether the query matters before relying on it.

:func:`evaluate_agp` draws ``n_splits`` random train/test splits, trains an :class:`AGPPruner`
on each training part with the given config and scores both on the test part:

* ``node_mask_accuracy`` — share of (query, agent) keep/prune decisions that match the record;
* ``exact_mask_rate`` — share of queries whose whole agent set matches;
* ``edge_accuracy`` — share of off-diagonal edges on the right side of 0.5;
* ``edge_mae`` — mean absolute error of the edge keep-probabilities (lower is better).

Paired differences (AGP minus majority, same split) carry a Student-t 95% CI over the splits.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError

logger = logging.getLogger(__name__)

__all__ = ["METRICS", "AGPEvaluation", "evaluate_agp", "majority_prediction", "mask_scores"]

#: Metric name -> True when higher is better.
METRICS: dict[str, bool] = {
    "node_mask_accuracy": True,
    "exact_mask_rate": True,
    "edge_accuracy": True,
    "edge_mae": False,
}


def mask_scores(
    keep_true: np.ndarray, edge_true: np.ndarray, keep_pred: np.ndarray, edge_prob: np.ndarray
) -> dict[str, float]:
    """Score predicted topologies against the records' (:data:`METRICS`).

    Parameters
    ----------
    keep_true : ndarray of shape (n_queries, n_agents)
        The records' keep labels (1 = the agent runs; > 0.5 counts as kept).
    edge_true : ndarray of shape (n_queries, n_agents, n_agents)
        The records' edge keep-probabilities.
    keep_pred : ndarray of shape (n_queries, n_agents), bool
        Predicted keep decisions.
    edge_prob : ndarray of shape (n_queries, n_agents, n_agents)
        Predicted edge keep-probabilities (the diagonal is ignored).
    """
    keep_true = np.asarray(keep_true)
    n = keep_true.shape[1]
    off = ~np.eye(n, dtype=bool)
    hit = np.asarray(keep_pred, dtype=bool) == (keep_true > 0.5)
    edge_true, edge_prob = np.asarray(edge_true), np.asarray(edge_prob)
    return {
        "node_mask_accuracy": float(hit.mean()),
        "exact_mask_rate": float(hit.all(axis=1).mean()),
        "edge_accuracy": float(((edge_true[:, off] >= 0.5) == (edge_prob[:, off] >= 0.5)).mean()),
        "edge_mae": float(np.abs(edge_prob[:, off] - edge_true[:, off]).mean()),
    }


def majority_prediction(train: Any, n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    """The query-independent baseline fitted on ``train`` (:class:`AGPRecords`), repeated for
    ``n_queries``: keep an agent when most training records keep it; each edge at its mean
    (:class:`~dataprune.agents.baselines.MajorityPruner`'s rates).

    Returns
    -------
    keep_pred : ndarray of shape (n_queries, n_agents), bool
    edge_prob : ndarray of shape (n_queries, n_agents, n_agents)
    """
    from dataprune.agents.baselines import MajorityPruner

    fixed = MajorityPruner().fit(train)  # the topology a user would deploy instead of AGP
    keep = fixed.node_prob_ >= fixed.node_threshold
    edge = fixed.edge_prob_
    n = len(keep)
    return (
        np.broadcast_to(keep, (n_queries, n)).copy(),
        np.broadcast_to(edge, (n_queries, n, n)).copy(),
    )


@dataclass
class AGPEvaluation:
    """What :func:`evaluate_agp` measured.

    Attributes
    ----------
    splits : list of dict
        Per split: ``n_train``, ``n_test`` and, under ``agp`` and ``majority``, the
        :func:`mask_scores` of each on the test part.
    n_records, n_agents : int
    test_fraction : float
    random_state : int or None
    config : dict
        The AGP config trained on every split.
    """

    splits: list[dict[str, Any]]
    n_records: int
    n_agents: int
    test_fraction: float
    random_state: int | None
    config: dict[str, Any] = field(default_factory=dict)

    def paired(self, metric: str) -> dict[str, Any]:
        """AGP minus majority on ``metric`` over the splits: mean, 95% CI, verdict.

        The verdict is ``better`` / ``worse`` when the CI excludes 0 (in the metric's better
        direction), else ``no significant difference``; with one split there is no CI.
        """
        from scipy.stats import t

        if metric not in METRICS:
            raise DataValidationError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")
        d = np.array([s["agp"][metric] - s["majority"][metric] for s in self.splits])
        mean = float(d.mean())
        if len(d) < 2:
            return {"mean": mean, "ci": None, "verdict": "one split: no CI"}
        half = float(t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
        lo, hi = mean - half, mean + half
        good = lo > 0 if METRICS[metric] else hi < 0
        bad = hi < 0 if METRICS[metric] else lo > 0
        verdict = "better" if good else ("worse" if bad else "no significant difference")
        return {"mean": mean, "ci": [lo, hi], "verdict": verdict}

    def mean(self, method: str, metric: str) -> float:
        """Mean of ``metric`` for ``method`` (``agp`` or ``majority``) over the splits."""
        return float(np.mean([s[method][metric] for s in self.splits]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every split's scores, the means and the paired differences."""
        return {
            "n_records": self.n_records,
            "n_agents": self.n_agents,
            "n_splits": len(self.splits),
            "test_fraction": self.test_fraction,
            "random_state": self.random_state,
            "config": self.config,
            "splits": self.splits,
            "mean": {
                m: {metric: self.mean(m, metric) for metric in METRICS} for m in ("agp", "majority")
            },
            "paired": {metric: self.paired(metric) for metric in METRICS},
        }

    def lines(self) -> list[str]:
        """A readable report: one line per metric, then the node-mask verdict."""
        n_test = sorted({s["n_test"] for s in self.splits})
        out = [
            f"AGP against the per-position majority (one fixed topology) on {len(self.splits)} "
            f"random splits of {self.n_records} records ({self.n_agents} agents; "
            f"{'/'.join(map(str, n_test))} test records each):"
        ]
        for metric, higher in METRICS.items():
            p = self.paired(metric)
            ci = f" [{p['ci'][0]:+.4f}, {p['ci'][1]:+.4f}]" if p["ci"] else ""
            out.append(
                f"  {metric} ({'higher' if higher else 'lower'} is better): AGP "
                f"{self.mean('agp', metric):.4f}, majority {self.mean('majority', metric):.4f}; "
                f"AGP - majority {p['mean']:+.4f}{ci}: {p['verdict']}"
            )
        p = self.paired("node_mask_accuracy")
        if p["verdict"] == "better":
            out.append(
                "AGP's per-query pruning decides which agents run better than one fixed set."
            )
        elif p["verdict"] == "worse":
            out.append(
                "AGP decides which agents run worse than one fixed set on these records: use "
                "the fixed topology (dataprune agents export --majority-of RECORDS, "
                "MajorityPruner), or train with --init-from-prior "
                "(AGPConfig(init_from_prior=True)), which starts from it, and evaluate again."
            )
        else:
            out.append(
                "AGP's per-query agent choice is not measurably better than one fixed set on "
                "these records."
            )
        return out


def evaluate_agp(
    records: Any,
    agents: Sequence[Any] | None = None,
    *,
    config: Any = None,
    encoder: Any = None,
    n_splits: int = 5,
    test_fraction: float = 0.2,
    random_state: int | None = 0,
    show_progress_bar: bool | None = None,
) -> AGPEvaluation:
    """Train AGP on random splits of ``records`` and compare it with the per-position majority.

    Parameters
    ----------
    records : AGPRecords, path, or list of dict
        Stage I records (:func:`~dataprune.agents.records.load_agp_records`).
    agents : sequence of AgentSpec or str, optional
        The agent pool (default ``agent_0 .. agent_{N-1}``).
    config : AGPConfig, optional
        Trained on every split (default ``AGPConfig()``).
    encoder : str, path or encoder object, optional
        Loaded once and shared by the splits (default: the config's encoder).
    n_splits : int, default=5
        Random train/test splits (seeded by ``random_state``); the paired CIs are over them.
    test_fraction : float, default=0.2
        Share of the records in each test part (at least one record, at least two left to
        train).
    random_state : int, optional

    Returns
    -------
    AGPEvaluation
    """
    from dataprune.agents.agp.config import AGPConfig
    from dataprune.agents.agp.pruner import AGPPruner
    from dataprune.agents.pruner import records_and_agents
    from dataprune.progress import progress

    if isinstance(n_splits, bool) or not isinstance(n_splits, (int, np.integer)) or n_splits < 1:
        raise DataValidationError(f"n_splits: expected an integer >= 1, got {n_splits!r}")
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)):
        raise DataValidationError(
            f"test_fraction: expected a number in (0, 1), got {test_fraction!r}"
        )
    if not 0.0 < float(test_fraction) < 1.0:
        raise DataValidationError(
            f"test_fraction: expected a number in (0, 1), got {test_fraction}"
        )
    records, pool = records_and_agents(records, agents, None)
    n = len(records)
    n_test = max(1, round(float(test_fraction) * n))
    if n - n_test < 2:
        raise DataValidationError(
            f"{n} records: too few to hold out {n_test} and train on at least 2"
        )
    config = config if config is not None else AGPConfig()
    if encoder is None or isinstance(encoder, (str, os.PathLike)):
        from dataprune.models import load_encoder

        encoder = load_encoder(encoder if encoder is not None else config.encoder)
    rng = np.random.default_rng(random_state)
    splits = []
    for _ in progress(range(int(n_splits)), desc="AGP splits", show_progress_bar=show_progress_bar):
        perm = rng.permutation(n)
        test, train = records.subset(np.sort(perm[:n_test])), records.subset(np.sort(perm[n_test:]))
        seed = int(rng.integers(2**31 - 1))
        agp = AGPPruner(
            pool, config=config, encoder=encoder, random_state=seed, show_progress_bar=False
        ).fit(train)
        node_prob, edge_prob = agp.predict_proba(test.tasks)
        keep_pred = node_prob >= agp.node_threshold
        maj_keep, maj_edge = majority_prediction(train, len(test))
        splits.append(
            {
                "n_train": len(train),
                "n_test": len(test),
                "agp": mask_scores(test.keep, test.edge_weight, keep_pred, edge_prob),
                "majority": mask_scores(test.keep, test.edge_weight, maj_keep, maj_edge),
            }
        )
        logger.debug(
            "split %d: node-mask accuracy AGP %.4f, majority %.4f",
            len(splits),
            splits[-1]["agp"]["node_mask_accuracy"],
            splits[-1]["majority"]["node_mask_accuracy"],
        )
    return AGPEvaluation(
        splits=splits,
        n_records=n,
        n_agents=records.n_agents,
        test_fraction=float(test_fraction),
        random_state=random_state,
        config=config.to_dict(),
    )
