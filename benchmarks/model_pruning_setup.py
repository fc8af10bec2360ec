"""Data splits, calibration recipes, sparsity patterns and the activation memo of
``benchmarks/model_pruning.py``.

Split (all from ``../shared/data``; every slice is disjoint from the others):

* calibration pool: C4 documents ``[0, n_c4)`` (<= 240), Wikipedia articles ``[0, n_wiki)``
  (<= 24) and GSM8K *train* problems ``[0, n_gsm)`` as ``Question: ...\\nAnswer: ...``;
* held out (reported): Wikipedia articles ``[24, 27)``, C4 documents ``[240, 270)`` and GSM8K
  *test* answers, each cut to its first ``eval_tokens`` tokens. These are the slices the benchmark
  used before (``wiki[24:]``, ``c4[240:]``, test answers): cut to the same number of tokens they
  give the same tokens, so earlier numbers stay comparable;
* development (choosing the default recipe; the calibration report's reference): Wikipedia
  articles ``[27, 30)``, C4 documents ``[270, 300)`` and the answers of the last
  :data:`N_DEV_GSM` GSM8K train problems (never in the pool), each cut to ``dev_tokens`` tokens.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _common as common

SOURCES = ("c4", "wiki", "gsm8k")
#: the held-out and development slices (document / article indices), fixed
WIKI_HELDOUT, WIKI_DEV = (24, 27), (27, 30)
C4_HELDOUT, C4_DEV = (240, 270), (270, 300)
N_DEV_GSM = 500


@dataclass(frozen=True)
class Recipe:
    """One calibration recipe: ``build_calibration_set`` options over the pool."""

    label: str
    selector: str
    space: str = "embeddings"
    mix: str = "none"
    pool: str = "mixed"  # "mixed": c4 + wiki + gsm8k with source labels; "gsm8k": GSM8K only
    scale: int = 1  # calibration samples = scale x --n-samples (a reference with more data)

    def kwargs(self) -> dict[str, str]:
        return {"selector": self.selector, "space": self.space, "mix": self.mix}


RECIPES: dict[str, Recipe] = {
    "random": Recipe("random", "random"),
    "kcenter": Recipe("kcenter (embeddings)", "kcenter"),
    "kcenter_act": Recipe("kcenter (activations)", "kcenter", space="activations"),
    "balanced_random": Recipe("balanced random", "random", mix="balanced"),
    "balanced_kcenter_act": Recipe(
        "balanced kcenter (activations)", "kcenter", space="activations", mix="balanced"
    ),
    # facility location maximises the summed similarity of each candidate to its nearest kept
    # one: the pool-side counterpart of the report's coverage (k-center covers the outliers)
    "fl_act": Recipe("facility location (activations)", "facility_location", space="activations"),
    "balanced_fl_act": Recipe(
        "balanced facility location (activations)",
        "facility_location",
        space="activations",
        mix="balanced",
    ),
    # herding matches the pool's mean activation (a random draw of 32 matches it only to
    # O(1/sqrt(32))): the first moment of what the pruner's statistics are computed from
    "herding_act": Recipe("herding (activations)", "herding", space="activations"),
    "balanced_herding_act": Recipe(
        "balanced herding (activations)", "herding", space="activations", mix="balanced"
    ),
    # the pool's own source mix (a random draw's, in expectation), each source's share then
    # chosen by the selector inside it: the selection changes which blocks, not how much of each
    # source (the balanced and unstratified recipes move the mix, and with it each set's PPL)
    "proportional_fl_act": Recipe(
        "proportional facility location (activations)",
        "facility_location",
        space="activations",
        mix="proportional",
    ),
    "proportional_kcenter_act": Recipe(
        "proportional kcenter (activations)", "kcenter", space="activations", mix="proportional"
    ),
    "proportional_herding_act": Recipe(
        "proportional herding (activations)", "herding", space="activations", mix="proportional"
    ),
    # the statistics Wanda calibrates on: each block's per-channel mean of x^2 at every linear
    # layer's input, relative to the pool's; herding keeps the blocks whose mean comes closest
    # to the pool's, i.e. whose Wanda norms are closest to the whole pool's
    "herding_moments": Recipe("herding (input moments)", "herding", space="input_moments"),
    "proportional_herding_moments": Recipe(
        "proportional herding (input moments)",
        "herding",
        space="input_moments",
        mix="proportional",
    ),
    # optional rows (not in the default list)
    # a reference, not a recipe at the budget: does four times the random data beat one draw?
    "random_x4": Recipe("random, 4x the samples", "random", scale=4),
    "prototypes": Recipe("prototypes (embeddings)", "prototypes"),
    "gsm8k": Recipe("GSM8K only (random)", "random", pool="gsm8k"),
}
DEFAULT_RECIPES = (
    "random",
    "kcenter",
    "kcenter_act",
    "balanced_random",
    "balanced_kcenter_act",
    "fl_act",
    "balanced_fl_act",
)
#: DSnoT runs: refine id -> DSnoTConfig fields changed from its defaults ("dsnot": the
#: defaults; the others are optional variants for choosing DSnoT's settings on the dev slices)
DSNOT_VARIANTS: dict[str, dict[str, Any]] = {
    # the library's default (only the MLP layers are refined, 5 cycles, agree_halves)
    "dsnot": {},
    # every layer refined with the paper's 50 cycles (the default before the settings studies),
    # and three variants of it
    "dsnot_all": {"skip": "none", "max_cycles": 50},
    "dsnot_mean": {"skip": "none", "objective": "mean", "max_cycles": 50},
    "dsnot_c10": {"skip": "none", "max_cycles": 10},
    # the reference implementation's default (--skip_layer mlp): only attention is refined
    "dsnot_attn": {"skip": "mlp", "max_cycles": 50},
    # MLP layers only with other cycle counts (the cycles study, model_pruning_dsnot_cycles):
    # a small calibration set (32 x 256 tokens) estimates each input's mean and variance roughly,
    # and every swap fits that estimate. 10 was the default after that study, 50 before it;
    # 5 (the acceptance study, model_pruning_dsnot_acceptance) is the default now
    "dsnot_c10_mlp": {"max_cycles": 10},
    "dsnot_c20_mlp": {"max_cycles": 20},
    "dsnot_c50_mlp": {"max_cycles": 50},
    # fewer swaps still, and, with the 10 cycles of the study's default, the paper's sign rule
    # (a row stops before its error changes sign) and the exact calibration error
    "dsnot_c5_mlp": {"max_cycles": 5},
    "dsnot_sign": {"keep_sign": True, "max_cycles": 10},
    # (the swap test on d^T E[x x^T] d in place of the uncorrelated-inputs estimate)
    "dsnot_full": {"objective": "mse_full", "max_cycles": 10},
    # a swap must also lower the error on each half of the calibration sequences on its own (a
    # swap one half contradicts fits the other's noise): the halves study,
    # model_pruning_dsnot_halves, made it the default (5 cycles); without it, the default before
    "dsnot_halves": {"agree_halves": True},
    "dsnot_halves_c10": {"agree_halves": True, "max_cycles": 10},
    "dsnot_no_halves": {"agree_halves": False},
}
REFINES = ("none", *DSNOT_VARIANTS)


def refine_label(refine: str) -> str:
    """The suffix a run's name gets for its refinement: "" (plain), " + DSnoT" or the variant."""
    return "" if refine == "none" else " + DSnoT" if refine == "dsnot" else f" + DSnoT ({refine})"


