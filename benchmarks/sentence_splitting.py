"""Sentence splitting: ``dataprune.rag.sentences`` vs pysbd, blingfire and syntok on gold boundaries.

Run:  .venv/bin/python benchmarks/sentence_splitting.py
      DATAPRUNE_SPLITTERS_PATH=/tmp/splitters .venv/bin/python benchmarks/sentence_splitting.py
      .venv/bin/python benchmarks/sentence_splitting.py --render-only   # md from the saved JSON

The RAG pruner splits every passage with :func:`dataprune.rag.sentences.split_sentences`
(``rag/windows.py``: ``[split_sentences(p) for p in passages]``). This script scores that splitter
and the libraries that import (pysbd, blingfire, syntok; a missing one is reported as "not
installed") on real sentence boundaries from ``../shared/data``:

* HotpotQA (train sample): each context paragraph is a list of gold sentences; the paragraph text is
  their plain concatenation (later sentences carry their own leading space). Paragraphs that occur
  in several questions are scored once.
* WikiQA (dev + test, the files that keep DocumentID): the candidate sentences of a document in
  SentenceID order, stripped and joined with one space. Its text is tokenised (``word , word .``).
  The train file is not used: its uploader dropped DocumentID.
* SQuAD v2 (dev half): no gold sentences; an answer span (``answer_start`` + length of the answer
  text, deduplicated per paragraph) is intact when no predicted sentence boundary falls strictly
  inside it. A seeded random sample of paragraphs (all of them when there are fewer).

A boundary is the character offset where a sentence starts, after skipping whitespace, excluding
the start of the text. Boundary precision / recall / F1 are micro-averaged over paragraphs (summed
true / false positives and misses); exact-sentence accuracy is the share of gold sentences whose
whitespace-stripped span is also a predicted sentence's stripped span. 95% intervals: percentile
bootstrap over paragraphs (seeded), paired across splitters for the differences.

Speed: each splitter is called one text at a time on all scored texts (HotpotQA + WikiQA + the
SQuAD sample), after a warm-up, in interleaved rounds; the median round is reported, as the
sentences the splitter returned per second and as its time relative to dataprune's. Each
splitter's call includes turning its output into character spans (what the pruner needs).

Libraries are imported normally. When the environment variable ``DATAPRUNE_SPLITTERS_PATH`` is set
(e.g. to a ``pip install --target`` folder), that folder is appended to ``sys.path`` first (at
the end, so the repository's own packages are never shadowed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks import _common as common  # noqa: E402
from benchmarks.sentence_splitting_render import TIE_POINTS, render, verdict  # noqa: E402

NAME = "sentence_splitting"
SPLITTERS = ("dataprune", "pysbd", "blingfire", "syntok")

Span = tuple[int, int]


# ----------------------------------------------------------------------------------- splitters
def _add_splitters_path() -> str | None:
    path = os.environ.get("DATAPRUNE_SPLITTERS_PATH")
    if path and path not in sys.path:
        sys.path.append(path)
    return path or None


def _dist_version(dist: str, module) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return str(getattr(module, "__version__", "?"))


def _align(text: str, pieces) -> tuple[list[Span], int]:
    """Spans of ``pieces`` (sentence strings, in order) in ``text``; also the count not found."""
    spans: list[Span] = []
    cur, missing = 0, 0
    for piece in pieces:
        p = piece.strip()
        if not p:
            continue
        i = text.find(p, cur)
        if i < 0:
            missing += 1
            continue
        spans.append((i, i + len(p)))
        cur = i + len(p)
    return spans, missing


def load_splitters() -> tuple[dict[str, Callable[[str], list[Span]]], dict[str, str], dict]:
    """``{name: text -> spans}`` for the splitters that import, their versions, and the stats
    of the adapters (pieces that could not be located in the text)."""
    fns: dict[str, Callable[[str], list[Span]]] = {}
    versions: dict[str, str] = {}
    adapter = {"unaligned_pieces": defaultdict(int)}

    import dataprune
    from dataprune.rag.sentences import split_sentences

    fns["dataprune"] = lambda t: [(s.start, s.end) for s in split_sentences(t)]
    versions["dataprune"] = str(getattr(dataprune, "__version__", "?"))

    try:
        import pysbd

        seg = pysbd.Segmenter(language="en", clean=False)

        def _pysbd(t: str) -> list[Span]:
            spans, miss = _align(t, seg.segment(t))
            adapter["unaligned_pieces"]["pysbd"] += miss
            return spans

        fns["pysbd"] = _pysbd
        versions["pysbd"] = _dist_version("pysbd", pysbd)
    except Exception:  # not installed (or broken): reported, not fatal
        versions["pysbd"] = "not installed"

    try:
        import blingfire

        def _blingfire(t: str) -> list[Span]:
            return [tuple(o) for o in blingfire.text_to_sentences_and_offsets(t)[1]]

        fns["blingfire"] = _blingfire
        versions["blingfire"] = _dist_version("blingfire", blingfire)
    except Exception:
        versions["blingfire"] = "not installed"

    try:
        import syntok
        import syntok.segmenter as syntok_segmenter

        def _syntok(t: str) -> list[Span]:
            return [
                (s[0].offset, s[-1].offset + len(s[-1].value))
                for para in syntok_segmenter.analyze(t)
                for s in para
                if len(s)
            ]

        fns["syntok"] = _syntok
        versions["syntok"] = _dist_version("syntok", syntok)
    except Exception:
        versions["syntok"] = "not installed"
    return fns, versions, adapter


# ---------------------------------------------------------------------------------------- data
def _strip_span(text: str, s: int, e: int) -> Span | None:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return (s, e) if e > s else None


def hotpotqa(path: Path) -> list[dict]:
    """Distinct paragraphs ``{"text", "gold": [stripped spans]}`` (concatenated gold sentences)."""
    seen: set[str] = set()
    out = []
    for rec in json.loads(path.read_text(encoding="utf-8")):
        for _title, sents in rec["context"]:
            text = "".join(sents)
            if text in seen or not text.strip():
                continue
            seen.add(text)
            gold, pos = [], 0
            for s in sents:
                sp = _strip_span(text, pos, pos + len(s))
                if sp:
                    gold.append(sp)
                pos += len(s)
            out.append({"text": text, "gold": gold, "n_given": len(sents)})
    return out


def wikiqa(folder: Path) -> list[dict]:
    """Documents of the dev and test files (DocumentID, SentenceID order), sentences joined by a
    space."""
    docs: dict[str, dict[int, str]] = defaultdict(dict)
    for name in ("WikiQA-dev.tsv", "WikiQA-test.tsv"):
        with open(folder / name, encoding="utf-8") as fh:
            next(fh)
            for line in fh:
                f = line.rstrip("\n").split("\t")
                if len(f) != 7:
                    continue
                docs[f[2]][int(f[4].rsplit("-", 1)[1])] = f[5].strip()
    out = []
    for did in sorted(docs, key=lambda d: int(d.lstrip("D"))):
        sents = [s for _, s in sorted(docs[did].items()) if s]
        if not sents:
            continue
        text = " ".join(sents)
        gold, pos = [], 0
        for s in sents:
            gold.append((pos, pos + len(s)))
            pos += len(s) + 1
        out.append({"text": text, "gold": gold})
    return out


def squad(path: Path, n: int, seed: int) -> tuple[list[dict], int, int]:
    """A seeded sample of paragraphs ``{"text", "answers": [(start, end)]}``; also the number of
    paragraphs available and of answers whose offsets did not match the context (skipped)."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    paras = [p for art in data for p in art["paragraphs"]]
    idx = np.random.default_rng(seed).permutation(len(paras))[: min(n, len(paras))]
    out, bad = [], 0
    for i in sorted(idx.tolist()):
        p = paras[i]
        ctx = p["context"]
        spans = set()
        for qa in p["qas"]:
            for a in qa.get("answers", []):
                s, t = a["answer_start"], a["text"]
                if ctx[s : s + len(t)] != t:
                    bad += 1
                    continue
                spans.add((s, s + len(t)))
        out.append({"text": ctx, "answers": sorted(spans)})
    return out, len(paras), bad


