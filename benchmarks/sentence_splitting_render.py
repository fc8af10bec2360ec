"""The markdown section of ``benchmarks/sentence_splitting.py`` and its verdict, every sentence
computed from the results JSON (:func:`render`)."""

from __future__ import annotations

from benchmarks import _common as common

TIE_POINTS = 0.5  # "ties": boundary F1 within this many points (of 100)


def _pts(x: float) -> str:
    return f"{100 * x:.1f}"


def _ci(lo_hi) -> str:
    return f"[{_pts(lo_hi[0])}, {_pts(lo_hi[1])}]"


def _compare(label: str, res: dict, key: str, unit: str = "points") -> str:
    """``"on X the best ... is A (name); dataprune's is B, C points lower"``."""
    best = max(res, key=lambda n: res[n][key])
    dp = res["dataprune"][key]
    if best == "dataprune":
        others = [n for n in res if n != "dataprune"]
        if not others:
            return f"{label}: dataprune {_pts(dp)} (no library to compare with)."
        second = max(others, key=lambda n: res[n][key])
        gap = 100 * (dp - res[second][key])
        return (
            f"{label}: the best is dataprune's {_pts(dp)}; the next best is "
            f"{_pts(res[second][key])} ({second}), {_gap(gap, unit)}."
        )
    gap = 100 * (res[best][key] - dp)
    return (
        f"{label}: the best is {_pts(res[best][key])} ({best}); dataprune's is {_pts(dp)}, "
        f"{_gap(gap, unit)}."
    )


def _gap(gap: float, unit: str) -> str:
    """``"0.27 points lower"`` (two decimals, so a gap between one-decimal figures shows)."""
    return "the same" if abs(gap) < 0.005 else f"{abs(gap):.2f} {unit} lower"


def _signed(x: float) -> str:
    return f"{100 * x + 0.0:+.2f}"


def verdict(r: dict) -> tuple[bool, list[str]]:
    """Whether one library ties (F1 within TIE_POINTS) or beats dataprune on both gold sets."""
    winners = []
    for name in r["hotpotqa"]["scores"]:
        if name == "dataprune":
            continue
        if all(
            100 * r[ds]["scores"][name]["f1_minus_dataprune"] >= -TIE_POINTS
            for ds in ("hotpotqa", "wikiqa")
        ):
            winners.append(name)
    return bool(winners), winners


