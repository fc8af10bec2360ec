"""The curation benchmark's SFT pool: GSM8K and Alpaca pairs with planted, recorded faults.

Sources (``../shared/data``, found through ``_common.SHARED_DATA``):

* GSM8K ``gsm8k/train.jsonl`` (question -> answer) and ``gsm8k/test.jsonl`` (held out);
* Alpaca ``alpaca/alpaca_en_demo.json``: prompt = instruction, plus ``"\\n\\n" + input`` when the
  input is not empty; response = output. The file has 999 records, 14 of them exact copies of
  earlier ones; those are dropped first (first occurrence kept; also any later record repeating
  an earlier prompt or output), leaving 985.

Fixed partition (seed :data:`PARTITION_SEED`, independent of every other seed, so no held-out
record can enter a pool whatever the seeds):

* GSM8K train: 200 ``dev`` held-out, 1,000 ``dev`` pool candidates, the other 6,273 ``eval``
  pool candidates; the ``eval`` held-out set comes from ``test.jsonl``.
* Alpaca (985): 200 ``eval`` held-out, 100 ``dev`` held-out, 150 ``dev`` pool candidates, the
  other 535 ``eval`` pool candidates.

Faults planted per source, as shares of that source's pool size ``n`` (rounded): 10% ``shuffled``
(a derangement of responses among those records, same source), 5% ``truncated`` (response cut at
a word boundary to 20-50% of its characters; only responses of at least 8 words), 5% ``exact_dup``
(copy of another record of the pool), 5% ``near_dup`` (a copy lightly edited: word substitutions,
punctuation and whitespace changes in prompt and response). Duplicates copy only fault-free
records, at most one copy each, so every record has one fault label; ``dup_of`` is the id of the
copied record. The pool is shuffled and then given opaque ids (``eval-00000``...), so neither order
nor id reveals a fault; curation methods should see ``prompt`` and ``response`` only.

Run: ``.venv/bin/python benchmarks/sft_pool.py --n-gsm8k 300 --n-alpaca 300`` (prints a summary).
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks import _common as common  # noqa: E402

PARTITION_SEED = 20250917
FAULTS = ("none", "shuffled", "truncated", "exact_dup", "near_dup")
FAULT_RATES = {"shuffled": 0.10, "truncated": 0.05, "exact_dup": 0.05, "near_dup": 0.05}
SPLITS = ("eval", "dev")
_SPLIT_CODE = {"eval": 0, "dev": 1}
_MIN_TRUNCATE_WORDS = 8
_SYNONYMS = {
    "big": "large", "small": "little", "many": "numerous", "also": "as well", "has": "possesses",
    "find": "determine", "give": "provide", "write": "compose", "make": "create", "use": "employ",
    "show": "display", "begin": "start", "total": "overall", "help": "assist", "quick": "fast",
    "buy": "purchase", "buys": "purchases", "get": "obtain", "gets": "receives", "need": "require",
    "needs": "requires", "very": "really", "answer": "response", "example": "instance",
    "describe": "explain", "important": "crucial", "different": "distinct", "people": "individuals",
    "after": "following", "before": "prior to", "about": "around", "wants": "wishes",
    "often": "frequently",
}  # fmt: skip
_WORD = re.compile(r"\b(" + "|".join(sorted(_SYNONYMS, key=len, reverse=True)) + r")\b", re.I)


@functools.lru_cache(maxsize=1)
def _partition() -> dict[str, dict[str, list[dict]]]:
    """``{source: {part: [record]}}`` with parts ``eval``, ``dev``, ``eval_heldout``, ``dev_heldout``."""
    common.need_data(common.SHARED_DATA / "gsm8k" / "train.jsonl", "GSM8K")
    alpaca_path = common.SHARED_DATA / "alpaca" / "alpaca_en_demo.json"
    common.need_data(alpaca_path, "Alpaca")
    gsm = [
        {"origin": f"gsm8k/train:{i}", "prompt": r["question"], "response": r["answer"]}
        for i, r in enumerate(common.gsm8k("train"))
    ]
    alpaca, seen_p, seen_r = [], set(), set()
    for i, r in enumerate(json.loads(alpaca_path.read_text(encoding="utf-8"))):
        prompt = r["instruction"] + (f"\n\n{r['input']}" if r["input"].strip() else "")
        if prompt in seen_p or r["output"] in seen_r or not r["output"].strip():
            continue
        seen_p.add(prompt)
        seen_r.add(r["output"])
        alpaca.append({"origin": f"alpaca:{i}", "prompt": prompt, "response": r["output"]})
    g = [gsm[i] for i in np.random.default_rng(PARTITION_SEED).permutation(len(gsm))]
    a = [alpaca[i] for i in np.random.default_rng(PARTITION_SEED + 1).permutation(len(alpaca))]
    test = [
        {"origin": f"gsm8k/test:{i}", "prompt": r["question"], "response": r["answer"]}
        for i, r in enumerate(common.gsm8k("test"))
    ]
    return {
        "gsm8k": {"dev_heldout": g[:200], "dev": g[200:1200], "eval": g[1200:], "eval_heldout": test},
        "alpaca": {"eval_heldout": a[:200], "dev_heldout": a[200:300], "dev": a[300:450], "eval": a[450:]},
    }  # fmt: skip


def _truncate(text: str, rng: np.random.Generator) -> str:
    """``text`` cut at the word boundary whose kept share is nearest a U(0.2, 0.5) target
    (boundaries keeping 20-50% of the characters preferred)."""
    target = rng.uniform(0.2, 0.5)
    cuts = sorted({len(text[: m.start()].rstrip()) for m in re.finditer(r"\s+", text)} - {0})
    inside = [c for c in cuts if 0.2 <= c / len(text) <= 0.5]
    best = min(inside or cuts, key=lambda c: abs(c / len(text) - target))
    return text[:best]


def _edit(text: str, rng: np.random.Generator, n_ops: int) -> str:
    """A light edit: ``n_ops`` of word substitution / punctuation / whitespace; always changes."""
    out = text
    for op in rng.choice(3, n_ops):
        if op == 0 and (hits := list(_WORD.finditer(out))):
            m = hits[rng.integers(len(hits))]
            rep = _SYNONYMS[m.group(0).lower()]
            rep = rep[0].upper() + rep[1:] if m.group(0)[0].isupper() else rep
            out = out[: m.start()] + rep + out[m.end() :]
        elif op == 1:
            commas = [m.start() for m in re.finditer(r",(?= )", out)]
            body = out.rstrip()
            if commas and rng.random() < 0.5:
                i = commas[rng.integers(len(commas))]
                out = out[:i] + out[i + 1 :]
            elif body.endswith((".", "!", "?")):
                out = body[:-1] + out[len(body) :]
            else:
                out = body + "." + out[len(body) :]
        else:
            spaces = [m.start() for m in re.finditer(r"(?<=\S) (?=\S)", out)]
            if spaces:
                i = spaces[rng.integers(len(spaces))]
                out = out[:i] + "  " + out[i + 1 :]
            else:
                out += " "
    return out if out != text else text + " "


def build_pool(n_gsm8k: int, n_alpaca: int, *, seed: int, split: str = "eval") -> list[dict]:
    """The SFT pool with planted faults (deterministic for its arguments).

    Parameters
    ----------
    n_gsm8k, n_alpaca : int
        Records per source in the pool, duplicates included (at most about 6,900 / 590 for
        ``eval``, 1,100 / 165 for ``dev``).
    seed : int
        Which candidates are drawn and where the faults go; the ``dev`` split draws from its own
        candidates with its own generator (``default_rng([seed, 1])`` vs ``[seed, 0]``).
    split : {"eval", "dev"}
        ``dev``: records disjoint from every ``eval`` pool and held-out set, for choosing
        defaults.

    Returns
    -------
    list of dict
        ``id``, ``prompt``, ``response``, ``source`` (``gsm8k``/``alpaca``), ``fault`` (one of
        :data:`FAULTS`), ``dup_of`` (id of the copied record, or None), ``origin`` (file and row
        of the prompt's record).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = np.random.default_rng([seed, _SPLIT_CODE[split]])
    pool: list[dict] = []
    for source, n in (("gsm8k", n_gsm8k), ("alpaca", n_alpaca)):
        k = {f: round(r * n) for f, r in FAULT_RATES.items()}
        if k["shuffled"] == 1:
            k["shuffled"] = 0  # one record cannot swap responses with itself
        cands = _partition()[source][split]
        n_unique = n - k["exact_dup"] - k["near_dup"]
        if n_unique > len(cands):
            raise ValueError(f"{source} {split} has {len(cands)} candidates; asked for {n_unique}")
        recs = [
            {**cands[i], "source": source, "fault": "none", "dup_of": None}
            for i in sorted(rng.choice(len(cands), n_unique, replace=False).tolist())
        ]
        order = rng.permutation(n_unique).tolist()
        shuf, rest = order[: k["shuffled"]], order[k["shuffled"] :]
        for j, i in enumerate(shuf):  # rotate responses along a random order: no fixed point
            recs[i]["response_new"] = recs[shuf[(j + 1) % len(shuf)]]["response"]
        for i in shuf:
            recs[i].update(response=recs[i].pop("response_new"), fault="shuffled")
        long_enough = [i for i in rest if len(recs[i]["response"].split()) >= _MIN_TRUNCATE_WORDS]
        for i in long_enough[: k["truncated"]]:
            recs[i].update(response=_truncate(recs[i]["response"], rng), fault="truncated")
        clean = [r for r in recs if r["fault"] == "none"]
        picks = rng.choice(len(clean), k["exact_dup"] + k["near_dup"], replace=False).tolist()
        for j, i in enumerate(picks):
            src, dup = clean[i], {**clean[i], "dup_of": clean[i]}
            if j < k["exact_dup"]:
                dup["fault"] = "exact_dup"
            else:
                dup["fault"] = "near_dup"
                dup["prompt"] = _edit(src["prompt"], rng, int(rng.integers(1, 3)))
                dup["response"] = _edit(src["response"], rng, int(rng.integers(1, 4)))
            recs.append(dup)
        pool.extend(recs)
    pool = [pool[i] for i in rng.permutation(len(pool))]
    for i, r in enumerate(pool):
        r["id"] = f"{split}-{i:05d}"
    keys = ("id", "prompt", "response", "source", "fault", "dup_of", "origin")
    out = []
    for r in pool:
        row = {k: r[k] for k in keys}
        row["dup_of"] = r["dup_of"]["id"] if r["dup_of"] is not None else None
        out.append(row)
    return out


def heldout_sets(
    seed: int, *, split: str = "eval", n_gsm8k: int = 200, n_alpaca: int | None = None
) -> dict[str, list[tuple[str, str]]]:
    """Clean held-out (prompt, response) pairs per source, disjoint from every pool of ``split``.

    ``eval``: ``n_gsm8k`` GSM8K test questions (a seeded subset of ``test.jsonl``, file order)
    and the 200 held-out Alpaca records. ``dev``: the 200 held-out GSM8K train records and the 100
    held-out Alpaca records of the dev partition. A count below the part's size takes a seeded
    subset (file/partition order kept); ``n_alpaca=None``: the whole Alpaca part.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = np.random.default_rng([seed, _SPLIT_CODE[split], 7])
    out = {}
    for source, n in (("gsm8k", n_gsm8k), ("alpaca", n_alpaca)):
        part = _partition()[source][f"{split}_heldout"]
        n = len(part) if n is None else n
        if n > len(part):
            raise ValueError(
                f"{source} {split} held-out set has {len(part)} records; asked for {n}"
            )
        idx = (
            sorted(rng.choice(len(part), n, replace=False).tolist()) if n < len(part) else range(n)
        )
        out[source] = [(part[i]["prompt"], part[i]["response"]) for i in idx]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-gsm8k", type=int, default=300)
    ap.add_argument("--n-alpaca", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", choices=SPLITS, default="eval")
    args = ap.parse_args()
    pool = build_pool(args.n_gsm8k, args.n_alpaca, seed=args.seed, split=args.split)
    counts = Counter((r["source"], r["fault"]) for r in pool)
    for source in ("gsm8k", "alpaca"):
        print(source, {f: counts[(source, f)] for f in FAULTS})
    held = heldout_sets(args.seed, split=args.split)
    print("held out:", {k: len(v) for k, v in held.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
