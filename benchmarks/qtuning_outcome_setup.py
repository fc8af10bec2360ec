"""Conditions, Q-Tuning variants and splits of ``benchmarks/qtuning_outcome.py`` (one source for
the runner, the merge of ``--only`` invocations and the renderer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

NAME = "qtuning_outcome"
#: The default before the token-pruning choice (``fill="uniform"`` and the other options as now).
PREVIOUS: dict[str, Any] = {"token_ratio": 0.7, "drop": "high", "abrupt_end": None}
#: Q-Tuning static variants: ``QTuningConfig`` overrides of ``QTuningConfig(sample_ratio=0.25)``
#: (``{}`` = the library default). A variant that prunes no token trains on every response token.
SHARE = "q-tuning static, per source, group_budget=share"
SHARE_FLAT = "q-tuning static, per source, group_budget=share, fill=flat"
#: The noise rules with a stricter IFD cut (on the dev pool a quarter of the shuffled GSM8K
#: answers have IFD in [0.97, 1), the clean GSM8K 95th percentile is 0.75 and the clean Alpaca
#: 90th 0.91), then a seeded uniform draw: the plane unused.
IFD_RANDOM = "q-tuning static, fill=random, max_ifd=0.9"
IFD95_RANDOM = "q-tuning static, fill=random, max_ifd=0.95"
VARIANTS: dict[str, dict[str, Any]] = {
    "q-tuning static": {},
    "q-tuning static, token_ratio=0.7, drop=high": PREVIOUS,
    "q-tuning static, token_ratio=0.7, drop=low": {**PREVIOUS, "drop": "low"},
    "q-tuning static, token_ratio=1.0 (no token pruning)": {**PREVIOUS, "token_ratio": 1.0},
    "q-tuning static, fill=flat": {"fill": "flat"},
    "q-tuning static, per source": {"per_source": True},
    SHARE: {"per_source": True, "group_budget": "share"},
    SHARE_FLAT: {"per_source": True, "group_budget": "share", "fill": "flat"},
    IFD_RANDOM: {"fill": "random", "max_ifd": 0.9},
    IFD95_RANDOM: {"fill": "random", "max_ifd": 0.95},
}
#: A random draw from what the default's noise rules (dedup, abrupt end, IFD) leave in: what the
#: plane adds on top of them.
NOISE_RULES = "noise rules + random"
#: The ``QTuningConfig`` fields of those rules (what the noise-rules draw takes from the default).
NOISE_RULE_FIELDS = ("dedup", "abrupt_end", "max_ifd")
#: A random subset of the pool coupled to the default triage's draw (common random numbers):
#: exactly as random as ``random`` (a uniform K-subset of the pool), but it shares every sample
#: with the coupled selection except where a random subset of that size holds flagged samples
#: (:func:`dataprune.qtuning.coupled_random_subset`), in the same training order.
COUPLED = "random, coupled to the default's draw"
#: The same, coupled to the per-source default's draw (K split by source, a draw within each
#: source): the coupling is drawn source by source, the subset is still uniform over the pool.
COUPLED_SOURCE = "random, coupled to the per-source default's draw"
#: The conditions that are random subsets (baselines, never candidates for a default).
BASELINES = ("random", COUPLED, COUPLED_SOURCE)
CONDITIONS = (
    "random",
    COUPLED,
    COUPLED_SOURCE,
    "q-tuning static",
    "q-tuning static, per source",
    "perplexity filter",
    "ifd",
    "q-tuning dynamic",
)
#: Conditions trained after the static ones of every seed (the slowest).
LATE = ("q-tuning dynamic",)
#: ``--split dev``: the token-pruning settings compared on the development pool (where the
#: token-pruning default was chosen); one sample selection, only the Q2 token masks differ.
DEV_CONDITIONS = (
    "random",
    "q-tuning static, token_ratio=0.7, drop=high",
    "q-tuning static, token_ratio=0.7, drop=low",
    "q-tuning static, token_ratio=1.0 (no token pruning)",
)
#: ``--split dev-fill``: the fill rules at the current defaults on the development pool (where
#: the fill default is chosen), with the noise rules alone as a reference.
DEV_FILL_CONDITIONS = (
    "random",
    COUPLED,
    "q-tuning static",
    "q-tuning static, per source",
    SHARE_FLAT,
    SHARE,
    NOISE_RULES,
    "q-tuning static, fill=flat",
    IFD_RANDOM,
    IFD95_RANDOM,
)
#: QTuningConfig fields named in the results text.
QCFG_SHOWN = ("token_ratio", "drop", "fill", "dedup", "entropy_span", "abrupt_end", "max_ifd")
#: Pool sizes, held-out sizes, result name and conditions per split. The dev pool is every
#: dev candidate (its Alpaca share is smaller than the eval pool's: the dev partition holds 165).
SPLIT_SETUP: dict[str, dict[str, Any]] = {
    "eval": {"name": "qtuning_outcome", "split": "eval", "pool": (1500, 500),
             "conditions": CONDITIONS, "late": LATE, "about": None, "seeds": (0, 1, 2),
             "coupled": {COUPLED: "q-tuning static",
                         COUPLED_SOURCE: "q-tuning static, per source"}},
    "dev": {"name": "qtuning_outcome_dev", "split": "dev", "pool": (1100, 165),
            "conditions": DEV_CONDITIONS, "late": (), "about": "the token pruning",
            "seeds": (0, 1)},
    "dev-fill": {"name": "qtuning_outcome_dev_fill", "split": "dev", "pool": (1100, 165),
                 "conditions": DEV_FILL_CONDITIONS, "late": (), "about": "the fill rule",
                 "seeds": (0, 1, 2), "coupled": {COUPLED: IFD95_RANDOM}},
}  # fmt: skip
#: The name each condition's runs are cached under (the run key also holds the selected ids and
#: masks, so variants never collide); kept from the run that first trained the condition.
RUN_NAME = {
    "q-tuning static, token_ratio=0.7, drop=high": "q-tuning static",
    "q-tuning static, token_ratio=0.7, drop=low": "q-tuning static, drop=low",
    "q-tuning static, token_ratio=1.0 (no token pruning)": "q-tuning static, no token pruning",
    # names the runs were first trained under
    SHARE: "q-tuning static, per source",
    SHARE_FLAT: "q-tuning static, per source, fill=flat",
}
POOL_SEED = 0
SAMPLE_RATIO = 0.25
DTYPE = "bfloat16"
EVAL_MAX_LENGTH = 1024
FAULTS = ("shuffled", "truncated", "exact_dup", "near_dup")
DEFAULT_WORK = HERE / ".cache" / NAME


def qcfg(**over: Any) -> Any:
    from dataprune.qtuning import QTuningConfig

    return QTuningConfig(sample_ratio=SAMPLE_RATIO, **over)


def key_dict(cfg: Any) -> dict[str, Any]:
    """``cfg.to_dict()`` for cache keys: ``abrupt_end`` (added later) only when set and
    ``group_budget`` (added later, used only with groups) never, so runs cached before they
    existed keep their keys."""
    d = cfg.to_dict()
    if d.get("abrupt_end") is None:
        d.pop("abrupt_end", None)
    d.pop("group_budget", None)
    return d


def default_fields(condition: str) -> set[str] | None:
    """The ``QTuningConfig`` fields a condition takes from the library's default (None: it uses
    no Q-Tuning config). The variants set some fields; the noise-rules draw follows the
    default's rules (:data:`NOISE_RULE_FIELDS`), dynamic Q-Tuning runs the default itself."""
    from dataclasses import fields

    from dataprune.qtuning import QTuningConfig

    if condition == NOISE_RULES:
        return set(NOISE_RULE_FIELDS)
    if condition in (COUPLED, COUPLED_SOURCE):  # coupled to a default triage's draw
        condition = "q-tuning static" + (", per source" if condition == COUPLED_SOURCE else "")
    if condition in VARIANTS:
        over = VARIANTS[condition]
    elif condition == "q-tuning dynamic":
        over = {}
    else:
        return None
    used = {f.name for f in fields(QTuningConfig)} - set(over)
    # how K is shared between sources matters only to a triage per source
    return used if over.get("per_source") else used - {"group_budget"}