# ------------------------------------------------------------------------------------- scoring
def _boundaries(text: str, spans) -> tuple[set[int], set[Span]]:
    """Boundaries (stripped sentence starts after the first non-space character) and stripped
    spans of a list of spans."""
    first = len(text) - len(text.lstrip())
    stripped = {sp for s, e in spans if (sp := _strip_span(text, s, e))}
    return {s for s, _ in stripped if s > first}, stripped


def score_gold(items: list[dict], preds: list[list[Span]]) -> dict[str, np.ndarray]:
    """Per-paragraph counts: boundary tp / fp / fn, gold sentences and exact matches."""
    cols = {k: [] for k in ("tp", "fp", "fn", "gold", "exact", "pred")}
    for it, spans in zip(items, preds):
        gb, gs = _boundaries(it["text"], it["gold"])
        pb, ps = _boundaries(it["text"], spans)
        cols["tp"].append(len(gb & pb))
        cols["fp"].append(len(pb - gb))
        cols["fn"].append(len(gb - pb))
        cols["gold"].append(len(gs))
        cols["exact"].append(len(gs & ps))
        cols["pred"].append(len(ps))
    return {k: np.asarray(v, dtype=np.int64) for k, v in cols.items()}


def score_squad(items: list[dict], preds: list[list[Span]]) -> dict[str, np.ndarray]:
    """Per-paragraph counts: answer spans, intact ones (no predicted boundary strictly inside),
    predicted sentences."""
    cols = {k: [] for k in ("answers", "intact", "pred")}
    for it, spans in zip(items, preds):
        pb, ps = _boundaries(it["text"], spans)
        b = np.array(sorted(pb), dtype=np.int64)
        intact = 0
        for s, e in it["answers"]:
            lo = np.searchsorted(b, s, side="right")  # first boundary > s
            intact += not (lo < len(b) and b[lo] < e)
        cols["answers"].append(len(it["answers"]))
        cols["intact"].append(intact)
        cols["pred"].append(len(ps))
    return {k: np.asarray(v, dtype=np.int64) for k, v in cols.items()}


