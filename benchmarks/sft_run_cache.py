"""The JSON result cache of the SFT benchmarks: one file per finished run, keyed by a hash of
everything that defines it (condition, training records, config, evaluation sets), so an
interrupted benchmark resumes and finished runs are never recomputed. Used with
``benchmarks/sft_harness.py`` by ``qtuning_outcome.py`` and ``curation_outcome.py``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: bump when a change to the harness (``sft_harness.py``) changes results, so cached runs are not
#: reused
CACHE_VERSION = 1
Pair = tuple[str, str]


def _json_default(obj: Any) -> Any:
    if is_dataclass(obj) and not isinstance(obj, type):
        return asdict(obj)
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def canonical(obj: Any) -> Any:
    """``obj`` as plain JSON values (dataclasses, tuples, numpy and paths converted)."""
    return json.loads(json.dumps(obj, sort_keys=True, default=_json_default))


def fingerprint(obj: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of ``obj`` (sorted keys, no whitespace)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def pairs_hash(pairs: Sequence[Pair]) -> str:
    """:func:`fingerprint` of a list of (prompt, response) pairs, order included."""
    return fingerprint([[p, r] for p, r in pairs])


def run_key(
    condition: str,
    *,
    train_ids: Sequence[str],
    train_pairs: Sequence[Pair],
    config: Any,
    eval_sets: Mapping[str, Sequence[Pair]],
    **extra: Any,
) -> dict[str, Any]:
    """The cache key of one run: condition, training records (ids and content, hashed), the full
    config, each eval set (hashed), :data:`CACHE_VERSION` and any ``extra`` JSON values."""
    return canonical(
        {
            "cache_version": CACHE_VERSION,
            "condition": condition,
            "train": {
                "n": len(train_pairs),
                "ids_sha256": fingerprint(list(train_ids)),
                "pairs_sha256": pairs_hash(train_pairs),
            },
            "config": config,
            "eval": {k: {"n": len(v), "sha256": pairs_hash(v)} for k, v in eval_sets.items()},
            **extra,
        }
    )


def run_cached(
    key: Mapping[str, Any], fn: Callable[[], dict[str, Any]], cache_dir: str | Path
) -> dict[str, Any]:
    """``fn()``'s result for ``key``, computed once: stored as ``<cache_dir>/<hash>.json``.

    The file holds the key and the result (JSON, no pickle) and is written atomically (a temporary
    file in ``cache_dir``, then ``os.replace``), so an interrupted run leaves no partial entry. A
    file whose stored key differs from ``key`` (hash collision) or that cannot be read is
    recomputed. The result is returned as read back from JSON, cached or not.
    """
    from dataprune.atomic import atomic_write

    key = canonical(dict(key))
    path = Path(cache_dir) / f"{fingerprint(key)[:32]}.json"
    if path.is_file():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            stored = None
        if isinstance(stored, dict) and stored.get("key") == key and "result" in stored:
            return stored["result"]
    result = json.loads(json.dumps(fn(), default=_json_default))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as fh:
        json.dump({"key": key, "result": result}, fh, indent=1)
        fh.write("\n")
    return result
