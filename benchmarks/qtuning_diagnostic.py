"""Q-Tuning diagnostic: which planted faults does the sample triage keep, against random?

Pools (:func:`benchmarks.sft_pool.build_pool`, one source at a time): GSM8K and Alpaca SFT pairs
with planted faults (10% ``shuffled`` answers, 5% ``truncated`` responses, 5% ``exact_dup``, 5%
``near_dup``), three corruption seeds each. Every pair is scored once with SmolLM2-135M-Instruct
(response PPL, mean predictive entropy, and the NLL of the end-of-turn token after the response;
memoised on disk by exact text, so a re-run or another seed re-uses every pair already scored).
Then, at sample ratios 0.25 and 0.5, each triage rule
keeps exactly ``K`` samples and each class's retention is compared with random selection's
expectation at the same ``K`` (exact, no draws):

* ``shuffled`` / ``truncated`` / ``clean``: the fraction of the class kept (random: ``K / N``);
* ``duplicate`` (``exact_dup`` + ``near_dup``), *paired*: the fraction of copies kept **together
  with the record they copy** (random: ``K (K - 1) / (N (N - 1))``). Keeping one of two identical
  records keeps no redundancy; which of the two is the "copy" is an accident of the file order.
  The label count (copy kept, whatever happened to the original; random ``K / N``) is reported too.

The rules: every fill-up x entropy span, with and without near-duplicates left out, and the
best of them (``fill=uniform, entropy=all, dedup``) and the plane-free ``fill=random`` (a seeded
draw from what the noise rules leave in) with abrupt ends left out at several
``abrupt_end`` margins (end-of-turn NLL above the pool's median by more than the margin; a clean
cut leaves fluent text whose PPL and entropy barely move, the end-of-turn token after it is
surprising), each alone and with misaligned pairs left out at several ``max_ifd`` thresholds
(IFD, ``PPL(response | prompt) / PPL(response)``, from a second scoring pass with empty prompts:
an answer to another question is not explained by its prompt). ``fill=flat`` at the default
noise rules is shown next to them, outside the choice: the fill default is chosen by held-out
NLL (``benchmarks/qtuning_outcome.py --split dev-fill``), and this diagnostic only checks that
it meets the target.

Phase ``dev`` (``split="dev"``: 1,000 GSM8K and 150 Alpaca candidates, disjoint from every eval
pool) compares the rules and chooses the default noise rules among those of the default fill
(the fill is chosen by held-out NLL): the rule meeting the target (every corrupted
class at most half of random's retention, clean at least random's) in the most (source, ratio)
cells, averaged over seeds; ties by the smaller share of clean samples left out as noise (an
abrupt end or misaligned: clean data thrown away, which the ratios at a fixed K do not show),
then by the smaller worst corrupted ratio. Phase ``eval`` (1,000 GSM8K,
500 Alpaca from the eval candidates) reports every rule and checks the target for the default
``QTuningConfig()``, static and per micro-batch of 16 (what the trainer does in dynamic mode:
the pool deduplicated once, then abrupt ends, IFD and the plane per shuffled micro-batch; the
scores are the base model's, i.e. the trainer's first step).

Run: ``.venv/bin/python benchmarks/qtuning_diagnostic.py`` (resumable; ``--render-only``
re-renders from the saved JSON).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks import _common as common  # noqa: E402
from benchmarks import sft_pool  # noqa: E402

NAME = "qtuning_diagnostic"
CLASSES = ("clean", "shuffled", "truncated", "duplicate")
CORRUPT = ("shuffled", "truncated", "duplicate")
RATIOS = (0.25, 0.5)
SEEDS = (0, 1, 2)
SIZES = {"dev": {"gsm8k": 1000, "alpaca": 150}, "eval": {"gsm8k": 1000, "alpaca": 500}}
MICRO_BATCH = 16
DTYPE = "bfloat16"
MAX_LENGTH = 1024
DEFAULT_WORK = HERE / ".cache" / NAME
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


# ------------------------------------------------------------------------------------ scoring
class ScoreMemo:
    """Per exact (prompt, response): response PPL, mean entropy over the response and over every
    position, the end-of-turn NLL (NaN when the window cut it off) and IFD, saved as computed.

    One conditioned :func:`~dataprune.lm_scoring.score_sft` pass gives the first four; IFD adds
    one pass with empty prompts (:func:`dataprune.scores.ifd_from_token_scores`).
    """

    COLUMNS = ("ppl", "response", "all", "end", "ifd")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, list[float]] = (
            json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        )

    @staticmethod
    def key(prompt: str, response: str) -> str:
        return hashlib.sha1(f"{prompt}\x00{response}".encode()).hexdigest()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data), encoding="utf-8")
        tmp.replace(self.path)

    def fill(self, lm: Any, pool: list[dict], chunk: int = 64) -> np.ndarray:
        """Score the pairs not memoised yet (saving after every chunk); the pool's rows."""
        from dataprune.lm_scoring import score_sft
        from dataprune.scores import ifd_from_token_scores

        keys = [self.key(r["prompt"], r["response"]) for r in pool]
        todo = sorted({k: i for i, k in enumerate(keys) if k not in self.data}.values())
        if todo:
            print(f"  scoring {len(todo)} new pairs", flush=True)
        opts = {"batch_size": 8, "max_length": MAX_LENGTH, "show_progress_bar": False}
        for lo in range(0, len(todo), chunk):
            idx = todo[lo : lo + chunk]
            responses = [pool[i]["response"] for i in idx]
            sc = score_sft(lm[0], lm[1], [pool[i]["prompt"] for i in idx], responses, **opts)
            un = score_sft(lm[0], lm[1], [""] * len(idx), responses, **opts)
            cols = (sc.perplexity(), sc.mean_entropy("response"), sc.mean_entropy("all"),
                    sc.end_nll(lm[1].eos_token_id), ifd_from_token_scores(sc, un).ifd)  # fmt: skip
            for j, i in enumerate(idx):
                self.data[keys[i]] = [float(c[j]) for c in cols]
            self.save()
        return np.array([self.data[k] for k in keys], dtype=np.float64)