def _f1(tp, fp, fn):
    p = tp / np.maximum(tp + fp, 1)
    r = tp / np.maximum(tp + fn, 1)
    return np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0), p, r


def summarise_gold(counts: dict[str, dict[str, np.ndarray]], boot: np.ndarray) -> dict:
    """Point estimates, bootstrap intervals (``boot``: resampled paragraph indices, B x n) and
    paired differences against dataprune."""
    out: dict[str, dict] = {}
    f1_boot = {}
    for name, c in counts.items():
        tp, fp, fn = c["tp"].sum(), c["fp"].sum(), c["fn"].sum()
        f1, p, r = (float(x) for x in _f1(tp, fp, fn))
        bf1 = _f1(c["tp"][boot].sum(1), c["fp"][boot].sum(1), c["fn"][boot].sum(1))[0]
        bacc = c["exact"][boot].sum(1) / c["gold"][boot].sum(1)
        f1_boot[name] = bf1
        out[name] = {
            "precision": p,
            "recall": r,
            "f1": f1,
            "f1_ci95": [float(np.percentile(bf1, 2.5)), float(np.percentile(bf1, 97.5))],
            "exact_accuracy": float(c["exact"].sum() / c["gold"].sum()),
            "exact_accuracy_ci95": [
                float(np.percentile(bacc, 2.5)),
                float(np.percentile(bacc, 97.5)),
            ],
            "tp": int(tp),
            "fp": int(fp),
            "fn": int(fn),
            "gold_sentences": int(c["gold"].sum()),
            "predicted_sentences": int(c["pred"].sum()),
            "exact_sentences": int(c["exact"].sum()),
        }
    for name in out:
        d = f1_boot[name] - f1_boot["dataprune"]
        out[name]["f1_minus_dataprune"] = out[name]["f1"] - out["dataprune"]["f1"]
        out[name]["f1_minus_dataprune_ci95"] = [
            float(np.percentile(d, 2.5)),
            float(np.percentile(d, 97.5)),
        ]
    return out


def summarise_squad(counts: dict[str, dict[str, np.ndarray]], boot: np.ndarray) -> dict:
    out = {}
    for name, c in counts.items():
        b = c["intact"][boot].sum(1) / c["answers"][boot].sum(1)
        out[name] = {
            "answers": int(c["answers"].sum()),
            "intact": int(c["intact"].sum()),
            "intact_share": float(c["intact"].sum() / c["answers"].sum()),
            "intact_share_ci95": [float(np.percentile(b, 2.5)), float(np.percentile(b, 97.5))],
            "mean_sentences_per_paragraph": float(c["pred"].mean()),
        }
    return out


