"""``--only`` invocations of ``benchmarks/qtuning_outcome.py``: merging the runs they train into
the published results, and keeping the published runs of an earlier ``QTuningConfig`` default
under names that say so."""

from __future__ import annotations

import json
from typing import Any

from benchmarks import _common as common
from benchmarks.qtuning_outcome_setup import default_fields


def merge_base(res: dict[str, Any], args, only: list[str]) -> dict[str, Any]:
    """``--only``: start from the published results of this split (their runs, selections and
    base evaluation), after checking that they describe the same pool, budget and held-out sets;
    the runs this invocation trains replace or join them, marked ``this_invocation``."""
    path = common.RESULTS / f"{res['name']}.json"
    if not path.is_file():
        raise SystemExit(
            f"--only needs the published {path.name} to merge into; run without --only"
        )
    prev = json.loads(path.read_text(encoding="utf-8"))
    for field in ("pool", "k", "max_length", "tokens_per_step", "steps", "heldout"):
        if prev.get(field) != res[field]:
            raise SystemExit(f"--only: the published {path.name} has {field}={prev.get(field)!r}, "
                             f"this invocation {res[field]!r}; rerun without --only")  # fmt: skip
    unknown = sorted(set(only) - set(res["conditions"]))
    if unknown:
        raise SystemExit(f"--only: unknown condition(s) {unknown}; choose from {res['conditions']}")
    for r in prev["runs"]:
        r.pop("this_invocation", None)
    if prev.get("qtuning_config") != res["qtuning_config"]:
        prev = rename_earlier_default(prev, res["qtuning_config"])
    # a condition added since the last run joins them; the published runs of a condition no
    # longer run (or of an earlier default, renamed: shown after the condition it was) stay
    present = {r["condition"] for r in prev["runs"]}
    kept = [c for c in prev.get("conditions", []) if c not in res["conditions"] and c in present]
    conditions: list[str] = []
    for c in res["conditions"]:
        conditions += [c] + [x for x in kept if x.startswith(f"{c} (")]
    conditions += [x for x in kept if x not in conditions]
    merged = {
        **prev,
        "conditions": conditions,
        "machine": res["machine"],
        "seeds": sorted(set(prev["seeds"]) | set(args.seeds)),
    }
    merged["merged"] = {"only": list(only), "seeds": list(args.seeds),
                        "command": res["command"] + " --only " + " ".join(f"'{c}'" for c in only)
                        + " --seeds " + " ".join(map(str, args.seeds))}  # fmt: skip
    return merged


def rename_earlier_default(prev: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The published results of an earlier ``QTuningConfig`` default, with the runs (and the
    selection statistics) of every condition that takes a changed field from the default
    renamed ``"<condition> (<those fields' earlier values>, the earlier default)"``: they stay in
    the results next to the runs of the new default, which ``--only`` trains under the plain
    names (those it names; a condition not retrained has no runs at the new default)."""
    old = prev["qtuning_config"]
    changed = {k for k in old if old.get(k) != config.get(k)}
    label = {}
    for c in {r["condition"] for r in prev["runs"]}:
        own = sorted(changed & (default_fields(c) or set()))
        if own:
            label[c] = f"{c} ({', '.join(f'{k}={old.get(k)}' for k in own)}, the earlier default)"
    out = dict(prev)
    out["runs"] = [
        {**r, "condition": label.get(r["condition"], r["condition"])} for r in prev["runs"]
    ]
    out["selection_by_seed"] = {
        label.get(c, c): v for c, v in prev.get("selection_by_seed", {}).items()
    }
    present = {r["condition"] for r in out["runs"]}
    renamed = [label[c] for c in prev.get("conditions", []) if label.get(c) in present]
    # (_merge_base places each renamed condition after the one it was)
    out["conditions"] = [*prev.get("conditions", []), *renamed]
    if renamed:
        out["earlier_defaults"] = [
            *prev.get("earlier_defaults", []),
            {"qtuning_config": old, "renamed": renamed},
        ]
    out["qtuning_config"] = config
    if "q-tuning static" in label:  # the default triage's summary is of the earlier default
        out.pop("qtuning_default_summary", None)
    return out
