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
from benchmarks.qtuning_diagnostic_render import plot, render  # noqa: E402
from benchmarks.qtuning_diagnostic_rules import (  # noqa: E402
    CLASSES,
    CORRUPT,
    DTYPE,
    MAX_LENGTH,
    MICRO_BATCH,
    NAME,
    RATIOS,
    RULES,
    SEEDS,
    SIZES,
    auroc,
    choose,
    classes_of,
    duplicates_mask,
    noise_mask,
    random_expectation,
    retention,
    run_rule,
    signal_auroc,
    summarise,
)

DEFAULT_WORK = HERE / ".cache" / NAME


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