def parse_recipes(spec: str) -> list[str]:
    """Recipe ids from a comma list; ``random`` always comes first (the paired baseline)."""
    names = [s.strip() for s in spec.split(",") if s.strip()]
    bad = [n for n in names if n not in RECIPES]
    if bad:
        raise SystemExit(f"unknown recipe(s) {', '.join(bad)}; valid: {', '.join(RECIPES)}")
    return ["random", *dict.fromkeys(n for n in names if n != "random")]


def parse_patterns(spec: str) -> list[str]:
    """Pattern ids ``"50%"``, ``"60%"``, ``"N:M"`` from e.g. ``"unstructured,0.6,2:4"``.

    ``unstructured`` (the old spelling) is 50% unstructured; a fraction or a percentage is
    unstructured at that sparsity.
    """
    out = []
    for raw in (s.strip() for s in spec.split(",") if s.strip()):
        if ":" in raw:
            out.append(raw)
        elif raw == "unstructured":
            out.append("50%")
        else:
            v = float(raw.rstrip("%")) / (100 if raw.endswith("%") or float(raw) > 1 else 1)
            if not 0 < v < 1:
                raise SystemExit(f"bad sparsity {raw!r}")
            out.append(f"{round(100 * v)}%")
    return list(dict.fromkeys(out))


