"""The simulator as an evaluator of (query, topology) pairs for Stage I mining and baselines."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from dataprune.agents.mining import Evaluation
from dataprune.errors import DataValidationError

if TYPE_CHECKING:
    from dataprune.agents.simulator.environment import SimulatedEnvironment
    from dataprune.agents.topology import Topology

logger = logging.getLogger(__name__)

__all__ = ["SimulatorEvaluator"]


class SimulatorEvaluator:
    """Evaluator for Stage I mining and policy-gradient baselines on the simulator.

    Parameters
    ----------
    env : SimulatedEnvironment
    mode : {"sample", "expected"}, default="sample"
        ``"sample"``: the fraction of ``n_repeats`` independent runs that were correct (what
        running real agents gives); ``"expected"``: the exact accuracy of the query's type.
    n_repeats : int, default=1
    random_state : int, default=0

    Notes
    -----
    ``Evaluation.tokens`` is the expected tokens of ONE run of the topology (the utility's cost
    term), whatever ``n_repeats``; ``n_calls`` counts ``evaluate`` calls.
    """

    def __init__(
        self,
        env: SimulatedEnvironment,
        *,
        mode: str = "sample",
        n_repeats: int = 1,
        random_state: int = 0,
    ) -> None:
        if mode not in ("sample", "expected"):
            raise DataValidationError(f"unknown evaluator mode {mode!r}; valid: expected, sample")
        if n_repeats < 1:
            raise DataValidationError(f"n_repeats must be >= 1, got {n_repeats}")
        self.env = env
        self.mode = mode
        self.n_repeats = n_repeats
        self.rng = np.random.default_rng(random_state)
        self.n_calls = 0

    def evaluate(self, query: str, topology: Topology) -> Evaluation:
        """Score one run (or ``n_repeats`` runs) of ``topology`` on ``query``.

        Parameters
        ----------
        query : str
            A registered query text (an unknown text gets a stable hashed type).
        topology : Topology

        Returns
        -------
        Evaluation
        """
        self.n_calls += 1
        q = self.env.lookup(query)
        p = self.env.expected_accuracy(topology, q.qtype)
        tokens = self.env.tokens(topology)
        if self.mode == "expected":
            return Evaluation(p, tokens)
        return Evaluation(self.rng.binomial(self.n_repeats, p) / self.n_repeats, tokens)
