"""RAG context pruning on every held-out dataset, leave-one-dataset-out, and the multi-hop pass.

    .venv/bin/python benchmarks/rag_pruning.py                      # the shipped pruner
    .venv/bin/python benchmarks/rag_pruning.py --model benchmarks/.cache/rag_models/mixture
    .venv/bin/python benchmarks/rag_pruning.py --max-passages 300 --n-boot 200   # quicker

Held-out sets (``benchmarks/rag_eval_sets.py``): SQuAD v2 test articles (the pruner card's
split), SelQA test, WikiQA test and Climate-FEVER (never trained on: licences), and MuSiQue's
second sample (multi-hop, never trained on). For each, at the pruner's default settings:
evidence-sentence recall, F2 and character compression on all passages and on the passages that
hold evidence (each passage scored alone); then, on the evidence-bearing passages, recall and F2
at the pruner's compression
against the BM25 and MiniLM embedding sentence filters (global score thresholds) and the previous
checkpoint (the one the shipped pruner replaced, ``rag_eval_sets.PREVIOUS_COMMIT``), each swept
over its threshold and interpolated at that compression, with paired bootstrap 95% CIs over
passages. Multi-hop: every question's passages pruned together; the passage weight
(``dataprune.rag.passage_weight``) swept, its default against no weight and the second pass
against the single pass at matched compression (bootstrap over questions).
Leave-one-dataset-out (``benchmarks/rag_pruning_lodo.py``): each
``benchmarks/.cache/rag_models/lodo-<set>`` model (trained by ``benchmarks/rag_training.py``
without that set) on that set; on the multi-hop sets also every question's passages together.
The validation questions of the multi-hop training sets, each with all its passages (development
data), choose the passage weight (:data:`PASSAGE_WEIGHTS`, rule in ``multihop_report``) and
decide whether the second pass should be on by default.

``--lodo-from RESULTS.json``: the leave-one-dataset-out rows of models not on this machine come
from that earlier run (each such row names the run and its model's recipe).

Writes ``benchmarks/results/rag_pruning.{json,md}``; ``--render-only`` re-renders the ``.md``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import _common as common  # noqa: E402
from benchmarks.rag_eval_sets import (  # noqa: E402
    EVAL_SETS,
    dev_multihop_examples,
    eval_examples,
    group_by_question,
    previous_checkpoint,
    pruner_recipe,
    question_stats,
    score_examples,
)
from benchmarks.rag_pruning_lodo import lodo_report  # noqa: E402
from dataprune.rag.comparison import (  # noqa: E402
    THRESHOLD_GRID,
    best_recall,
    compare_at_threshold,
    metric_curve,
    paired_bootstrap,
    passage_stats,
    pruner_sweep,
    score_sweep,
    summed_metrics,
    threshold_masks,
    value_at_compression,
)

logger = logging.getLogger("benchmarks.rag_pruning")

NAME = "rag_pruning"
#: Threshold sweep of the pruners (curves and matched-compression interpolation).
THRESHOLDS = THRESHOLD_GRID
#: Targets of the issue, on evidence-bearing passages at the default settings.
SINGLE_HOP_TARGET = {"recall": 0.90, "compression": 0.60}
MULTI_HOP_TARGET = {"recall": 0.85, "compression": 0.60}
README_TARGET = {"recall": 0.90, "compression": 0.55}


def single_hop_report(
    pruner: Any, previous: Any, encoder: Any, examples: list[Any], *, n_boot: int, seed: int
) -> dict[str, Any]:
    """Default-setting metrics and matched-compression comparisons for one single-hop set."""
    from dataprune.rag import baselines as bl

    ours, secs = score_examples(pruner, examples)
    prev, _ = score_examples(previous, examples)
    texts = [[s.text for s in e.sentences] for e in examples]
    queries = [e.query for e in examples]
    sweeps = {
        "bm25": bl.bm25_scores(queries, texts),
        "embedding": bl.embedding_scores(queries, texts, encoder=encoder),
    }
    default = pruner.default_threshold
    bearing = [i for i, e in enumerate(examples) if e.has_answer]
    sub = [examples[i] for i in bearing]
    others = {name: score_sweep([sc[i] for i in bearing]) for name, sc in sweeps.items()}
    prev_sub = [prev[i] for i in bearing]
    others["previous"] = pruner_sweep(prev_sub, THRESHOLDS)
    report = compare_at_threshold(
        sub, [ours[i] for i in bearing], default, others,
        target_compression=SINGLE_HOP_TARGET["compression"], thresholds=THRESHOLDS,
        n_boot=n_boot, seed=seed,
    )  # fmt: skip
    report["all_passages"] = summed_metrics(passage_stats(examples, threshold_masks(ours, default)))
    # the most any pruner can remove while keeping every evidence sentence
    report["oracle_compression"] = summed_metrics(
        passage_stats(sub, [np.asarray(e.labels, dtype=bool) for e in sub])
    )["compression"]
    report["previous_at_its_default"] = summed_metrics(
        passage_stats(sub, threshold_masks(prev_sub, previous.default_threshold))
    )
    report.update(
        n_passages=len(examples),
        n_evidence_passages=len(bearing),
        n_questions=len({e.qid for e in examples}),
        passages_per_s=len(examples) / secs,
        threshold=default,
    )
    return report


#: Passage weights swept on the multi-hop questions (development data chooses the default).
PASSAGE_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0)
#: Compressions at which the passage-weight rule reads the best recall (the target's, and one
#: step harder).
WEIGHT_RULE_COMPRESSIONS = (0.60, 0.70)


def multihop_report(
    pruner: Any,
    examples: list[Any],
    *,
    n_boot: int,
    seed: int,
    threshold: float | None = None,
    compare_weight: float | None = None,
) -> dict[str, Any]:
    """Each question's passages pruned together: the passage weight swept, ``compare_weight``
    (default: this run's own rule choice) against no weight, and the second pass against the
    single pass, both at the pruner's default passage weight."""
    from dataprune.rag.passage_weight import DEFAULT_PASSAGE_WEIGHT, weight_by_passage
    from dataprune.rag.second_pass import SecondPassConfig, second_pass_scores

    groups = group_by_question(examples)
    queries = [g[0].query for g in groups]
    passages = [[e.passage for e in g] for g in groups]
    t0 = time.perf_counter()
    first = pruner.score(queries, passages, show_progress_bar=True)
    second, _ = second_pass_scores(pruner, queries, passages, first, SecondPassConfig())
    secs = time.perf_counter() - t0
    default = pruner.default_threshold if threshold is None else threshold

    def weighted(scores: list[list[Any]], w: float) -> list[list[Any]]:
        return [weight_by_passage(sc, w) for sc in scores]

    def stats(scores: list[list[Any]], t: float) -> np.ndarray:
        return question_stats(groups, [threshold_masks(sc, t) for sc in scores])

    memo: dict[tuple[str, float], tuple[list[list[Any]], list[np.ndarray]]] = {}

    def swept(which: str, w: float) -> tuple[list[list[Any]], list[np.ndarray]]:
        """The weighted scores of one pass and their stats at every threshold, computed once."""
        if (which, w) not in memo:
            sc = weighted(first if which == "first" else second, w)
            memo[which, w] = (sc, [stats(sc, t) for t in THRESHOLDS])
        return memo[which, w]

    sweep = {}
    for w in PASSAGE_WEIGHTS:
        curve = metric_curve(swept("first", w)[1], THRESHOLDS)
        sweep[repr(w)] = {
            "weight": w,
            "best_recall": [best_recall(curve, c) for c in WEIGHT_RULE_COMPRESSIONS],
        }
    # the rule: highest mean best recall at the rule's compressions; ties -> the smaller weight
    choice = max(
        sweep.values(), key=lambda v: (round(float(np.mean(v["best_recall"])), 9), -v["weight"])
    )["weight"]
    cw = choice if compare_weight is None else float(compare_weight)
    out: dict[str, Any] = {
        "n_questions": len(groups),
        "n_passages": len(examples),
        "threshold": default,
        "passage_weight": DEFAULT_PASSAGE_WEIGHT,
        "compare_weight": cw,
        "rule_compressions": list(WEIGHT_RULE_COMPRESSIONS),
        "weight_sweep": sweep,
        "weight_choice": choice,
    }
    per = {
        "off": swept("first", 0.0),
        "weighted": swept("first", cw),
        "single": swept("first", DEFAULT_PASSAGE_WEIGHT),
        "second": swept("second", DEFAULT_PASSAGE_WEIGHT),
    }
    curves = {k: metric_curve(st, THRESHOLDS) for k, (_, st) in per.items()}
    for k, (sc, _) in per.items():
        out[k] = {"default": summed_metrics(stats(sc, default)), "curve": curves[k]}
        out[k]["best_recall_at_target_compression"] = best_recall(
            curves[k], MULTI_HOP_TARGET["compression"]
        )
    # a against b at a's compression (b's sweep interpolated there; bootstrap over questions):
    # at the default threshold, and for the weight also at the threshold where it reaches its
    # best recall with the target compression
    target_t = max(
        (r for r in curves["weighted"] if r["compression"] >= MULTI_HOP_TARGET["compression"]),
        key=lambda r: (r["recall"], r["param"]),
        default={"param": default},
    )["param"]
    for key, a, b, t in (
        ("weighted_vs_off", "weighted", "off", default),
        ("weighted_vs_off_at_target", "weighted", "off", target_t),
        ("second_vs_single", "second", "single", default),
    ):
        st = stats(per[a][0], t)
        ref = per[b][1]
        boot = paired_bootstrap({t: st}, {b: ref}, n_boot=n_boot, seed=seed)[t][b]
        at = summed_metrics(st)
        out[key] = {
            "threshold": t,
            "compression": at["compression"],
            "recall": at["recall"],
            "delta_recall": at["recall"]
            - value_at_compression(curves[b], at["compression"], "recall"),
            "ci95_recall": boot["recall"],
        }
    out["seconds_both_passes"] = secs
    return out


def main(argv: list[str] | None = None) -> int:
    from benchmarks.rag_pruning_render import render

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--sets", default=",".join(EVAL_SETS))
    ap.add_argument("--max-passages", type=int, default=None, help="seeded subsample per set")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-lodo", action="store_true", help="skip the leave-one-dataset-out part")
    ap.add_argument(
        "--lodo-from",
        type=Path,
        default=None,
        help="leave-one-dataset-out rows of models not on this machine come from this earlier "
        "results JSON (each such row names the run and recipe it came from)",
    )
    ap.add_argument("--output-dir", type=Path, default=common.RESULTS)
    common.add_render_only(ap, NAME)
    args = ap.parse_args(argv)
    if args.render_only:
        common.render_from_json(NAME, render)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    import torch

    from dataprune.models import load_encoder
    from dataprune.rag.pruner import ContextPruner

    machine = common.machine_info(["torch", "transformers"])
    t_all = time.perf_counter()
    pruner = ContextPruner.from_pretrained(args.model)
    previous = ContextPruner.from_pretrained(previous_checkpoint())
    encoder = load_encoder()
    res: dict[str, Any] = {
        "command": " ".join(["python benchmarks/rag_pruning.py", *(argv or sys.argv[1:])]),
        "model": pruner.describe(),
        "training_sets": ((pruner.meta or {}).get("card") or {}).get("training_sets"),
        "model_recipe": pruner_recipe(pruner),
        "previous": previous.describe(),
        "previous_training_sets": ((previous.meta or {}).get("card") or {}).get("training_sets"),
        "previous_recipe": pruner_recipe(previous),
        "thresholds": list(THRESHOLDS),
        "targets": {
            "single_hop": SINGLE_HOP_TARGET,
            "multi_hop": MULTI_HOP_TARGET,
            "readme": README_TARGET,
        },
        "sets": {},
        "multi_hop": {},
    }
    # development first: its passage-weight choice is the one compared on the held-out sets
    dev = dev_multihop_examples(pruner)
    if dev:
        res["dev_multi_hop"] = multihop_report(pruner, dev, n_boot=args.n_boot, seed=args.seed)
    dev_choice = res["dev_multi_hop"]["weight_choice"] if dev else None
    for name in [s for s in args.sets.split(",") if s]:
        examples = eval_examples(name, pruner, max_passages=args.max_passages, seed=args.seed)
        logger.info("%s: %d passages", name, len(examples))
        if EVAL_SETS[name] == "multi":
            res["multi_hop"][name] = multihop_report(
                pruner, examples, n_boot=args.n_boot, seed=args.seed, compare_weight=dev_choice
            )
        else:
            res["sets"][name] = single_hop_report(
                pruner, previous, encoder, examples, n_boot=args.n_boot, seed=args.seed
            )
    if not args.no_lodo:
        import json

        earlier = None
        if args.lodo_from is not None:
            earlier = json.loads(args.lodo_from.read_text(encoding="utf-8"))
            if not earlier.get("lodo"):
                raise SystemExit(f"--lodo-from: {args.lodo_from} has no leave-one-dataset-out rows")
        res["lodo"] = lodo_report(
            pruner,
            targets=res["targets"],
            max_passages=args.max_passages,
            n_boot=args.n_boot,
            seed=args.seed,
            earlier=earlier,
        )
    res["wall_s"] = time.perf_counter() - t_all
    res["torch_threads"] = torch.get_num_threads()
    res["machine"] = common.record_end_load(machine)
    common.publish(NAME, render(res), res, out_dir=args.output_dir)
    logger.info("wrote %s", args.output_dir / f"{NAME}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
