"""Selection quality on real data: MMLU question text -> subject (57 classes).

Every selection method keeps 10/30/50/70% of a training pool; a logistic regression trained on the
MiniLM embeddings of the kept records is scored on a fixed held-out split that selection never
sees. Three training conditions: clean; 20% symmetric label noise injected into the training
labels; 30% near-duplicates injected (edited copies of 10% of the training questions, 3 each).
Each (condition, seed) is paired: every method sees the same data and seed, and the delta vs
random is computed per seed, then summarised with a t-based 95% confidence interval.

Run:  .venv/bin/python benchmarks/selection_quality.py            (full: 5 seeds)
      .venv/bin/python benchmarks/selection_quality.py --quick    (2 seeds, smoke test)

Writes benchmarks/results/selection_quality.{json,md,png} and rebuilds benchmarks/RESULTS.md.
Per-(condition, seed, method) results are checkpointed in the dataprune cache, so an interrupted
run resumes.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import _common as common  # noqa: E402
from benchmarks.selection_quality_render import findings, plot, write_md  # noqa: E402
from benchmarks.selection_quality_setup import (  # noqa: E402
    CCS_BETA,
    CONDITIONS,
    DATA,
    DUP_COPIES,
    DUP_SEED,
    DUP_SOURCE_FRACTION,
    EL2N_OFFSET,
    FRACTIONS,
    LR_C,
    LR_MAX_ITER,
    METHODS,
    NAME,
    NOISE_RATE,
    RESULTS,
    SPLIT_SEED,
    TEST_FRACTION,
)

logger = logging.getLogger("selection_quality")


# ---------------------------------------------------------------------------------------- data
def load_mmlu(root: Path = DATA) -> tuple[list[str], list[str]]:
    """Question texts and their subject (the CSV file name), files in sorted order."""
    texts, subjects = [], []
    files = sorted(root.glob("*_test.csv"))
    if not files:
        raise SystemExit(f"no MMLU test CSVs under {root}")
    for f in files:
        subject = f.name[: -len("_test.csv")]
        with open(f, encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                texts.append(row["question"])
                subjects.append(subject)
    return texts, subjects


def stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        n_test = round(test_fraction * len(members))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


_PREFIXES = ("Question: ", "Q: ", "Answer the following question. ", "Quiz: ")


def edited_copy(text: str, rng: np.random.Generator) -> str:
    """A near-duplicate: 1-2 surface edits (prefix, case/punctuation, dropped or swapped word)."""
    out = text
    for op in rng.choice(5, size=int(rng.integers(1, 3)), replace=False):
        words = out.split()
        if op == 0:
            out = str(rng.choice(_PREFIXES)) + out
        elif op == 1:
            out = re.sub(r"[^\w\s]", "", out).lower()
        elif op == 2 and len(words) > 4:
            del words[int(rng.integers(len(words)))]
            out = " ".join(words)
        elif op == 3 and len(words) > 3:
            i = int(rng.integers(len(words) - 1))
            words[i], words[i + 1] = words[i + 1], words[i]
            out = " ".join(words)
        else:
            out = "  ".join(words) + " "
    return out if out != text else out + " (repeat)"


def make_duplicates(
    texts: list[str], train_idx: np.ndarray, seed: int = DUP_SEED
) -> tuple[list[str], np.ndarray]:
    """Edited copies of a random 10% of the training questions (3 per source)."""
    rng = np.random.default_rng(seed)
    n_src = round(DUP_SOURCE_FRACTION * len(train_idx))
    sources = np.sort(rng.choice(train_idx, size=n_src, replace=False))
    copies, src = [], []
    for s in sources.tolist():
        for _ in range(DUP_COPIES):
            copies.append(edited_copy(texts[s], rng))
            src.append(s)
    return copies, np.asarray(src, dtype=np.int64)


def inject_noise(y: np.ndarray, n_classes: int, rate: float, seed: int) -> tuple[np.ndarray, ...]:
    """Symmetric noise: ``rate`` of the labels replaced by a uniformly drawn *other* class."""
    rng = np.random.default_rng(seed)
    noisy = y.copy()
    flip = np.sort(rng.choice(len(y), size=round(rate * len(y)), replace=False))
    shift = rng.integers(1, n_classes, size=len(flip))
    noisy[flip] = (y[flip] + shift) % n_classes
    mask = np.zeros(len(y), dtype=bool)
    mask[flip] = True
    return noisy, mask


# ----------------------------------------------------------------------- downstream learner
def fit_predict_lr(
    X_tr: np.ndarray, y_tr: np.ndarray, X_te: np.ndarray, n_classes: int
) -> np.ndarray:
    """Multinomial logistic regression (L2, C=LR_C, full-batch L-BFGS, LR_MAX_ITER iterations)."""
    import torch

    torch.set_num_threads(1)
    Xt = torch.from_numpy(np.ascontiguousarray(X_tr, dtype=np.float32))
    yt = torch.from_numpy(np.asarray(y_tr, dtype=np.int64))
    W = torch.zeros(Xt.shape[1], n_classes, requires_grad=True)
    b = torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.LBFGS(
        [W, b],
        lr=1,
        max_iter=LR_MAX_ITER,
        history_size=20,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-6,
        tolerance_change=1e-9,
    )
    n = len(yt)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(Xt @ W + b, yt) + (W * W).sum() / (2 * LR_C * n)
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return (torch.from_numpy(np.ascontiguousarray(X_te, np.float32)) @ W + b).argmax(1).numpy()


# -------------------------------------------------------------------------------- selection
def select_all(
    X: np.ndarray, y: np.ndarray, seed: int, n_classes: int
) -> tuple[dict[str, dict[float, np.ndarray]], dict[str, float], dict[str, Any]]:
    """Kept indices for every method and fraction, selection seconds per method, diagnostics."""
    from dataprune.scores.proxy import cross_val_probs, proxy_scores
    from dataprune.selection import (
        CCS,
        ClassBalancedSelector,
        ConfidentLearningSelector,
        FacilityLocation,
        KCenterGreedy,
        Prototypes,
        RandomSelector,
        ScoreSelector,
        SemDeDup,
    )

    n = len(y)
    ks = {f: round(f * n) for f in FRACTIONS}
    k_max = max(ks.values())
    out: dict[str, dict[float, np.ndarray]] = {}
    secs: dict[str, float] = {}
    diag: dict[str, Any] = {}

    def timed(name: str, fn) -> None:
        t0 = time.perf_counter()
        out[name] = fn()
        secs[name] = round(time.perf_counter() - t0, 3)

    def per_fraction(make) -> dict[float, np.ndarray]:
        return {f: make(k).selected_indices_ for f, k in ks.items()}

    timed(
        "random",
        lambda: per_fraction(lambda k: RandomSelector(n_samples=k, random_state=seed).fit(X)),
    )
    timed(
        "class_balanced",
        lambda: per_fraction(
            lambda k: ClassBalancedSelector(n_samples=k, random_state=seed).fit(X, y)
        ),
    )

    # greedy methods: the selection for a smaller budget is the prefix of a larger one
    def prefix(sel) -> dict[float, np.ndarray]:
        order = sel.fit(X).selected_indices_
        return {f: order[:k] for f, k in ks.items()}

    timed("kcenter", lambda: prefix(KCenterGreedy(n_samples=k_max, random_state=seed)))
    timed("facility_location", lambda: prefix(FacilityLocation(n_samples=k_max, random_state=seed)))
    # prototypes rank records independently of the budget: the prefix is the exact selection
    for keep in ("easy", "hard"):
        timed(
            f"prototypes_{keep}",
            lambda keep=keep: prefix(Prototypes(n_samples=k_max, keep=keep, random_state=seed)),
        )
    # SemDeDup with random fill draws the budget uniformly from the non-duplicates; a prefix of
    # the largest draw is a uniform draw of the smaller size (checked: the non-duplicates always
    # outnumber the largest budget here, see semdedup_n_duplicates)
    sd = SemDeDup(n_samples=k_max, random_state=seed)
    timed("semdedup", lambda: prefix(sd))
    assert n - sd.n_duplicates_ >= k_max, "prefix argument needs enough non-duplicates"
    diag["semdedup_n_duplicates"] = int(sd.n_duplicates_)
    diag["semdedup_is_duplicate"] = sd.is_duplicate_

    t0 = time.perf_counter()
    ps = proxy_scores(X, y, n_runs=5, random_state=seed)
    t_scores = time.perf_counter() - t0
    diag["el2n"] = ps.el2n
    diag["grand"] = ps.grand
    for name, make in (
        ("el2n", lambda k: ScoreSelector(n_samples=k, keep="hard").fit(ps.el2n)),
        (
            "el2n_offset",
            lambda k: ScoreSelector(n_samples=k, keep="hard", offset=EL2N_OFFSET).fit(ps.el2n),
        ),
        ("grand", lambda k: ScoreSelector(n_samples=k, keep="hard").fit(ps.grand)),
        (
            "ccs_el2n",
            lambda k: CCS(n_samples=k, beta=CCS_BETA, random_state=seed).fit(ps.el2n),
        ),
    ):
        timed(name, lambda make=make: per_fraction(make))
        secs[name] = round(secs[name] + t_scores, 3)

    t0 = time.perf_counter()
    probs, _, _ = cross_val_probs(X, y, n_folds=5, random_state=seed)
    t_cv = time.perf_counter() - t0
    cl_last: list[Any] = []

    def cl(k: int):
        sel = ConfidentLearningSelector(n_samples=k, random_state=seed).fit(X, y, pred_probs=probs)
        cl_last[:] = [sel]
        return sel

    timed("confident_learning", lambda: per_fraction(cl))
    secs["confident_learning"] = round(secs["confident_learning"] + t_cv, 3)
    diag["cl_is_issue"] = cl_last[0].is_label_issue_
    return out, secs, diag


# ---------------------------------------------------------------------------------- summary
def auroc(score: np.ndarray, positive: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(positive.astype(int), score))


# ------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="2 seeds, for a smoke test")
    ap.add_argument("--no-resume", action="store_true", help="ignore checkpointed results")
    common.add_render_only(ap, NAME, "--render-md", dest="render_md")
    args = ap.parse_args(argv)
    if args.render_md:
        saved = common.read_results(NAME)
        saved["meta"]["findings"] = findings(saved["summary"])
        from dataprune.atomic import atomic_path

        with atomic_path(RESULTS / f"{NAME}.md") as tmp:
            write_md(saved["summary"], saved["meta"], Path(tmp))
        with atomic_path(RESULTS / f"{NAME}.png") as tmp:
            plot(saved["summary"], Path(tmp))
        common.rebuild_results_md()
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("dataprune").setLevel(logging.WARNING)
    n_seeds = 2 if args.quick else args.seeds
    t_start = time.perf_counter()
    machine = common.machine_info(["torch", "sklearn"])

    from dataprune.cache import cache_dir
    from dataprune.embeddings import embed_texts

    texts, subjects = load_mmlu()
    classes, y_all = np.unique(subjects, return_inverse=True)
    n_classes = len(classes)
    train_idx, test_idx = stratified_split(y_all, TEST_FRACTION, SPLIT_SEED)
    copies, copy_src = make_duplicates(texts, train_idx)
    logger.info("embedding %d questions + %d copies (cached)", len(texts), len(copies))
    X_all = np.asarray(embed_texts(texts, show_progress_bar=False), dtype=np.float32)
    X_copy = np.asarray(embed_texts(copies, show_progress_bar=False), dtype=np.float32)
    X_pool, y_pool = X_all[train_idx], y_all[train_idx]
    X_te, y_te = X_all[test_idx], y_all[test_idx]
    pos = {int(g): i for i, g in enumerate(train_idx)}
    X_dup = np.concatenate([X_pool, X_copy])
    y_dup = np.concatenate([y_pool, y_all[copy_src]])
    is_copy = np.concatenate([np.zeros(len(y_pool), bool), np.ones(len(copies), bool)])
    copy_cos = np.einsum("ij,ij->i", X_copy, X_pool[[pos[int(s)] for s in copy_src]])
    logger.info(
        "copies: cosine to source median %.3f, 10th pct %.3f",
        float(np.median(copy_cos)),
        float(np.percentile(copy_cos, 10)),
    )

    key = hashlib.sha256(
        json.dumps(
            [len(texts), SPLIT_SEED, DUP_SEED, LR_C, LR_MAX_ITER, EL2N_OFFSET, CCS_BETA, METHODS]
        ).encode()
    ).hexdigest()[:12]
    ckpt = cache_dir("benchmarks") / f"{NAME}-{key}.jsonl"
    done: dict[tuple[str, int], dict[str, Any]] = {}
    if ckpt.exists() and not args.no_resume:
        for line in ckpt.read_text().splitlines():
            rec = json.loads(line)
            done[(rec["condition"], rec["seed"])] = rec
        logger.info("resuming: %d (condition, seed) results in %s", len(done), ckpt)

    for seed in range(n_seeds):
        for cond in CONDITIONS:
            if (cond, seed) in done:
                continue
            t0 = time.perf_counter()
            noisy_mask = None
            if cond == "clean":
                X, y = X_pool, y_pool
            elif cond == "noise20":
                X = X_pool
                y, noisy_mask = inject_noise(y_pool, n_classes, NOISE_RATE, 1000 + seed)
            else:
                X, y = X_dup, y_dup
            sel, secs, diag = select_all(X, y, seed, n_classes)
            full_acc = float(np.mean(fit_predict_lr(X, y, X_te, n_classes) == y_te))
            rec: dict[str, Any] = {
                "condition": cond,
                "seed": seed,
                "full_acc": full_acc,
                "n_train": len(y),
                "methods": {},
            }
            for m in METHODS:
                rec["methods"][m] = {"select_s": secs[m]}
                for f, idx in sel[m].items():
                    assert len(np.unique(idx)) == len(idx) == round(f * len(y))
                    acc = float(np.mean(fit_predict_lr(X[idx], y[idx], X_te, n_classes) == y_te))
                    r = {"acc": acc}
                    if noisy_mask is not None:
                        r["noisy_kept"] = float(noisy_mask[idx].mean())
                    if cond == "dup30":
                        r["dups_kept"] = float(is_copy[idx].mean())
                    rec["methods"][m][str(f)] = r
            if noisy_mask is not None:
                flagged = diag["cl_is_issue"]
                rec["diagnostics"] = {
                    "el2n_noise_auroc": auroc(diag["el2n"], noisy_mask),
                    "grand_noise_auroc": auroc(diag["grand"], noisy_mask),
                    "cl_flagged": int(flagged.sum()),
                    "cl_precision": float(noisy_mask[flagged].mean()) if flagged.any() else 0.0,
                    "cl_recall": float(flagged[noisy_mask].mean()),
                }
            elif cond == "dup30":
                dup = diag["semdedup_is_duplicate"]
                rec["diagnostics"] = {
                    "semdedup_flagged": int(dup.sum()),
                    "semdedup_copy_recall": float(dup[is_copy].mean()),
                    "semdedup_precision": float(is_copy[dup].mean()) if dup.any() else 0.0,
                }
            else:
                rec["diagnostics"] = {"semdedup_flagged": diag["semdedup_n_duplicates"]}
            rec["wall_s"] = round(time.perf_counter() - t0, 1)
            with open(ckpt, "a") as fh:
                fh.write(json.dumps(rec) + "\n")
            done[(cond, seed)] = rec
            logger.info(
                "seed %d %s: full %.4f, random@30%% %.4f, %.0f s",
                seed,
                cond,
                full_acc,
                rec["methods"]["random"]["0.3"]["acc"],
                rec["wall_s"],
            )

    summary: dict[str, Any] = {}
    for cond in CONDITIONS:
        recs = [done[(cond, s)] for s in range(n_seeds)]
        s: dict[str, Any] = {
            "full_acc_mean": float(np.mean([r["full_acc"] for r in recs])),
            "n_train": recs[0]["n_train"],
            "methods": {},
        }
        for m in METHODS:
            s["methods"][m] = {
                "select_s": float(np.mean([r["methods"][m]["select_s"] for r in recs]))
            }
            for f in FRACTIONS:
                acc = np.array([r["methods"][m][str(f)]["acc"] for r in recs])
                base = np.array([r["methods"]["random"][str(f)]["acc"] for r in recs])
                d, lo, hi = common.t_interval95(acc - base)
                entry = {
                    "acc_mean": float(acc.mean()),
                    "acc_per_seed": acc.tolist(),
                    "delta_mean": d,
                    "delta_ci": [lo, hi],
                }
                for extra in ("noisy_kept", "dups_kept"):
                    if extra in recs[0]["methods"][m][str(f)]:
                        entry[extra] = float(
                            np.mean([r["methods"][m][str(f)][extra] for r in recs])
                        )
                s["methods"][m][str(f)] = entry
        diag_keys = recs[0].get("diagnostics", {}).keys()
        s["diagnostics"] = {
            k: float(np.mean([r["diagnostics"][k] for r in recs])) for k in diag_keys
        }
        summary[cond] = s

    wall = time.perf_counter() - t_start
    meta = {
        "command": ".venv/bin/python benchmarks/selection_quality.py"
        + (" --quick" if args.quick else f" --seeds {n_seeds}" if n_seeds != 5 else ""),
        "n_seeds": n_seeds,
        "n_total": len(texts),
        "n_test": len(test_idx),
        "n_pool": len(train_idx),
        "n_dup": len(copies),
        "copy_cosine_median": float(np.median(copy_cos)),
        "wall_s": wall,
        "machine": common.record_end_load(machine),
        "fractions": list(FRACTIONS),
        "methods": list(METHODS),
        "settings": {
            "lr_C": LR_C,
            "lr_max_iter": LR_MAX_ITER,
            "el2n_offset": EL2N_OFFSET,
            "ccs_beta": CCS_BETA,
            "noise_rate": NOISE_RATE,
            "dup_source_fraction": DUP_SOURCE_FRACTION,
            "dup_copies": DUP_COPIES,
        },
    }
    meta["findings"] = findings(summary)
    from dataprune.atomic import atomic_path

    # a quick run is a smoke test: its files go to the cache, never over the real results
    out_dir = cache_dir("benchmarks") / "quick" if args.quick else RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    common.write_json(out_dir / f"{NAME}.json", {"meta": meta, "summary": summary})
    with atomic_path(out_dir / f"{NAME}.png") as tmp:
        plot(summary, Path(tmp))
    with atomic_path(out_dir / f"{NAME}.md") as tmp:
        write_md(summary, meta, Path(tmp))
    if not args.quick:
        common.rebuild_results_md()
    for line in meta["findings"]:
        print(line)
    print(f"wall {wall / 60:.1f} min -> {out_dir / NAME}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