def pattern_spec(pattern: str) -> dict[str, Any]:
    """Pruner keyword arguments of a pattern id."""
    if ":" in pattern:
        return {"pattern": pattern}
    return {"sparsity": int(pattern.rstrip("%")) / 100}


def pattern_label(pattern: str) -> str:
    return pattern if ":" in pattern else f"{pattern} unstructured"


@dataclass
class Splits:
    """Texts of the calibration pool, the development and the held-out slices."""

    pool: dict[str, list[str]]
    dev: dict[str, list[str]]
    heldout: dict[str, list[str]]
    description: dict[str, dict[str, str]]

    @property
    def mixed(self) -> tuple[list[str], list[str]]:
        """The pool's texts and their source labels, source by source."""
        texts = [t for s in SOURCES for t in self.pool[s]]
        return texts, [s for s in SOURCES for _ in self.pool[s]]


def load_splits(n_c4: int, n_wiki: int, n_gsm: int) -> Splits:
    """The three disjoint slices (see the module docstring)."""
    data = common.SHARED_DATA
    common.need_data(data / "lm_text" / "c4_demo.jsonl", "C4 demo text")
    common.need_data(data / "gsm8k" / "train.jsonl", "GSM8K")
    c4 = [r["text"] for r in common.read_jsonl(data / "lm_text" / "c4_demo.jsonl")]
    wiki = [t for t in (data / "lm_text" / "wiki_demo.txt").read_text().splitlines() if t.strip()]
    train, test = common.gsm8k("train"), common.gsm8k("test")
    if not (0 < n_c4 <= C4_HELDOUT[0] and 0 < n_wiki <= WIKI_HELDOUT[0]):
        raise SystemExit(
            f"the pool takes 1..{C4_HELDOUT[0]} C4 and 1..{WIKI_HELDOUT[0]} wiki texts"
        )
    if not 0 < n_gsm <= len(train) - N_DEV_GSM:
        raise SystemExit(f"--n-gsm-pool must be 1..{len(train) - N_DEV_GSM} (dev is the rest)")
    dev_gsm = train[len(train) - N_DEV_GSM :]
    pool = {
        "c4": c4[:n_c4],
        "wiki": wiki[:n_wiki],
        "gsm8k": [f"Question: {r['question']}\nAnswer: {r['answer']}" for r in train[:n_gsm]],
    }
    heldout = {
        "wiki": wiki[slice(*WIKI_HELDOUT)],
        "c4": c4[slice(*C4_HELDOUT)],
        "gsm8k": [r["answer"] for r in test],
    }
    dev = {
        "wiki": wiki[slice(*WIKI_DEV)],
        "c4": c4[slice(*C4_DEV)],
        "gsm8k": [r["answer"] for r in dev_gsm],
    }
    g0 = len(train) - N_DEV_GSM
    description = {
        "pool": {
            "wiki": _span("article", 0, n_wiki),
            "c4": _span("document", 0, n_c4),
            "gsm8k": _span("train problem", 0, n_gsm) + " (question + answer)",
        },
        "dev": {
            "wiki": _span("article", *WIKI_DEV),
            "c4": _span("document", *C4_DEV),
            "gsm8k": "answers of " + _span("train problem", g0, len(train)),
        },
        "heldout": {
            "wiki": _span("article", *WIKI_HELDOUT),
            "c4": _span("document", *C4_HELDOUT),
            "gsm8k": f"test answers (all {len(test)})",
        },
    }
    return Splits(pool, dev, heldout, description)


