"""What ``benchmarks/curation_outcome.py`` compares and how it scores a kept set: the pools'
sizes, the conditions, Phase A's candidate recipes and the planted-fault shares."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
NAME = "curation_outcome"
FRACTION = 0.25
POOL_SEED = 0
DEV_SIZES = (1100, 165)  # GSM8K, Alpaca: the most the dev split allows
EVAL_SIZES = (1000, 500)
FAULT_TYPES = ("shuffled", "truncated", "exact_dup", "near_dup")
CONDITIONS = ("random", "default", "full", "dedup", "ifd")
SINGLE_STAGES = ("dedup", "ifd")
#: plot labels: Phase B's "default" condition is the recipe chosen on dev data
LABELS = {"default": "dev-chosen"}
DTYPE = "bfloat16"
EVAL_MAX_LENGTH = 1024  # held-out window: the harness cap, so held-out records are not cut
DEFAULT_WORK = HERE / ".cache" / NAME

DEDUP = ["exact_dedup", {"fuzzy_dedup": {"threshold": 0.8}}]
SELECT_FL = {"select": {"method": "facility_location"}}
SELECT_RANDOM = {"select": {"method": "random"}}


def _ifd(**cut: float) -> dict:
    return {"quality": {"score": "ifd", **cut}}


def candidates() -> list[dict[str, Any]]:
    """Phase A's candidate recipes, in tie-break order."""
    out = [
        {"name": "dedup", "stages": [*DEDUP, SELECT_FL]},
        {"name": "dedup + ifd<=1", "stages": [*DEDUP, _ifd(max=1.0), SELECT_FL]},
    ]
    for q in (0.5, 0.6, 0.7):
        out.append(
            {"name": f"dedup + ifd<=q{q}", "stages": [*DEDUP, _ifd(max_quantile=q), SELECT_FL]}
        )
    out += [
        {
            "name": "dedup + ppl<=q0.7",
            "stages": [
                *DEDUP,
                {"quality": {"score": "perplexity", "max_quantile": 0.7}},
                SELECT_FL,
            ],
        },
        {"name": "dedup + ifd<=1 + random", "stages": [*DEDUP, _ifd(max=1.0), SELECT_RANDOM]},
        {
            "name": "dedup + ifd<=q0.6 + random",
            "stages": [*DEDUP, _ifd(max_quantile=0.6), SELECT_RANDOM],
        },
        {
            "name": "dedup + ppl<=q0.5",
            "stages": [
                *DEDUP,
                {"quality": {"score": "perplexity", "max_quantile": 0.5}},
                SELECT_FL,
            ],
        },
        {
            "name": "dedup + ifd<=q0.7 + ppl<=q0.7",
            "stages": [
                *DEDUP,
                _ifd(max_quantile=0.7),
                {"quality": {"score": "perplexity", "max_quantile": 0.7}},
                SELECT_FL,
            ],
        },
    ]
    return out


def norm_stages(stages: list) -> list:
    from dataprune.curation import load_recipe

    return load_recipe({"stages": stages}).to_dict()["stages"]


# ----------------------------------------------------------------------------- fault shares
def fault_shares(pool: list[dict], kept: Any) -> dict[str, Any]:
    """Planted-fault share of the kept records, overall and per fault type and source.

    ``fault_share`` counts every kept record by its label. ``fault_share_paired`` counts a
    duplicate (``exact_dup`` / ``near_dup``, a copy of record ``dup_of``) only when the record it
    copies is kept too: dedup keeps the first of a pair in pool order, which is the copy about
    half the time, and a copy whose original is gone duplicates nothing in the kept set.
    """
    kept = [int(i) for i in kept]
    n = len(kept)
    c = Counter(pool[i]["fault"] for i in kept)
    kept_ids = {pool[i]["id"] for i in kept}
    paired = Counter(
        pool[i]["fault"]
        for i in kept
        if pool[i]["fault"] in ("exact_dup", "near_dup") and pool[i]["dup_of"] in kept_ids
    )
    n_paired = c["shuffled"] + c["truncated"] + paired["exact_dup"] + paired["near_dup"]
    per_source = {}
    for src in ("gsm8k", "alpaca"):
        ks = [i for i in kept if pool[i]["source"] == src]
        bad = sum(pool[i]["fault"] != "none" for i in ks)
        per_source[src] = {"n_kept": len(ks), "fault_share": bad / len(ks) if ks else None}
    nan = float("nan")
    return {
        "n_kept": n,
        "n_faulty": n - c["none"],
        "fault_share": (n - c["none"]) / n if n else nan,
        "per_type": {f: c[f] / n if n else nan for f in FAULT_TYPES},
        "n_faulty_paired": n_paired,
        "fault_share_paired": n_paired / n if n else nan,
        "dup_with_original_kept": {f: paired[f] for f in ("exact_dup", "near_dup")},
        "per_source": per_source,
    }


def mean_shares(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of several :func:`fault_shares` (over random states, subsets or seeds)."""
    share = [r["fault_share"] for r in rows]
    return {
        "fault_share": float(np.mean(share)),
        "fault_share_sd": float(np.std(share, ddof=1)) if len(rows) > 1 else 0.0,
        "fault_share_paired": float(np.mean([r["fault_share_paired"] for r in rows])),
        "per_type": {f: float(np.mean([r["per_type"][f] for r in rows])) for f in FAULT_TYPES},
        "n": len(rows),
    }