def pool_scores(lm: Any, memo: ScoreMemo, pool: list[dict]) -> dict[str, np.ndarray]:
    """PPL, both entropies, the end-of-turn NLL (``"end"``) and IFD of every pair of ``pool``."""
    arr = memo.fill(lm, pool)
    return {c: arr[:, j] for j, c in enumerate(ScoreMemo.COLUMNS)}


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


# ------------------------------------------------------------------------------------ phases
def single_source_pools(split: str):
    """Yield ``(source, seed, pool)`` for every single-source pool of ``split`` (SIZES x SEEDS)."""
    for source, n in SIZES[split].items():
        for seed in SEEDS:
            pool = sft_pool.build_pool(
                n if source == "gsm8k" else 0, n if source == "alpaca" else 0, seed=seed,
                split=split,
            )  # fmt: skip
            print(f"[{split}] {source} seed {seed}: {len(pool)} records", flush=True)
            yield source, seed, pool


def evaluate_split(split: str, lm, memo: ScoreMemo, rules: list, extra: dict) -> dict[str, Any]:
    """Every rule on every (source, seed, ratio) of a split."""
    from dataprune.qtuning import QTuningConfig

    cells: dict[str, Any] = {}
    for source, seed, pool in single_source_pools(split):
        scores = pool_scores(lm, memo, pool)
        kinds = classes_of(pool)
        dup = duplicates_mask(pool)
        for ratio in RATIOS:
            k = QTuningConfig(sample_ratio=ratio).n_keep(len(pool))
            rnd = random_expectation(len(pool), k)
            res = {}
            for label, over, dd in rules:
                cfg = QTuningConfig(sample_ratio=ratio, **over)
                kept = run_rule(scores, cfg, dup if dd else None, micro_batch=None, seed=seed)
                res[label] = retention(pool, kinds, kept)
                noise = noise_mask(scores, cfg)
                clean = kinds == "clean"
                res[label]["clean_noise"] = 0.0 if noise is None else float(noise[clean].mean())
            for label, fn in extra.items():
                res[label] = retention(pool, kinds, fn(scores, ratio, dup, seed, k))
            cells.setdefault(f"{source}|{ratio}", []).append(
                {"seed": seed, "n": len(pool), "k": k, "random": rnd, "rules": res,
                 "class_counts": {c: int((kinds == c).sum()) for c in CLASSES},
                 "medians": {c: {"ppl": float(np.median(scores["ppl"][kinds == c])),
                                 "entropy": float(np.median(scores["response"][kinds == c])),
                                 "end": float(np.nanmedian(scores["end"][kinds == c]))}
                             for c in CLASSES if (kinds == c).any()},
                 **{f"{sig}_auroc": {c: auroc(scores[sig][(kinds == "clean") | (kinds == c)],
                                              kinds[(kinds == "clean") | (kinds == c)] == c)
                                     for c in CORRUPT if (kinds == c).any()}
                    for sig in ("end", "ifd")}}
            )  # fmt: skip
    return cells


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


