"""What ``benchmarks/qtuning_diagnostic.py`` compares and how it scores a kept set: the pools, the
triage rules, each class's retention against random's, the target and the choice of the default
noise rules."""

from __future__ import annotations

from typing import Any

import numpy as np

NAME = "qtuning_diagnostic"
CLASSES = ("clean", "shuffled", "truncated", "duplicate")
CORRUPT = ("shuffled", "truncated", "duplicate")
RATIOS = (0.25, 0.5)
SEEDS = (0, 1, 2)
SIZES = {"dev": {"gsm8k": 1000, "alpaca": 150}, "eval": {"gsm8k": 1000, "alpaca": 500}}
MICRO_BATCH = 16
DTYPE = "bfloat16"
MAX_LENGTH = 1024
#: rules compared: (label, QTuningConfig overrides, dedup before the triage)
RULES: list[tuple[str, dict[str, Any], bool]] = [
    (
        f"fill={fill}, entropy={span}{', dedup' if dd else ''}",
        {"fill": fill, "entropy_span": span, "abrupt_end": None, "max_ifd": None},
        dd,
    )
    for dd in (True, False)
    for fill in ("margin", "uniform", "paper", "rank")
    for span in ("response", "all")
]
#: Abrupt-end margins (``QTuningConfig.abrupt_end``: nats above the median end-of-turn NLL)
#: tried on top of the best plane rule without it (fill=uniform, entropy=all, dedup) and of the
#: plane-free fill (fill=random): an abrupt end is what a clean cut changes. Relative, because
#: the usual end NLL depends on the answer format.
END_THRESHOLDS = (3.0, 4.0, 6.0, 8.0)
#: IFD thresholds (``QTuningConfig.max_ifd``) tried with each margin: a shuffled answer is not
#: explained by its prompt (Superfiltering drops IFD >= 1 as misaligned); below 1 the rule also
#: leaves out pairs whose prompt helps only a little.
IFD_THRESHOLDS = (None, 0.9, 0.95, 1.0)
#: Fills the noise-rule grid runs with: the fill itself is chosen by held-out NLL
#: (``benchmarks/qtuning_outcome.py --split dev-fill``); this diagnostic chooses the noise rules
#: for the default fill.
NOISE_FILLS = ("uniform", "random")
RULES += [
    (
        f"fill={fill}, entropy=all, dedup, abrupt_end={t:g}"
        + ("" if f is None else f", max_ifd={f:g}"),
        {"fill": fill, "entropy_span": "all", "abrupt_end": t, "max_ifd": f},
        True,
    )
    for fill in NOISE_FILLS
    for f in IFD_THRESHOLDS
    for t in END_THRESHOLDS
]


def auroc(score: np.ndarray, positive: np.ndarray) -> float:
    """AUROC of ``score`` for ``positive`` (NaN scores left out)."""
    from sklearn.metrics import roc_auc_score

    ok = ~np.isnan(score)
    return float(roc_auc_score(positive[ok].astype(int), score[ok]))


# ------------------------------------------------------------------------------------ measures
def classes_of(pool: list[dict]) -> np.ndarray:
    return np.array(
        [
            "duplicate" if r["fault"] in ("exact_dup", "near_dup") else
            ("clean" if r["fault"] == "none" else r["fault"])
            for r in pool
        ]
    )  # fmt: skip


def retention(pool: list[dict], kinds: np.ndarray, kept: np.ndarray) -> dict[str, Any]:
    """Per class: kept fraction, and for duplicates the paired and the label fractions."""
    idx = {r["id"]: i for i, r in enumerate(pool)}
    out: dict[str, Any] = {}
    for c in CLASSES:
        m = kinds == c
        if not m.any():
            continue
        if c == "duplicate":
            orig = np.array([idx[r["dup_of"]] for r, d in zip(pool, m) if d])
            out[c] = float(np.mean(kept[m] & kept[orig]))
            out["duplicate_label"] = float(kept[m].mean())
        else:
            out[c] = float(kept[m].mean())
    return out


def random_expectation(n: int, k: int) -> dict[str, float]:
    single = k / n
    both = k * (k - 1) / (n * (n - 1))
    return {"clean": single, "shuffled": single, "truncated": single, "duplicate": both,
            "duplicate_label": single}  # fmt: skip


def duplicates_mask(pool: list[dict]) -> np.ndarray:
    from dataprune.dedup import fuzzy_duplicates
    from dataprune.qtuning.config import DEDUP_THRESHOLD

    texts = [f"{r['prompt']}\n{r['response']}" for r in pool]
    return fuzzy_duplicates(texts, threshold=DEDUP_THRESHOLD).is_duplicate


def noise_mask(scores: dict[str, np.ndarray], cfg: Any) -> np.ndarray | None:
    """Samples a static triage leaves out as noise: an abrupt end (``cfg.abrupt_end``, the
    median over the pool) or misaligned (``cfg.max_ifd``); ``None`` when neither rule is on."""
    from dataprune.qtuning.noise import abrupt_end_mask, add_misaligned

    noise = None
    if cfg.abrupt_end is not None:
        noise = abrupt_end_mask(scores["end"], cfg.abrupt_end)
    if cfg.max_ifd is not None:
        _, noise = add_misaligned(scores["ifd"], cfg.max_ifd, noise)
    return noise


