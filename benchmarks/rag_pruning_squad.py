"""RAG context pruning quality on held-out SQuAD v2 articles, against sentence-filter baselines.

Usage (from the repository root)::

    .venv/bin/python benchmarks/rag_pruning_squad.py                 # the shipped default pruner
    .venv/bin/python benchmarks/rag_pruning_squad.py --max-passages 600 --needles 60   # quicker

Evaluation set: the test articles recorded in the pruner's card (never seen in training); every
question of those articles with its own paragraph (answerable and unanswerable SQuAD v2
questions) plus, for each answerable question, the BM25-nearest other paragraph of the same
article that does not contain the answer (what a retriever returns next).

Methods, all scored once and swept over their knob to give recall-vs-compression curves: the
pruner (threshold sweep, ``mean_prob`` and ``vote``), keep-all, lead-k, random-k, BM25 sentence
filter (global score threshold), embedding-similarity filter with all-MiniLM-L6-v2 (global cosine
threshold = LangChain ``EmbeddingsFilter``; per-passage percentile cut-off = LlamaIndex
``SentenceEmbeddingOptimizer``). Baselines are compared at the pruner's compression by linear
interpolation of their curves (paired deltas, same passages, same run).

Needle test: the answer sentence is placed first / middle / last among distractor sentences from
other paragraphs of the same article, in short passages (one window) and long ones (several
windows), and its recall is measured at the default threshold.

Writes ``benchmarks/results/rag_pruning_squad.{json,md}`` and ``rag_pruning_squad_curves.png``;
``--render-only`` re-renders the ``.md`` from the saved JSON (rendering:
:mod:`benchmarks.rag_pruning_squad_render`).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import _common as common  # noqa: E402
from benchmarks.rag_eval_sets import score_examples  # noqa: E402
from benchmarks.rag_pruning_squad_render import markdown, plot_curves  # noqa: E402
from dataprune.rag.comparison import paired_bootstrap as _paired_bootstrap  # noqa: E402
from dataprune.rag.comparison import passage_stats as _stats  # noqa: E402

logger = logging.getLogger("benchmarks.rag_pruning_squad")

#: The pruner's threshold sweep (the pruner's own default threshold is added to it).
PRUNER_THRESHOLDS = (
    0.0001,
    0.0003,
    0.001,
    0.003,
    0.005,
    0.01,
    0.02,
    0.03,
    0.04,
    0.05,
    0.06,
    0.08,
    0.1,
    0.12,
    0.14,
    0.16,
    0.18,
    0.2,
    0.25,
    0.3,
    0.4,
    0.5,
    0.7,
    0.9,
)
#: Besides the default threshold, the comparison at matched compression is made at the swept
#: thresholds whose compression (all passages) comes closest to these.
MATCH_COMPRESSIONS = (0.5, 0.6, 0.7, 0.8)
HEADLINE_COMPRESSION = 0.5
METRICS = ("recall", "precision", "f2", "answer_retention", "empty_rate_answerable")


def _curve(examples, masks_list, params, tc):
    from dataprune.rag.evaluation import pruning_metrics

    return [
        {"param": float(p), **pruning_metrics(examples, m, token_counts=tc)}
        for p, m in zip(params, masks_list)
    ]


def _interp(curve, compression, key):
    pts = sorted((r["compression"], r[key]) for r in curve if r[key] == r[key])
    xs = np.array([p[0] for p in pts])
    ys = np.array([p[1] for p in pts])
    if not len(xs) or compression < xs.min() - 1e-9 or compression > xs.max() + 1e-9:
        return float("nan")
    # average duplicate x values so np.interp sees a function
    ux = np.unique(xs)
    uy = np.array([ys[xs == x].mean() for x in ux])
    return float(np.interp(compression, ux, uy))


def _needles(data, examples, pruner, *, n, rng, threshold):
    """Answer sentence at first / middle / last position among same-article distractors."""
    from dataprune.rag.sentences import split_sentences

    by_article: dict[str, list[str]] = {}
    for art in data:
        sents = [s.text for p in art["paragraphs"] for s in split_sentences(p["context"])]
        by_article[art["title"]] = sents
    answerable = [e for e in examples if e.kind == "answerable" and sum(e.labels) == 1]
    pick = rng.choice(len(answerable), min(n, len(answerable)), replace=False)
    cases = []
    for i in pick:
        ex = answerable[int(i)]
        gold = ex.sentences[int(np.argmax(ex.labels))].text
        low = [a.lower() for a in ex.answers]
        pool = [
            s for s in by_article[ex.article] if s != gold and not any(a in s.lower() for a in low)
        ]
        for length, n_ctx in (("short", 6), ("long", 36)):
            distract = [pool[int(j)] for j in rng.choice(len(pool), n_ctx - 1, replace=False)]
            for pos_name, pos in (("first", 0), ("middle", (n_ctx - 1) // 2), ("last", n_ctx - 1)):
                sents = [*distract[:pos], gold, *distract[pos:]]
                cases.append((ex.query, " ".join(sents), pos, length, pos_name, len(sents)))
    t0 = time.perf_counter()
    res = pruner.prune_batch([c[0] for c in cases], [[c[1]] for c in cases], threshold=threshold)
    secs = time.perf_counter() - t0
    out: dict[str, dict[str, float]] = {}
    for (_q, text, pos, length, pos_name, n_s), r in zip(cases, res):
        r = r[0]
        # the gold sentence is the one at `pos` when the splitter re-finds the same boundaries
        ok = len(r.sentences) == n_s
        key = f"{length}/{pos_name}"
        d = out.setdefault(
            key,
            {"n": 0, "recall": 0.0, "empty": 0.0, "kept_share": 0.0, "windows": 0.0, "resplit": 0},
        )
        d["n"] += 1
        if ok:
            d["recall"] += pos in r.kept_sentences
        else:
            gold = text.split(" ")[0]  # fallback: never used for scoring when boundaries differ
            del gold
            d["resplit"] += 1
        d["empty"] += r.is_empty
        d["kept_share"] += len(r.kept_sentences) / max(1, len(r.sentences))
        d["windows"] += r.n_windows
    for d in out.values():
        scored = d["n"] - d["resplit"]
        d["recall"] = d["recall"] / scored if scored else float("nan")
        for k in ("empty", "kept_share", "windows"):
            d[k] = d[k] / d["n"]
    return out, secs, len(cases)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--data", default=str(common.SHARED_DATA / "squad_v2"))
    ap.add_argument(
        "--max-passages", type=int, default=None, help="seeded subsample of the eval set"
    )
    ap.add_argument(
        "--needles", type=int, default=100, help="answerable questions in the needle test"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--n-boot", type=int, default=1000, help="paired bootstrap resamples for the verdict"
    )
    ap.add_argument("--name", default="rag_pruning_squad")
    common.add_render_only(ap, "<name>")
    args = ap.parse_args(argv)
    if args.render_only:
        common.publish(args.name, markdown(common.read_results(args.name), args.name))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    import torch

    from dataprune.atomic import atomic_path
    from dataprune.rag import baselines as bl
    from dataprune.rag.evaluation import pruning_metrics, sentence_average_precision
    from dataprune.rag.labels import build_examples, load_squad_v2, split_articles
    from dataprune.rag.pruner import ContextPruner
    from dataprune.rag.selection import select_sentences

    t_all = time.perf_counter()
    pruner = ContextPruner.from_pretrained(args.model)
    card = (pruner.meta or {}).get("card") or {}
    data = load_squad_v2(args.data)
    if card:
        test_articles = card["data"]["split"]["test"]
        train_articles = card["data"]["split"]["train"]
    else:
        split = split_articles([a["title"] for a in data], random_state=args.seed)
        test_articles, train_articles = list(split.test), list(split.train)
    assert not set(test_articles) & set(train_articles)
    examples = build_examples(
        data,
        test_articles,
        negatives_per_question=1,
        negative_kinds=("hard_negative",),
        random_state=args.seed,
    )
    rng = np.random.default_rng(args.seed)
    if args.max_passages and len(examples) > args.max_passages:
        idx = sorted(rng.choice(len(examples), args.max_passages, replace=False))
        examples = [examples[i] for i in idx]
    kinds = {k: sum(e.kind == k for e in examples) for k in sorted({e.kind for e in examples})}
    logger.info("eval set: %d passages %s from %s", len(examples), kinds, test_articles)

    # --- pruner: one scoring pass, threshold sweep afterwards
    scores, t_score = score_examples(pruner, examples)
    tc = [s.sentence_n_tokens for s in scores]
    curves: dict[str, list[dict]] = {}
    default = pruner.default_threshold
    sweep = sorted({*PRUNER_THRESHOLDS, default})
    for agg in ("mean_prob", "vote"):
        masks = [[select_sentences(s, threshold=t, aggregation=agg) for s in scores] for t in sweep]
        curves[f"pruner/{agg}"] = _curve(examples, masks, sweep, tc)
    base_curve = curves["pruner/mean_prob"]
    match_at = sorted(
        {default}
        | {
            min(base_curve, key=lambda r: abs(r["compression"] - c))["param"]
            for c in MATCH_COMPRESSIONS
        }
    )
    pruner_stats = {
        t: _stats(examples, [select_sentences(s, threshold=t) for s in scores]) for t in match_at
    }
    pruner_ap = sentence_average_precision(examples, [s.sentence_scores for s in scores])
    passage_auc = pruning_metrics(
        examples,
        [np.ones(len(e.labels), bool) for e in examples],
        passage_scores=[s.passage_score for s in scores],
    )["passage_auc"]

    # --- baselines
    n_sents = [len(e.sentences) for e in examples]
    sent_texts = [[s.text for s in e.sentences] for e in examples]
    queries = [e.query for e in examples]
    ks = list(range(0, 11))
    curves["keep-all"] = _curve(examples, [[np.ones(n, bool) for n in n_sents]], [1], tc)
    curves["lead-k"] = _curve(
        examples, [bl.keep_top_k(bl.lead_scores(n_sents), k) for k in ks], ks, tc
    )
    rnd = bl.random_scores(n_sents, random_state=args.seed)
    curves["random-k"] = _curve(examples, [bl.keep_top_k(rnd, k) for k in ks], ks, tc)
    t0 = time.perf_counter()
    bm = bl.bm25_scores(queries, sent_texts)
    t_bm25 = time.perf_counter() - t0
    t0 = time.perf_counter()
    from dataprune.models import load_encoder

    encoder = load_encoder()
    emb = bl.embedding_scores(queries, sent_texts, encoder=encoder)
    t_emb = time.perf_counter() - t0
    qs = np.linspace(0, 1, 41)
    compared: dict[str, list] = {}  # the filters the verdict is about: their masks per parameter
    for name, sc in (("bm25-threshold", bm), ("embedding-threshold", emb)):
        flat = np.concatenate(sc)
        ths = np.unique(np.quantile(flat, qs)) - 1e-9
        compared[name] = [bl.keep_global_threshold(sc, t) for t in ths]
        curves[name] = _curve(examples, compared[name], ths, tc)
    fracs = np.linspace(0, 1, 11)
    compared["embedding-percentile"] = [bl.keep_top_fraction(emb, f) for f in fracs]
    curves["embedding-percentile"] = _curve(examples, compared["embedding-percentile"], fracs, tc)
    baseline_names = [
        "lead-k",
        "random-k",
        "bm25-threshold",
        "embedding-threshold",
        "embedding-percentile",
    ]

    # --- matched compression
    matched = []
    for t in match_at:
        row = next(r for r in base_curve if abs(r["param"] - t) < 1e-9)
        entry = {
            "threshold": t,
            "compression": row["compression"],
            "pruner": {k: row[k] for k in METRICS},
            "baselines": {},
        }
        for b in baseline_names:
            entry["baselines"][b] = {k: _interp(curves[b], row["compression"], k) for k in METRICS}
        matched.append(entry)
    headline = {
        name: {k: _interp(curves[name], HEADLINE_COMPRESSION, k) for k in METRICS}
        for name in ["pruner/mean_prob", "pruner/vote", *baseline_names]
    }

    # --- needles
    needles, t_needles, n_needle = _needles(
        data, examples, pruner, n=args.needles, rng=rng, threshold=default
    )

    at = next(r for r in base_curve if r["param"] == default)
    targets = {
        "default_threshold": default,
        "recall_at_default": at["recall"],
        "compression_at_default": at["compression"],
        "recall_ge_0.9_at_compression_ge_0.5": bool(
            at["recall"] >= 0.9 and at["compression"] >= 0.5
        ),
        "best_recall_with_compression_ge_0.5": max(
            (r["recall"] for r in base_curve if r["compression"] >= 0.5), default=float("nan")
        ),
    }
    boot = _paired_bootstrap(
        pruner_stats,
        {name: [_stats(examples, m) for m in masks] for name, masks in compared.items()},
        n_boot=args.n_boot,
        seed=args.seed,
    )
    for m in matched:
        m["paired_ci95"] = boot[m["threshold"]]
    for key in ("recall", "f2"):
        cis = [ci[key] for m in matched for ci in m["paired_ci95"].values()]
        # beaten = the whole 95% interval of the difference above 0; a baseline that cannot be
        # interpolated at the pruner's compression (NaN) is not beaten, it is not comparable
        targets[f"beats_bm25_and_embedding_{key}_at_all_matched_points"] = all(
            ci["n_nan"] == 0 and ci["lo"] > 0 for ci in cis
        )
        targets[f"n_comparisons_{key}"] = len(cis)
        targets[f"n_beaten_{key}"] = sum(ci["n_nan"] == 0 and ci["lo"] > 0 for ci in cis)
        targets[f"n_not_comparable_{key}"] = sum(ci["n_nan"] > 0 for ci in cis)
    targets["n_bootstrap"] = args.n_boot
    result = {
        "command": "python benchmarks/rag_pruning_squad.py"
        + (" " + " ".join(argv or sys.argv[1:])).rstrip(),
        "model": pruner.describe(),
        "test_articles": test_articles,
        "n_passages": len(examples),
        "passages_by_kind": kinds,
        "pruner_sentence_ap": pruner_ap,
        "pruner_passage_auc": passage_auc,
        "curves": curves,
        "matched": matched,
        "at_compression_0.5": headline,
        "needles": needles,
        "targets": targets,
        "timing_s": {
            "pruner_scoring": round(t_score, 1),
            "pruner_passages_per_s": round(len(examples) / t_score, 2),
            "bm25_scoring": round(t_bm25, 2),
            "embedding_scoring": round(t_emb, 1),
            "needles": round(t_needles, 1),
            "needle_passages": n_needle,
            "total": round(time.perf_counter() - t_all, 1),
        },
        "torch_threads": torch.get_num_threads(),
        "machine": common.machine_info(["torch", "transformers"]),
    }
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    plot_curves(curves, out_dir / f"{args.name}_curves.png", atomic_path)
    common.publish(args.name, markdown(result, args.name), result)
    logger.info("wrote %s", out_dir / f"{args.name}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
