"""Demo step: compress retrieved RAG contexts with the shipped Provence-style pruner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TITLE = "Compress retrieved RAG contexts (Provence-style pruner shipped with dataprune)"
N_QUESTIONS = 8
TOP_K = 3

# Used when ../shared/data/squad_v2 is not beside the working directory (installed package).
_BUILTIN = [
    {
        "title": "Warsaw",
        "paragraphs": [
            "Warsaw is the capital and largest city of Poland. The metropolis stands on the River "
            "Vistula in east-central Poland. Its population is officially estimated at 1.8 million "
            "residents. The city is the 9th most-populous capital city in the European Union.",
            "The first fortified settlements on the site of today's Warsaw were located in "
            "Bródno (9th/10th century) and Jazdów (12th/13th century). After Jazdów was raided by "
            "nearby clans and dukes, a new similar settlement was established on the site of a "
            "small fishing village called Warszowa. In 1596 King Sigismund III Vasa moved the "
            "capital from Kraków to Warsaw.",
            "The University of Warsaw was established in 1816, when the partitions of Poland "
            "separated Warsaw from the oldest and most influential Polish academic center, in "
            "Kraków. Warsaw University of Technology is the second academic school of technology "
            "in the country.",
            "Warsaw's mixture of architectural styles reflects the turbulent history of the city "
            "and country. During the Second World War, Warsaw was razed to the ground by bombing "
            "raids and planned destruction. After liberation, rebuilding began as in other parts "
            "of the country.",
        ],
        "questions": [
            ("When was the University of Warsaw established?", "1816"),
            ("Who moved the capital of Poland to Warsaw in 1596?", "Sigismund III Vasa"),
            ("On which river does Warsaw stand?", "Vistula"),
            ("What happened to Warsaw during the Second World War?", "razed to the ground"),
        ],
    }
]


def _squad_cases(random_state: int) -> tuple[list[dict[str, Any]], str] | None:
    path = Path.cwd().parent / "shared" / "data" / "squad_v2"
    if not path.is_dir():
        return None
    import numpy as np

    from dataprune.rag.labels import load_squad_v2
    from dataprune.rag.pruner import default_checkpoint_path

    card_path = default_checkpoint_path() / "card.json"
    held_out = None
    if card_path.is_file():
        import json

        held_out = json.loads(card_path.read_text())["data"]["split"]["test"]
    data = load_squad_v2(path)
    art = next((a for a in data if held_out is None or a["title"] in held_out), data[0])
    rng = np.random.default_rng(random_state)
    qas = [
        (qa["question"], qa["answers"][0]["text"])
        for p in art["paragraphs"]
        for qa in p["qas"]
        if not qa.get("is_impossible") and qa.get("answers")
    ]
    pick = rng.choice(len(qas), min(N_QUESTIONS, len(qas)), replace=False)
    case = {
        "title": art["title"],
        "paragraphs": [p["context"] for p in art["paragraphs"]],
        "questions": [qas[int(i)] for i in pick],
    }
    return [case], f"SQuAD v2 held-out article {art['title']!r}"


def run(ctx: Any) -> list[str]:
    import time

    from rank_bm25 import BM25Okapi

    from dataprune.io import write_records
    from dataprune.rag.pruner import ContextPruner

    found = _squad_cases(ctx.random_state)
    cases, source = found if found else (_BUILTIN, "built-in Warsaw passages")
    t0 = time.perf_counter()
    pruner = ContextPruner.from_pretrained("default")
    t_load = time.perf_counter() - t0
    queries, retrieved, answers = [], [], []
    for case in cases:
        paras = case["paragraphs"]
        bm25 = BM25Okapi([p.lower().split() for p in paras])
        for q, a in case["questions"]:
            scores = bm25.get_scores(q.lower().split())
            top = sorted(range(len(paras)), key=lambda j: -scores[j])
            queries.append(q)
            retrieved.append([paras[j] for j in top[:TOP_K]])
            answers.append(a)
    t0 = time.perf_counter()
    results = pruner.prune_batch(queries, retrieved)  # the checkpoint's default threshold
    t_prune = time.perf_counter() - t0
    n_chars = sum(len(p) for ps in retrieved for p in ps)
    kept_chars = sum(len(r.text) for rs in results for r in rs)
    in_context = sum(any(a in p for p in ps) for a, ps in zip(answers, retrieved))
    kept_answer = sum(any(a in r.text for r in rs) for a, rs in zip(answers, results))
    emptied = sum(r.is_empty for rs in results for r in rs)
    records = []
    for q, a, ps, rs in zip(queries, answers, retrieved, results):
        for rank, (p, r) in enumerate(zip(ps, rs)):
            records.append(
                {"query": q, "answer": a, "bm25_rank": rank, "passage": p, **r.to_dict()}
            )
    out = write_records(records, ctx.output_dir / "rag_pruned_contexts.jsonl")
    lines = [
        f"{len(queries)} questions from {source}; BM25 top-{TOP_K} paragraphs each "
        f"({sum(len(ps) for ps in retrieved)} passages, {n_chars} characters)",
        f"pruner loaded in {t_load:.1f} s ({pruner.describe()['backbone'].get('name', '?')} base, "
        f"{pruner.precision_}); pruned in {t_prune:.1f} s",
        f"context kept: {kept_chars}/{n_chars} characters ({1 - kept_chars / max(1, n_chars):.0%} "
        f"removed); {emptied} passages pruned to nothing",
        f"answer string still in the pruned context: {kept_answer}/{in_context} questions whose "
        "retrieved context contained it",
    ]
    q0, r0 = queries[0], results[0][0]
    lines.append(
        f"e.g. {q0!r} -> kept {len(r0.kept_sentences)}/{len(r0.sentences)} sentences "
        f"of the top passage (score {r0.passage_score:.2f}): {r0.text[:120]!r}"
    )
    lines.append(f"details -> {out}")
    lines += _does_it_help(ctx, pruner, queries, retrieved, answers)
    ctx.state["rag_pruner"] = pruner
    return lines


def _does_it_help(ctx: Any, pruner: Any, queries, retrieved, answers) -> list[str]:
    """The same passages as labelled records (the answer string as evidence), measured the way
    ``dataprune rag evaluate`` measures a user's own: evidence kept against BM25 and embedding
    filters at the same compression."""
    from dataprune.io import write_records
    from dataprune.rag.labelled import examples_from_records
    from dataprune.rag.pruner_evaluation import evaluate_pruner, evaluation_lines

    rows = [
        {"query": q, "text": p, "evidence": [a] if a.lower() in p.lower() else []}
        for q, a, ps in zip(queries, answers, retrieved)
        for p in ps
    ]
    if not any(r["evidence"] for r in rows):
        return ["no retrieved passage holds an answer string: nothing to evaluate"]
    path = write_records(rows, ctx.output_dir / "rag_labelled.jsonl")
    examples = examples_from_records(
        [r["query"] for r in rows], [r["text"] for r in rows], [r["evidence"] for r in rows]
    )
    report = evaluate_pruner(
        pruner, examples, random_state=ctx.random_state, show_progress_bar=False
    )
    return [f"does it help here? `dataprune rag evaluate -i {path}`:"] + [
        f"  {line}" for line in evaluation_lines(report)
    ]