def time_splitters(fns, texts: list[str], rounds: int) -> dict:
    """Median seconds per pass over ``texts`` (one call per text), interleaved rounds."""
    for fn in fns.values():  # warm-up (imports, compiled regexes, model load)
        for t in texts[:50]:
            fn(t)
    secs: dict[str, list[float]] = {n: [] for n in fns}
    n_sent = {n: sum(len(fn(t)) for t in texts) for n, fn in fns.items()}
    for rnd in range(rounds):
        order = list(fns) if rnd % 2 == 0 else list(reversed(fns))
        for name in order:
            fn = fns[name]
            t0 = time.perf_counter()
            for t in texts:
                fn(t)
            secs[name].append(time.perf_counter() - t0)
    out = {}
    for name in fns:
        med = float(np.median(secs[name]))
        out[name] = {
            "seconds_per_pass": secs[name],
            "median_seconds": med,
            "sentences_returned": n_sent[name],
            "sentences_per_s": n_sent[name] / med,
            "texts_per_s": len(texts) / med,
            "kchars_per_s": sum(map(len, texts)) / med / 1000,
        }
    base = out["dataprune"]["median_seconds"]
    for name in out:
        out[name]["speed_vs_dataprune"] = base / out[name]["median_seconds"]
    return out


# ---------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--squad-paragraphs", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    common.add_render_only(ap, NAME)
    args = ap.parse_args(argv)
    if args.render_only:
        print(common.render_from_json(NAME, render))
        return 0

    machine = common.machine_info()
    extra_path = _add_splitters_path()
    fns, versions, adapter = load_splitters()
    machine["versions"].update(versions)

    data = common.SHARED_DATA
    for p in ("hotpotqa_train/qa_train.json", "wikiqa/WikiQA-test.tsv", "squad_v2/dev-v2.0.json"):
        common.need_data(data / p)
    hp = hotpotqa(data / "hotpotqa_train" / "qa_train.json")
    hp_raw = sum(it["n_given"] for it in hp)
    wq = wikiqa(data / "wikiqa")
    sq, sq_avail, sq_bad = squad(
        data / "squad_v2" / "dev-v2.0.json", args.squad_paragraphs, args.seed
    )
    print(f"HotpotQA {len(hp)} paragraphs, WikiQA {len(wq)} docs, SQuAD {len(sq)} paragraphs")

    rng = np.random.default_rng(args.seed)
    boot = {k: rng.integers(0, n, size=(args.bootstrap, n)) for k, n in [
        ("hotpotqa", len(hp)), ("wikiqa", len(wq)), ("squad", len(sq))
    ]}  # fmt: skip

    counts: dict[str, dict] = {"hotpotqa": {}, "wikiqa": {}, "squad": {}}
    for name, fn in fns.items():
        counts["hotpotqa"][name] = score_gold(hp, [fn(it["text"]) for it in hp])
        counts["wikiqa"][name] = score_gold(wq, [fn(it["text"]) for it in wq])
        counts["squad"][name] = score_squad(sq, [fn(it["text"]) for it in sq])
        print(f"scored {name}")
    unaligned = dict(adapter["unaligned_pieces"])

    texts = [it["text"] for it in (*hp, *wq, *sq)]
    speed = time_splitters(fns, texts, args.rounds)

    cmd = "python benchmarks/sentence_splitting.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:])
    )
    if extra_path:
        cmd = f"DATAPRUNE_SPLITTERS_PATH={extra_path} {cmd}"
    result = {
        "command": cmd,
        "seed": args.seed,
        "bootstrap": args.bootstrap,
        "tie_points": TIE_POINTS,
        "versions": {n: versions.get(n, "not installed") for n in SPLITTERS},
        "hotpotqa": {
            "n_paragraphs": len(hp),
            "n_sentences_as_given": hp_raw,
            "scores": summarise_gold(counts["hotpotqa"], boot["hotpotqa"]),
        },
        "wikiqa": {
            "n_documents": len(wq),
            "scores": summarise_gold(counts["wikiqa"], boot["wikiqa"]),
        },
        "squad": {
            "n_paragraphs": len(sq),
            "n_available": sq_avail,
            "answers_offset_mismatch_skipped": sq_bad,
            "scores": summarise_squad(counts["squad"], boot["squad"]),
        },
        "speed": {"n_texts": len(texts), "rounds": args.rounds, "results": speed},
        "unaligned_pieces": unaligned,
        "machine": machine,
        "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    ok, winners = verdict(result)
    result["verdict"] = {"library_ties_or_beats_on_both": ok, "libraries": winners}
    md = render(result)
    common.publish(NAME, md, result)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
