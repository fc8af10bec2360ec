from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dataprune.cli.main import main
from dataprune.io import write_records

from tiny_models import CORPUS, tiny_causal_lm


@pytest.fixture()
def tiny_model_dir(tmp_path):
    """A tiny causal LM + tokenizer saved to disk (loadable with --model PATH)."""
    model, tok = tiny_causal_lm(chat_template=True)
    path = tmp_path / "tiny-lm"
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _records(n=16):
    return [
        {"id": i, "q": CORPUS[i % len(CORPUS)], "a": CORPUS[(i * 3 + 2) % len(CORPUS)]}
        for i in range(n)
    ]


def _run(src, out, model_dir, *extra):
    return main(
        [
            "triage",
            str(src),
            "--prompt-field",
            "q",
            "--response-field",
            "a",
            "--sample-ratio",
            "0.25",
            "--token-ratio",
            "0.7",
            "--output",
            str(out),
            "--model",
            str(model_dir),
            "--dtype",
            "float32",
            "--batch-size",
            "4",
            # the random tiny model's IFD says nothing about alignment (near 1 for every pair):
            # the misaligned rule is tested with it set explicitly (tests/qtuning/test_static.py)
            "--max-ifd",
            "none",
            *extra,
        ]
    )


def test_triage_command_writes_everything(tmp_path, tiny_model_dir, capsys):
    src = write_records(_records(), tmp_path / "in.jsonl")
    out = tmp_path / "kept.jsonl"
    assert _run(src, out, tiny_model_dir, "--shard-size", "5") == 0
    printed = capsys.readouterr().out
    assert "kept 4 of 16 samples" in printed
    scores = pq.read_table(f"{out}.scores.parquet").to_pydict()
    n_abrupt = sum(s == "abrupt end" for s in scores["selection"])
    n_flagged = sum(s in ("abrupt end", "duplicate", "misaligned") for s in scores["selection"])
    assert f"left out by the noise rules: {n_flagged} (" in printed
    assert f", {n_abrupt} abrupt ends, " in printed
    assert f"{16 - 4 - n_flagged} more dropped by the fill=random draw" in printed
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4
    assert all(len(r["input_ids"]) == len(r["labels"]) for r in rows)
    scores = pq.read_table(f"{out}.scores.parquet").to_pydict()
    assert scores["index"] == list(range(16)) and sum(scores["kept"]) == 4
    man = json.loads(Path(f"{out}.manifest.json").read_text())
    assert man["command"] == "dataprune triage"
    assert man["counts"]["n_output"] == 4 and man["counts"]["n_input"] == 16
    assert man["parameters"]["sample_ratio"] == 0.25 and man["parameters"]["token_ratio"] == 0.7
    assert (tmp_path / "kept.jsonl.eu_plane.png").is_file()
    assert not (tmp_path / "kept.jsonl.scores-cache").exists()  # removed after success
    # same inputs, same outputs
    out2 = tmp_path / "kept2.jsonl"
    assert _run(src, out2, tiny_model_dir) == 0
    assert out.read_text() == out2.read_text()


def test_parquet_output_and_options(tmp_path, tiny_model_dir):
    src = write_records(_records(12), tmp_path / "in.parquet")
    out = tmp_path / "kept.parquet"
    status = _run(
        src,
        out,
        tiny_model_dir,
        "--drop",
        "low",
        "--entropy-span",
        "response",
        "--no-plot",
        "--token-budget",
        "batch",
        "--keep-cache",
        "--fill",
        "rank",
        "--abrupt-end",
        "50",
    )
    assert status == 0
    rows = pq.read_table(out).to_pylist()
    assert len(rows) == 3 and all(r["qtuning_quadrant"] in ("Q2", "Q4") for r in rows)
    assert not (tmp_path / "kept.parquet.eu_plane.png").exists()
    assert (tmp_path / "kept.parquet.scores-cache").is_dir()
    man = json.loads(Path(f"{out}.manifest.json").read_text())
    assert man["parameters"]["drop"] == "low" and man["parameters"]["entropy_span"] == "response"
    assert man["parameters"]["fill"] == "rank" and man["parameters"]["token_budget"] == "batch"
    assert man["parameters"]["abrupt_end"] == 50.0
    scores = pq.read_table(f"{out}.scores.parquet").to_pydict()
    assert all(x is None or x >= 0 for x in scores["end_nll"])


def test_bad_records_skip_or_stop(tmp_path, tiny_model_dir, capsys):
    recs = _records(10)
    recs[3]["a"] = "   "
    recs[5]["a"] = 7
    src = write_records(recs, tmp_path / "in.jsonl")
    out = tmp_path / "kept.jsonl"
    assert _run(src, out, tiny_model_dir) == 2
    err = capsys.readouterr().err
    assert "record 5, field 'a': expected a string, got int" in err
    only_empty = write_records(
        [r for r in recs if not isinstance(r["a"], int)], tmp_path / "in2.jsonl"
    )
    assert _run(only_empty, out, tiny_model_dir) == 2
    err = capsys.readouterr().err
    assert "line 4, record 3, field 'a': empty response" in err
    assert not out.exists()
    assert _run(src, out, tiny_model_dir, "--on-bad-record", "skip") == 0
    assert "skipped 2 bad records" in capsys.readouterr().out
    rejects = (tmp_path / "kept.jsonl.rejects.jsonl").read_text().splitlines()
    assert sorted(json.loads(r)["index"] for r in rejects) == [3, 5]
    scores = pq.read_table(f"{out}.scores.parquet").to_pydict()
    assert 3 not in scores["index"] and 5 not in scores["index"] and len(scores["index"]) == 8


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--sample-ratio", "0"], "expected a number in (0, 1]"),
        (["--sample-ratio", "1.5"], "expected a number in (0, 1]"),
        (["--lambda", "3"], "neighbor_lambda must be in [0, 1]"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
        (["--abrupt-end", "0"], "expected a number > 0 or 'none'"),
    ],
)
def test_bad_options(tmp_path, tiny_model_dir, capsys, args, expected):
    src = write_records(_records(4), tmp_path / "in.jsonl")
    try:
        status = _run(src, tmp_path / "o.jsonl", tiny_model_dir, *args)
    except SystemExit as exc:  # argparse type errors
        status = exc.code
    assert status == 2
    assert expected in capsys.readouterr().err


