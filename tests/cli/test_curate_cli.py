"""``dataprune curate`` end to end through the CLI: outputs, summary lines, resume, --show-recipe."""

from __future__ import annotations

import json

import pandas as pd
import yaml

from dataprune.cli.main import main
from dataprune.io import load_records, write_records


def _records(n=40):
    recs = [
        {
            "uid": f"r{i}",
            "q": f"What is {i} plus {i + 1}?",
            "a": f"{i} plus {i + 1} is {2 * i + 1}.",
        }
        for i in range(n)
    ]
    recs.append(dict(recs[4], uid="copy4"))  # an exact duplicate of r4
    return recs


def test_curate_writes_every_output_and_resumes(tmp_path, capsys):
    src = write_records(_records(), tmp_path / "in.jsonl")
    before = src.read_bytes()
    out = tmp_path / "kept.jsonl"
    argv = ["curate", str(src), "--prompt-field", "q", "--response-field", "a"]
    argv += ["--id-field", "uid", "--fraction", "0.25", "--random-state", "3", "-o", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    # the built-in default recipe: exact + fuzzy dedup, then a random subset of the budget
    assert "kept 10 of 41 records" in printed and "exact_dedup -1" in printed
    assert f"report -> {out}.report.html" in printed
    # the report's kept-versus-random comparison, printed and in the manifest
    assert "kept set against 20 random subsets of the same size (10 records)" in printed
    assert "records with a duplicate also in the set: kept 0" in printed
    kept = load_records(out).records
    assert len(kept) == 10 and all(r["uid"] != "copy4" for r in kept)
    st = pd.read_parquet(f"{out}.status.parquet")
    assert len(st) == 41 and (st["status"] == "kept").sum() == 10
    assert st.loc[st["id"] == "copy4", "duplicate_of"].item() == "r4"
    man = json.loads((tmp_path / "kept.jsonl.manifest.json").read_text())
    assert man["counts"]["n_input"] == 41 and man["counts"]["n_output"] == 10
    assert man["counts"]["n_kept"] == 10 and man["counts"]["dropped_exact_dedup"] == 1
    (dup,) = man["against_random"]
    assert dup["name"] == "duplicate_share" and dup["kept"] == 0.0 and dup["n_subsets"] == 20
    assert src.read_bytes() == before  # the input is never modified
    # a rerun reuses every finished stage and keeps the same records
    assert main(argv) == 0
    again = capsys.readouterr().out
    assert "reused cached stages: exact_dedup, fuzzy_dedup, select:random" in again
    assert load_records(out).records == kept


def test_show_recipe_prints_the_resolved_recipe_and_writes_nothing(tmp_path, capsys):
    src = write_records(_records(), tmp_path / "in.jsonl")
    assert main(["curate", str(src), "--n-samples", "7", "--show-recipe"]) == 0
    recipe = yaml.safe_load(capsys.readouterr().out)
    assert recipe["budget"] == {"n_samples": 7}
    assert [next(iter(s)) if isinstance(s, dict) else s for s in recipe["stages"]][:2] == [
        "exact_dedup",
        "fuzzy_dedup",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_curate_without_output_is_refused(tmp_path, capsys):
    src = write_records(_records(), tmp_path / "in.jsonl")
    assert main(["curate", str(src), "--fraction", "0.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "dataprune curate: error: --output is required (the file for the kept records)"