def render(r: dict) -> str:
    hp, wq, sq, sp = r["hotpotqa"], r["wikiqa"], r["squad"], r["speed"]
    names = list(hp["scores"])
    missing = [n for n, v in r["versions"].items() if v == "not installed"]
    lines = [
        "## Sentence splitting: rag/sentences.py vs pysbd / blingfire / syntok "
        "(`benchmarks/sentence_splitting.py`)",
        "",
        f"Command: `{r['command']}`. Gold boundaries: {hp['n_paragraphs']} distinct HotpotQA "
        f"context paragraphs ({hp['scores']['dataprune']['gold_sentences']} non-blank gold "
        f"sentences of {hp.get('n_sentences_as_given', '?')}, concatenated as given) and {wq['n_documents']} WikiQA dev+test documents "
        f"({wq['scores']['dataprune']['gold_sentences']} summary sentences joined by a space; "
        "tokenised text such as `word , word .`). A boundary = offset where a sentence starts "
        "(whitespace skipped), excluding the text start; F1 micro over paragraphs, "
        f"[95% bootstrap interval] over paragraphs ({r['bootstrap']} resamples, seed "
        f"{r['seed']}). Exact = share of gold sentences reproduced exactly (stripped). SQuAD v2: "
        f"{sq['n_paragraphs']} of {sq['n_available']} dev paragraphs (seeded sample), "
        f"{sq['scores']['dataprune']['answers']} distinct answer spans; intact = no predicted "
        "boundary inside the span. Speed: one text per call over all "
        f"{sp['n_texts']} texts, median of {sp['rounds']} interleaved rounds.",
        "",
        "| splitter | version | HotpotQA F1 [95% CI] | HotpotQA P / R | HotpotQA exact | "
        "WikiQA F1 [95% CI] | WikiQA P / R | WikiQA exact | SQuAD answers intact | "
        "SQuAD sentences / paragraph | sentences/s | speed vs dataprune |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n in names:
        h, w, s, t = hp["scores"][n], wq["scores"][n], sq["scores"][n], sp["results"][n]
        lines.append(
            f"| {n} | {r['versions'][n]} | {_pts(h['f1'])} {_ci(h['f1_ci95'])} | "
            f"{_pts(h['precision'])} / {_pts(h['recall'])} | {_pts(h['exact_accuracy'])} | "
            f"{_pts(w['f1'])} {_ci(w['f1_ci95'])} | {_pts(w['precision'])} / "
            f"{_pts(w['recall'])} | {_pts(w['exact_accuracy'])} | {_pts(s['intact_share'])} "
            f"{_ci(s['intact_share_ci95'])} | {s['mean_sentences_per_paragraph']:.2f} | "
            f"{t['sentences_per_s']:,.0f} | {t['speed_vs_dataprune']:.2f}x |"
        )
    for n in missing:
        lines.append(f"| {n} | not installed | " + " | ".join(["-"] * 10) + " |")
    lines.append("")
    lines.append(
        "F1, precision (P), recall (R), exact and intact are percentages; the gold reference "
        "for SQuAD's sentence count is unknown (no gold sentences)."
    )
    lines.append("")
    for label, res in (("HotpotQA", hp), ("WikiQA", wq)):
        s = _compare(f"On {label} boundary F1", res["scores"], "f1")
        diffs = [
            f"{n} {_signed(v['f1_minus_dataprune'])} "
            f"[{_signed(v['f1_minus_dataprune_ci95'][0])}, "
            f"{_signed(v['f1_minus_dataprune_ci95'][1])}]"
            for n, v in res["scores"].items()
            if n != "dataprune"
        ]
        if diffs:
            s += " Paired F1 difference vs dataprune (points, 95% CI): " + "; ".join(diffs) + "."
        lines.append(f"- {s}")
    lines.append(
        "- "
        + _compare("On HotpotQA exact-sentence accuracy", hp["scores"], "exact_accuracy")
        + " "
        + _compare("On WikiQA", wq["scores"], "exact_accuracy")
    )
    lines.append(
        "- " + _compare("SQuAD answers kept in one sentence", sq["scores"], "intact_share")
    )
    spd = sp["results"]
    ranked = sorted(spd, key=lambda n: -spd[n]["texts_per_s"])
    lines.append(
        "- Speed (texts per second, one text per call), fastest first: "
        + "; ".join(
            f"{n} {spd[n]['texts_per_s']:,.0f}/s ({spd[n]['speed_vs_dataprune']:.2f}x dataprune's)"
            for n in ranked
        )
        + f". dataprune splits {spd['dataprune']['kchars_per_s'] / 1000:.1f} M characters/s."
    )
    ok, winners = verdict(r)
    lines.append(
        "- A library ties or beats rag/sentences.py on both gold datasets (boundary F1 no more "
        f"than {TIE_POINTS} points lower on HotpotQA and on WikiQA): "
        + (f"**yes** ({', '.join(winners)})." if ok else "**no**.")
    )
    if missing:
        lines.append(f"- Not installed in this run: {', '.join(missing)}.")
    unaligned = {k: v for k, v in r.get("unaligned_pieces", {}).items() if v}
    if unaligned:
        lines.append(
            "- Sentences that could not be located in the text (dropped from scoring): "
            + ", ".join(f"{k} {v}" for k, v in unaligned.items())
            + "."
        )
    load_end = r.get("load_average_at_end")
    lines.append("")
    lines.append(
        common.machine_sentence(r["machine"])
        + (f" 1-minute load average {load_end[0]:.1f} at the end." if load_end else "")
        + " Timings are on a shared CPU; ratios within a run are more reliable than absolutes."
    )
    return "\n".join(lines) + "\n"