def run_rule(scores, cfg, exclude, *, micro_batch: int | None, seed: int) -> np.ndarray:
    """The kept mask of ``cfg`` (static, or per shuffled micro-batch as the trainer does).

    ``cfg.abrupt_end`` flags abrupt ends from ``scores["end"]`` the way
    :func:`dataprune.qtuning.triage_token_scores` does (NaN: never flagged).
    """
    from dataprune.qtuning import triage_samples
    from dataprune.qtuning.noise import abrupt_end_mask, add_misaligned

    ppl, ent = scores["ppl"], scores[cfg.entropy_span]
    noise = noise_mask(scores, cfg)
    if micro_batch is None:
        return triage_samples(ppl, ent, cfg, exclude=exclude, noise=noise, random_state=seed).kept
    # the trainer drops duplicates from the training set once, before training (``exclude``),
    # then triages each micro-batch: abrupt ends against the batch's median end NLL, IFD
    # (absolute threshold) from its gradient-free pass without the prompt
    rng = np.random.default_rng([seed, 7])
    perm = rng.permutation(np.arange(len(ppl)) if exclude is None else np.flatnonzero(~exclude))
    kept = np.zeros(len(ppl), dtype=bool)
    for lo in range(0, len(perm), micro_batch):
        idx = perm[lo : lo + micro_batch]
        nz = None if cfg.abrupt_end is None else abrupt_end_mask(scores["end"][idx], cfg.abrupt_end)
        if cfg.max_ifd is not None:
            _, nz = add_misaligned(scores["ifd"][idx], cfg.max_ifd, nz)
        kept[idx] = triage_samples(ppl[idx], ent[idx], cfg, noise=nz, random_state=rng).kept
    return kept


def ratios(ret: dict[str, float], rnd: dict[str, float]) -> dict[str, float]:
    return {c: ret[c] / rnd[c] for c in ret if rnd.get(c)}


def meets(rat: dict[str, float]) -> bool:
    return all(rat[c] <= 0.5 for c in CORRUPT if c in rat) and rat.get("clean", 1.0) >= 1.0


def summarise(cells: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    """Mean retention and ratio to random per (cell, rule) over seeds; target per cell."""
    out: dict[str, Any] = {}
    for cell, rows in cells.items():
        out[cell] = {}
        for label in labels:
            rats = [ratios(r["rules"][label], r["random"]) for r in rows]
            mean_rat = {c: float(np.mean([x[c] for x in rats])) for c in rats[0]}
            mean_ret = {c: float(np.mean([r["rules"][label][c] for r in rows])) for c in rats[0]}
            flagged = [r["rules"][label].get("clean_noise") for r in rows]
            out[cell][label] = {
                "retention": mean_ret,
                # share of the clean samples left out as noise (abrupt end / misaligned), mean
                # over seeds; None for the extra (non-triage) rules
                "clean_noise": None if None in flagged else float(np.mean(flagged)),
                "ratio": mean_rat,
                "meets": meets(mean_rat),
                "seeds_meeting": int(sum(meets(x) for x in rats)),
                "worst_corrupt_ratio": max(mean_rat[c] for c in CORRUPT if c in mean_rat),
            }
    return out


def signal_auroc(cells: dict[str, Any], signal: str = "end") -> dict[str, dict[str, list[float]]]:
    """Per source and corrupted class: a fault signal's AUROC against clean, per seed
    (``"end"``: the end-of-turn NLL; ``"ifd"``: IFD)."""
    out: dict[str, dict[str, list[float]]] = {}
    for cell, rows in cells.items():
        source, ratio = cell.split("|")
        if ratio != str(RATIOS[0]):
            continue  # the scores do not depend on the ratio
        for r in rows:
            for c, v in r.get(f"{signal}_auroc", {}).items():
                out.setdefault(source, {}).setdefault(c, []).append(v)
    return out


def clean_noise(summary: dict[str, Any], label: str) -> float:
    """The share of clean samples a rule leaves out as noise, averaged over the cells (every
    source and ratio counts the same)."""
    return float(np.mean([summary[c][label]["clean_noise"] or 0.0 for c in summary]))


def seeds_met(summary: dict[str, Any], label: str) -> int:
    """(cell, corruption seed) pairs in which ``label`` meets the target."""
    return int(sum(summary[c][label]["seeds_meeting"] for c in summary))


def choose(summary: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    """The default: the most (cell, corruption seed) pairs meeting the target (each seed is a
    pool a user could have: a rule that meets it only on the mean over seeds is marginal); then
    the most cells meeting it on the mean; then the fewest clean samples left out as noise (the
    least aggressive fault filter that does it: a clean pair thrown away is data the retention
    ratios cannot see, since K is fixed); then the smallest worst corrupted ratio."""
    score = {
        lb: (
            seeds_met(summary, lb),
            sum(summary[c][lb]["meets"] for c in summary),
            -round(clean_noise(summary, lb), 3),
            -max(summary[c][lb]["worst_corrupt_ratio"] for c in summary),
        )
        for lb in labels
    }
    best = max(labels, key=lambda lb: score[lb])
    return {
        "winner": best,
        "seeds_met": {lb: s[0] for lb, s in score.items()},
        "cells_met": {lb: s[1] for lb, s in score.items()},
    }