def _span(what: str, lo: int, hi: int) -> str:
    """``"articles 24-26"`` (0-based, ``hi`` excluded) or ``"article 0"``."""
    return f"{what} {lo}" if hi - lo == 1 else f"{what}s {lo}-{hi - 1}"


def model_fingerprint(model: Any) -> str:
    """sha256 prefix of the first 2-D weight inside the decoder (changes when it is pruned)."""
    import torch

    for name, p in model.named_parameters():
        if p.ndim == 2 and ".layers.0." in f".{name}":
            with torch.no_grad():
                data = p.detach().float().cpu().numpy()
            return hashlib.sha256(data.tobytes()).hexdigest()[:16]
    raise RuntimeError("no decoder weight found to fingerprint")


@contextmanager
def memoized_activations(store: Path, dense_fingerprint: str) -> Iterator[dict[str, float]]:
    """Reuse the target model's activation embeddings (and input moments) of identical blocks.

    ``build_calibration_set(space="activations")`` (``"input_moments"``) embeds every candidate
    block of the pool with the (dense) model; the blocks are the same for every seed and every
    recipe of that space,
    so inside this context the first call is computed (and saved under ``store``) and later calls
    with the same blocks, layers and model weights load it. The yielded dict says what this
    context did: ``computed_s`` (seconds of a computation made here) and ``reused_s`` (the
    recorded computation time of an embedding loaded instead), so that a build's cost can be
    reported with the embedding included. A model whose :func:`model_fingerprint` is not
    ``dense_fingerprint`` (a pruned one) is refused: candidates are embedded by the dense model.
    """
    import dataprune.calibration.activations as act
    import dataprune.calibration.input_moments as mom

    info = {"computed_s": 0.0, "reused_s": 0.0, "n_blocks": 0.0}
    originals = (act.activation_embeddings, mom.input_moment_features)
    act.activation_embeddings = _memoized(
        originals[0], "activations", store, dense_fingerprint, info
    )
    mom.input_moment_features = _memoized(originals[1], "moments", store, dense_fingerprint, info)
    try:
        yield info
    finally:
        act.activation_embeddings, mom.input_moment_features = originals


def _memoized(
    original: Any, kind: str, store: Path, dense_fingerprint: str, info: dict[str, float]
) -> Any:
    """``original`` (a candidate-embedding function of the model) with results saved under
    ``store`` as ``{kind}-{hash}.npz``, keyed by the blocks, the options and the dense model."""

    def cached(model_: Any, input_ids: Any, attention_mask: Any = None, **kw: Any) -> np.ndarray:
        ids = np.ascontiguousarray(np.asarray(input_ids, dtype=np.int64))
        mask = None if attention_mask is None else np.asarray(attention_mask, dtype=np.int64)
        h = hashlib.sha256(ids.tobytes())
        h.update(b"-" if mask is None else np.ascontiguousarray(mask).tobytes())
        h.update(json.dumps(kw, sort_keys=True, default=str).encode())
        if model_fingerprint(model_) != dense_fingerprint:
            raise RuntimeError(f"{kind} of the candidates must come from the dense model")
        h.update(dense_fingerprint.encode())
        path = store / f"{kind}-{h.hexdigest()[:24]}.npz"
        info["n_blocks"] = float(len(ids))
        if path.exists():
            with np.load(path) as z:
                info["reused_s"] += float(z["time_s"])
                return z["X"]
        t0 = time.perf_counter()
        X = original(model_, input_ids, attention_mask, **kw)
        dt = time.perf_counter() - t0
        info["computed_s"] += dt
        store.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, X=X, time_s=np.float64(dt))
        tmp.replace(path)
        return X

    return cached