def test_output_format_and_fields(tmp_path, tiny_model_dir, capsys):
    src = write_records(_records(4), tmp_path / "in.jsonl")
    assert _run(src, tmp_path / "o.csv", tiny_model_dir) == 2
    assert "CSV cannot hold token-level labels" in capsys.readouterr().err
    assert _run(src, src, tiny_model_dir) == 2
    assert "same file as the input" in capsys.readouterr().err
    status = main(["triage", str(src), "--prompt-field", "q", "-o", str(tmp_path / "o.jsonl")])
    assert status == 2
    assert "--prompt-field and --response-field must be given together" in capsys.readouterr().err


def test_source_field_triages_each_source_and_names_a_missing_one(tmp_path, tiny_model_dir, capsys):
    import numpy as np

    from dataprune.qtuning import QTuningConfig, triage_samples

    recs = _records(16)
    for i, r in enumerate(recs):
        r["src"] = "left" if i % 3 else "right"
    src = write_records(recs, tmp_path / "in.jsonl")
    out = tmp_path / "kept.jsonl"
    args = ("--source-field", "src", "--fill", "flat", "--group-budget", "share")
    assert _run(src, out, tiny_model_dir, *args) == 0
    assert "per source: right alpha=" in capsys.readouterr().out  # first appearance first
    man = json.loads(Path(f"{out}.manifest.json").read_text())
    assert man["parameters"]["source_field"] == "src" and man["parameters"]["fill"] == "flat"
    assert man["qtuning_config"]["group_budget"] == "share"
    by = {g["group"]: g for g in man["triage"]["by_group"]}
    assert by["left"]["n_samples"] == 10 and by["right"]["n_samples"] == 6
    assert by["left"]["n_keep"] + by["right"]["n_keep"] == 4 and man["triage"]["alpha"] is None
    # the kept set is the per-source triage of the written scores
    sc = pq.read_table(f"{out}.scores.parquet").to_pydict()
    sel = np.array(sc["selection"])
    ref = triage_samples(
        sc["perplexity"],
        sc["entropy"],
        QTuningConfig(sample_ratio=0.25, fill="flat", group_budget="share"),
        exclude=sel == "duplicate",
        noise=np.isin(sel, ("abrupt end", "misaligned")),
        groups=[r["src"] for r in recs],
        random_state=0,
    )
    assert sc["kept"] == ref.kept.tolist()
    del recs[6]["src"]
    bad = write_records(recs, tmp_path / "bad.jsonl")
    capsys.readouterr()
    assert _run(bad, tmp_path / "k2.jsonl", tiny_model_dir, "--source-field", "src") == 2
    err = capsys.readouterr().err
    assert "line 7" in err and "'src'" in err and "expected a source name" in err
    assert not (tmp_path / "k2.jsonl").exists()


def test_random_baseline_is_coupled_to_the_kept_set(tmp_path, tiny_model_dir, capsys):
    recs = _records()
    src = write_records(recs, tmp_path / "in.jsonl")
    out, base = tmp_path / "kept.jsonl", tmp_path / "random.jsonl"
    # exact duplicates of the first records: the default dedup flags them
    src = write_records(recs + [dict(r, id=100 + r["id"]) for r in recs[:4]], src)
    assert (
        _run(src, out, tiny_model_dir, "--token-ratio", "1.0", "--random-baseline", str(base)) == 0
    )
    assert "random baseline -> " in capsys.readouterr().out
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    rows = [json.loads(line) for line in base.read_text().splitlines()]
    assert len(rows) == len(kept) == 5
    idx = [r["qtuning_index"] for r in rows]
    assert len(set(idx)) == len(idx)
    kept_idx = {r["qtuning_index"] for r in kept}
    assert all(r["qtuning_in_kept_set"] == (r["qtuning_index"] in kept_idx) for r in rows)
    sel = dict(zip(*pq.read_table(f"{out}.scores.parquet").select(["index", "selection"]).to_pydict().values()))  # fmt: skip
    assert all(sel[r["qtuning_index"]] in ("duplicate", "abrupt end", "misaligned")
               for r in rows if not r["qtuning_in_kept_set"])  # fmt: skip
    by_index = {r["qtuning_index"]: r for r in kept}
    for r in rows:  # a random subset prunes no response token (nor does --token-ratio 1.0)
        assert sum(t != -100 for t in r["labels"]) > 0
        if r["qtuning_in_kept_set"]:
            assert r["labels"] == by_index[r["qtuning_index"]]["labels"]
    man = json.loads(Path(f"{out}.manifest.json").read_text())
    assert man["outputs"]["random_baseline"] == str(base)
    assert man["counts"]["n_random_baseline_swapped"] == sum(
        not r["qtuning_in_kept_set"] for r in rows
    )


def test_random_baseline_needs_the_random_fill(tmp_path, tiny_model_dir, capsys):
    src = write_records(_records(), tmp_path / "in.jsonl")
    args = ("--fill", "uniform", "--random-baseline", str(tmp_path / "r.jsonl"))
    assert _run(src, tmp_path / "kept.jsonl", tiny_model_dir, *args) == 2
    assert "--random-baseline needs --fill random" in capsys.readouterr().err