# ------------------------------------------------------------------------------------ plot
def plot(lm_scores: dict, path: Path) -> Path | None:
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"clean": "#9e9e9e", "shuffled": "#d62728", "truncated": "#ff7f0e",
              "duplicate": "#1f77b4"}  # fmt: skip
    fig, axes = plt.subplots(1, len(lm_scores), figsize=(6.2 * len(lm_scores), 5), dpi=110)
    for ax, (title, d) in zip(np.atleast_1d(axes), lm_scores.items()):
        ppl, ent, kinds, kept = (np.asarray(d[k]) for k in ("ppl", "entropy", "kinds", "kept"))
        # a kept "duplicate" is a copy kept on its own (its original was dropped or is the copy)
        for c in CLASSES:
            for m, mk in ((kept, "o"), (~kept, "x")):
                sel = (kinds == c) & m
                ax.scatter(ppl[sel], ent[sel], s=14 if mk == "o" else 10, c=colors[c],
                           marker=mk, alpha=0.75 if mk == "o" else 0.35, linewidths=0.8,
                           label=f"{c} {'kept' if mk == 'o' else 'dropped'} ({int(sel.sum())})")  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("response perplexity (error)")
        span = d.get("span", "response")
        ax.set_ylabel(
            f"mean entropy over {'every predicted position' if span == 'all' else 'the response'}"
            ", nats (uncertainty)"
        )
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=6.5, ncol=2)
        ax.grid(True, which="both", alpha=0.2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------ render
def _r(x: float) -> str:
    return f"{x:.2f}x"


def render_table(summary: dict, labels: list[str], mark: str | None) -> list[str]:
    L = []
    cells = list(summary)
    head = "| rule | " + " | ".join(
        f"{c.split('|')[0]} r={c.split('|')[1]}: shuf / trunc / dup / clean" for c in cells
    )
    L.append(
        head + " | clean left out as noise (mean over cells) | cells meeting the target "
        "| cell x seed pairs meeting it |"
    )
    L.append("|---|" + "---:|" * (len(cells) + 3))
    for lb in labels:
        row = []
        for c in cells:
            s = summary[c][lb]["ratio"]
            row.append(
                " / ".join(_r(s[k]) for k in ("shuffled", "truncated", "duplicate", "clean"))
            )
        met = sum(summary[c][lb]["meets"] for c in cells)
        name = f"**{lb}** (default)" if lb == mark else lb
        cn = [summary[c][lb].get("clean_noise") for c in cells]
        noise = "-" if None in cn else f"{100 * clean_noise(summary, lb):.1f}%"
        L.append(
            f"| {name} | " + " | ".join(row) + f" | {noise} | {met} of {len(cells)} "
            f"| {seeds_met(summary, lb)} of {len(SEEDS) * len(cells)} |"
        )
    return L


def render(res: dict, png: str | None = None) -> str:
    L = ["## Q-Tuning diagnostic: planted faults kept by the sample triage, against random\n"]
    L.append(
        f"Command: `{res['command']}` (resumable; `--render-only` rebuilds this section). "
        f"{common.machine_sentence(res.get('machine'))} Scores: SmolLM2-135M-Instruct "
        f"({DTYPE}), response PPL and mean predictive entropy over the response (`entropy="
        f"response`) or every predicted position (`entropy=all`), and the NLL of the "
        f"end-of-turn token after the response, and IFD (a second pass with empty prompts), "
        f"max_length {MAX_LENGTH}; "
        f"{res['n_scored']} distinct pairs scored ("
        + (
            f"{res['n_scored_this_run']} of them by this run, "
            if "n_scored_this_run" in res
            else ""
        )
        + f"which took {res['scoring_seconds']:.0f} s in all; the others came from the "
        "resumable score cache).\n"
    )
    L.append(
        "Each cell: a single-source pool from `benchmarks/sft_pool.py` (10% shuffled answers, 5% "
        "truncated responses, 5% exact and 5% near duplicates), corruption seeds "
        f"{', '.join(map(str, SEEDS))}, at a sample ratio r. Numbers are retention / random's "
        "expected retention at the same K, averaged over the seeds (lower is better for the "
        "corrupted classes; clean should be >= 1.00x). *dup* is paired: a copy kept together "
        "with the record it copies (random: K(K-1)/(N(N-1))). Target per cell: shuffled, "
        "truncated and dup at most 0.50x, clean at least 1.00x. *dedup*: near-duplicates "
        "(MinHash, Jaccard >= 0.8 on prompt + response; exact copies included) are left out "
        "before the triage (`QTuningConfig.dedup`).\n"
    )
    for split in ("dev", "eval"):
        if split not in res:
            continue
        d = res[split]
        sizes = ", ".join(f"{s} {n}" for s, n in SIZES[split].items())
        L.append(f"### {split}: {'choosing the default' if split == 'dev' else 'held out'}\n")
        L.append(f"Pools: {sizes} candidates from the `{split}` partition.\n")
        L += render_table(d["summary"], d["labels"], res.get("default_label"))
        L.append("")
        if split == "dev":
            ch = d["choice"]
            L.append(
                f"Winner on dev among the `fill={res.get('default_fill', 'uniform')}` rules with "
                f"near-duplicates left out (the fill default is chosen by held-out NLL, "
                f"`benchmarks/qtuning_outcome.py --split dev-fill`; this diagnostic chooses its "
                f"noise rules: most (cell, corruption seed) pairs meeting the target; then "
                f"most cells meeting it on the mean over seeds; then the fewest clean samples "
                f"left out as noise, i.e. the least aggressive fault filter that meets it; then "
                f"the smallest worst corrupted ratio): **{ch['winner']}**, "
                + (
                    f"{ch['seeds_met'][ch['winner']]} of {len(SEEDS) * len(d['summary'])} "
                    f"(cell, seed) pairs and "
                    if "seeds_met" in ch
                    else ""
                )
                + f"{ch['cells_met'][ch['winner']]} of "
                f"{len(d['summary'])} cells. `QTuningConfig()` is "
                + (
                    "**this rule**."
                    if res.get("default_label") == ch["winner"]
                    else f"**not this rule** (it is `{res.get('default_label')}`)."
                )
                + "\n"
            )
    if "eval" in res:
        d = res["eval"]
        dl = res.get("default_label")
        L.append("**Target on the held-out pools (computed):**\n")
        for lb in (dl, "dynamic, micro-batch 16 (default config)"):
            if lb is None or lb not in d["labels"]:
                continue
            for c, s in d["summary"].items():
                x = s[lb]
                fails = [k for k in CORRUPT if x["ratio"][k] > 0.5]
                if x["ratio"]["clean"] < 1.0:
                    fails.append("clean below random")
                L.append(
                    f"- {lb}, {c.replace('|', ' r=')}: **{'met' if x['meets'] else 'NOT met'}**"
                    + (f" ({', '.join(fails)})" if fails else "")
                    + f"; met on {x['seeds_meeting']} of {len(SEEDS)} seeds."
                )
        L.append("")
        L.append(
            "Label-count duplicate retention (copy kept regardless of the original), eval, "
            "ratio to random:\n"
        )
        L.append("| rule | " + " | ".join(c.replace("|", " r=") for c in d["summary"]) + " |")
        L.append("|---|" + "---:|" * len(d["summary"]))
        for lb in d["labels"]:
            L.append(
                f"| {lb} | "
                + " | ".join(
                    _r(d["summary"][c][lb]["ratio"]["duplicate_label"]) for c in d["summary"]
                )
                + " |"
            )
        L.append("")
        med = res.get("medians")
        if med:
            L.append("Median PPL / entropy / end-of-turn NLL per class (eval, seed 0):\n")
            L.append("| pool | " + " | ".join(CLASSES) + " |")
            L.append("|---|" + "---:|" * len(CLASSES))
            for src, m in med.items():
                L.append(
                    f"| {src} | "
                    + " | ".join(
                        f"{m[c]['ppl']:.2f} / {m[c]['entropy']:.3f} / {m[c]['end']:.2f}"
                        if c in m and "end" in m[c]
                        else (f"{m[c]['ppl']:.2f} / {m[c]['entropy']:.3f} / -" if c in m else "-")
                        for c in CLASSES
                    )
                    + " |"
                )
            L.append("")
    intro = {
        "end": "End-of-turn NLL (`-log p(end)` after the response; `QTuningConfig.abrupt_end`)",
        "ifd": "IFD (`PPL(response | prompt) / PPL(response)`; `QTuningConfig.max_ifd`)",
    }
    for sig, text in intro.items():
        aucs = [
            (sp, res[sp][f"{sig}_auroc"])
            for sp in ("dev", "eval")
            if res.get(sp, {}).get(f"{sig}_auroc")
        ]
        if not aucs:
            continue
        L.append(
            f"{text} as a fault signal: AUROC of each corrupted class against the clean pairs, "
            "mean (min) over the corruption seeds:\n"
        )
        L.append("| split | pool | " + " | ".join(CORRUPT) + " |")
        L.append("|---|---|" + "---:|" * len(CORRUPT))
        for sp, by in aucs:
            for src, au in by.items():
                L.append(
                    f"| {sp} | {src} | "
                    + " | ".join(
                        f"{np.mean(au[c]):.3f} ({min(au[c]):.3f})" if c in au else "-"
                        for c in CORRUPT
                    )
                    + " |"
                )
        L.append("")
    if png:
        L.append(f"![EU plane, kept vs dropped by class](results/{png})\n")
    return "\n".join(L) + "\n"


# ------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work-dir", type=Path, default=DEFAULT_WORK)
    ap.add_argument("--threads", type=int, default=2)
    common.add_render_only(ap, NAME)
    args = ap.parse_args(argv)
    if args.render_only:
        res = json.loads((common.RESULTS / f"{NAME}.json").read_text(encoding="utf-8"))
        md = render(res, res.get("png"))
        common.publish(NAME, md, res, indent=1)
        print(md)
        return 0
    logging.basicConfig(level=logging.WARNING)
    import torch

    from dataprune.models import load_causal_lm
    from dataprune.qtuning import QTuningConfig

    torch.set_num_threads(args.threads)
    lm = load_causal_lm(dtype=DTYPE)
    memo = ScoreMemo(args.work_dir / "pair_scores.json")
    n0 = len(memo.data)
    res: dict[str, Any] = {
        "command": "python benchmarks/qtuning_diagnostic.py",
        "machine": common.machine_info(["torch", "transformers"]),
    }
    t0 = time.perf_counter()

    def lowest_ppl(scores, ratio, dup, seed, k):
        order = np.argsort(scores["ppl"], kind="stable")
        kept = np.zeros(len(order), bool)
        kept[order[:k]] = True
        return kept

    def lowest_ppl_dedup(scores, ratio, dup, seed, k):
        ppl = np.where(dup, np.inf, scores["ppl"])
        order = np.argsort(ppl, kind="stable")
        kept = np.zeros(len(order), bool)
        kept[order[:k]] = True
        return kept

    def superfiltering_dedup(scores, ratio, dup, seed, k):
        # Superfiltering: drop IFD >= 1 (misaligned), then the highest IFD first
        key = np.where(dup | (scores["ifd"] >= 1.0), -np.inf, scores["ifd"])
        order = np.argsort(-key, kind="stable")
        kept = np.zeros(len(order), bool)
        kept[order[:k]] = True
        return kept

    def flat(scores, ratio, dup, seed, k):
        # the "flat" fill at the default noise rules: shown, not a candidate here (the fill
        # default is chosen by held-out NLL, benchmarks/qtuning_outcome.py --split dev-fill)
        cfg = QTuningConfig(sample_ratio=ratio, fill="flat")
        return run_rule(scores, cfg, dup, micro_batch=None, seed=seed)

    extra = {"keep lowest PPL": lowest_ppl, "keep lowest PPL, dedup": lowest_ppl_dedup,
             "Superfiltering (IFD < 1, highest IFD), dedup": superfiltering_dedup,
             "fill=flat, dedup (default noise rules)": flat}  # fmt: skip
    labels = [r[0] for r in RULES] + list(extra)
    cells = evaluate_split("dev", lm, memo, RULES, extra)
    summ = summarise(cells, labels)
    # the noise rules are chosen for the default fill (the fill by held-out NLL, dev-fill)
    d = QTuningConfig()
    candidates = [lb for lb, over, dd in RULES if over["fill"] == d.fill and dd]
    res["default_fill"] = d.fill
    res["dev"] = {"labels": labels, "summary": summ, "choice": choose(summ, candidates),
                  "end_auroc": signal_auroc(cells), "ifd_auroc": signal_auroc(cells, "ifd")}  # fmt: skip
    res["default_label"] = next(
        (lb for lb, over, dd in RULES
         if over["fill"] == d.fill and over["entropy_span"] == d.entropy_span
         and over["abrupt_end"] == d.abrupt_end and over.get("max_ifd") == d.max_ifd
         and dd == (d.dedup != "none")),
        None,
    )  # fmt: skip

    def dynamic(scores, ratio, dup, seed, k):
        cfg = QTuningConfig(sample_ratio=ratio)
        exclude = dup if cfg.dedup != "none" else None
        return run_rule(scores, cfg, exclude, micro_batch=MICRO_BATCH, seed=seed)

    extra_eval = {**extra, "dynamic, micro-batch 16 (default config)": dynamic}
    labels_eval = [r[0] for r in RULES] + list(extra_eval)
    cells_e = evaluate_split("eval", lm, memo, RULES, extra_eval)
    res["eval"] = {"labels": labels_eval, "summary": summarise(cells_e, labels_eval),
                   "end_auroc": signal_auroc(cells_e),
                   "ifd_auroc": signal_auroc(cells_e, "ifd")}  # fmt: skip
    res["medians"] = {
        c.split("|")[0]: rows[0]["medians"] for c, rows in cells_e.items() if c.endswith("|0.25")
    }
    res["n_scored"] = len(memo.data)
    res["n_scored_this_run"] = len(memo.data) - n0
    res["scoring_seconds"] = round(time.perf_counter() - t0, 1)
    # plot: eval seed 0, ratio 0.25, the default rule
    panels = {}
    for source, n in SIZES["eval"].items():
        pool = sft_pool.build_pool(n if source == "gsm8k" else 0, n if source == "alpaca" else 0,
                                   seed=0, split="eval")  # fmt: skip
        sc = pool_scores(lm, memo, pool)
        cfg = QTuningConfig(sample_ratio=0.25)
        kept = run_rule(sc, cfg, duplicates_mask(pool) if cfg.dedup != "none" else None,
                        micro_batch=None, seed=0)  # fmt: skip
        panels[f"{source} (eval, seed 0), default triage at r=0.25"] = {
            "ppl": sc["ppl"], "entropy": sc[cfg.entropy_span], "kinds": classes_of(pool),
            "kept": kept, "span": cfg.entropy_span}  # fmt: skip
    png = plot(panels, common.RESULTS / f"{NAME}.png")
    res["png"] = png.name if png else None
    common.record_end_load(res["machine"])
    md = render(res, res["png"])
    common.publish(NAME, md, res, indent=1)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
