"""Random agent pools: :class:`SimulatorConfig` and :func:`make_environment`.

A pool has one specialist per domain of :data:`~dataprune.agents.simulator.queries.DOMAINS`
(strong on its own type), generalists (medium everywhere) and distractors (weak everywhere),
with competences and token costs drawn uniformly from the config's ranges.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from dataprune.agents.simulator.environment import SimAgent, SimulatedEnvironment
from dataprune.agents.simulator.queries import DOMAINS
from dataprune.errors import DataValidationError
from dataprune.registry import Registry

logger = logging.getLogger(__name__)

__all__ = ["SCENARIOS", "SimulatorConfig", "make_environment"]

_DISTRACTORS = [
    ("poet", "Poet", "You write expressive poems and song lyrics about feelings and nature."),
    (
        "motivational_coach",
        "Motivational Coach",
        "You encourage people with upbeat advice about confidence and habits.",
    ),
    ("trivia_buff", "Trivia Enthusiast", "You answer instantly from gut feeling and fun facts."),
    ("chef", "Chef", "You create recipes and explain cooking techniques and flavours."),
]
_GENERALIST = (
    "generalist",
    "General Assistant",
    "You are a helpful general assistant with broad but shallow knowledge of many topics.",
)


@dataclass(frozen=True)
class SimulatorConfig:
    """Parameters of :func:`make_environment` (ranges are sampled uniformly per agent).

    The defaults give the six-agent pool of the benchmarks: three specialists, one generalist
    and two distractors.

    Parameters
    ----------
    domains : sequence of str
        Query types, names from :data:`DOMAINS` (one specialist each).
    n_generalists, n_distractors : int
    specialist_competence, off_type_competence, generalist_competence, distractor_competence
        ``(low, high)`` ranges of competence.
    alpha, beta : float
        Propagation rule (see :mod:`dataprune.agents.simulator`).
    prompt_tokens, output_tokens : (int, int)
        Ranges of per-call token costs.
    """

    domains: tuple[str, ...] = ("math", "law", "code")
    n_generalists: int = 1
    n_distractors: int = 2
    specialist_competence: tuple[float, float] = (0.75, 0.92)
    off_type_competence: tuple[float, float] = (0.5, 0.7)
    generalist_competence: tuple[float, float] = (0.6, 0.75)
    distractor_competence: tuple[float, float] = (0.15, 0.3)
    alpha: float = 0.7
    beta: float = 0.1
    prompt_tokens: tuple[int, int] = (150, 250)
    output_tokens: tuple[int, int] = (80, 200)


#: The benchmark scenarios by name: ``"distractors"`` (the default pool: three specialists, a
#: generalist, two distractors) and ``"no_distractors"`` (three specialists, three generalists).
SCENARIOS: Registry[SimulatorConfig] = Registry("simulator scenario")
SCENARIOS.register("distractors", SimulatorConfig())
SCENARIOS.register("no_distractors", SimulatorConfig(n_generalists=3, n_distractors=0))


def make_environment(
    config: SimulatorConfig | None = None, *, random_state: int = 0
) -> SimulatedEnvironment:
    """Build a pool: one specialist per domain, generalists and distractors (shuffled order).

    Competences and token costs are drawn from the config's ranges with ``random_state``.

    Parameters
    ----------
    config : SimulatorConfig, optional
        Default: ``SimulatorConfig()``.
    random_state : int, default=0
        Seeds the pool and, through the environment, its query generation.

    Returns
    -------
    SimulatedEnvironment
    """
    cfg = config or SimulatorConfig()
    for d in cfg.domains:
        if d not in DOMAINS:
            raise DataValidationError(f"unknown domain {d!r}; valid: {', '.join(DOMAINS)}")
    if cfg.n_distractors > len(_DISTRACTORS):
        raise DataValidationError(f"at most {len(_DISTRACTORS)} distractors are built in")
    rng = np.random.default_rng(random_state)
    k = len(cfg.domains)

    def u(lo_hi: tuple[float, float], size: int | None = None) -> Any:
        return rng.uniform(lo_hi[0], lo_hi[1], size)

    def toks() -> tuple[int, int]:
        return (
            int(rng.integers(cfg.prompt_tokens[0], cfg.prompt_tokens[1] + 1)),
            int(rng.integers(cfg.output_tokens[0], cfg.output_tokens[1] + 1)),
        )

    agents: list[SimAgent] = []
    for t, d in enumerate(cfg.domains):
        comp = u(cfg.off_type_competence, k)
        comp[t] = u(cfg.specialist_competence)
        pt, ot = toks()
        spec = DOMAINS[d]
        agents.append(
            SimAgent(
                spec["name"],
                spec["role"],
                spec["profile"],
                tuple(comp.round(4)),
                pt,
                ot,
                "specialist",
            )
        )
    for g in range(cfg.n_generalists):
        pt, ot = toks()
        name = _GENERALIST[0] if cfg.n_generalists == 1 else f"{_GENERALIST[0]}_{g}"
        agents.append(
            SimAgent(
                name,
                _GENERALIST[1],
                _GENERALIST[2],
                tuple(u(cfg.generalist_competence, k).round(4)),
                pt,
                ot,
                "generalist",
            )
        )
    for dname, role, profile in _DISTRACTORS[: cfg.n_distractors]:
        pt, ot = toks()
        agents.append(
            SimAgent(
                dname,
                role,
                profile,
                tuple(u(cfg.distractor_competence, k).round(4)),
                pt,
                ot,
                "distractor",
            )
        )
    order = rng.permutation(len(agents))
    agents = [agents[i] for i in order]
    return SimulatedEnvironment(
        agents, cfg.domains, alpha=cfg.alpha, beta=cfg.beta, random_state=random_state
    )
