"""``dataprune select`` end to end (hashing encoder for wiring; exit codes and files)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from dataprune.cli.main import main
from dataprune.io import load_records, write_records

from fakes import HashingEncoder


@pytest.fixture()
def fake_encoder(monkeypatch, isolated_cache):
    import dataprune.models as models

    enc = HashingEncoder()
    monkeypatch.setattr(models, "load_encoder", lambda *a, **k: enc)
    return enc


def _records(n=30):
    return [
        {
            "id": f"r{i}",
            "text": f"question {i} about topic {i % 4} " * (1 + i % 3),
            "label": f"t{i % 4}",
        }
        for i in range(n)
    ]


@pytest.fixture()
def src(tmp_path):
    return write_records(_records(), tmp_path / "in.jsonl")


@pytest.mark.parametrize(
    "method", ["random", "kcenter", "facility_location", "semdedup", "prototypes"]
)
def test_writes_exact_budget_manifest_and_scores(tmp_path, capsys, fake_encoder, src, method):
    out = tmp_path / "out.jsonl"
    before = src.read_bytes()
    status = main(
        [
            "select",
            str(src),
            "--method",
            method,
            "--n-samples",
            "12",
            "--text-field",
            "text",
            "--output",
            str(out),
        ]
    )
    assert status == 0, capsys.readouterr().err
    assert src.read_bytes() == before  # the input is never modified
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(kept) == 12 and len({r["id"] for r in kept}) == 12
    manifest = json.loads((tmp_path / "out.jsonl.manifest.json").read_text())
    assert manifest["command"] == "dataprune select"
    assert manifest["parameters"]["method"] == method and manifest["parameters"]["budget"] == 12
    assert manifest["counts"]["n_input"] == 30 and manifest["counts"]["n_output"] == 12
    assert manifest["random_state"] == 0
    assert manifest["inputs"][str(src)]
    scores = pd.read_parquet(tmp_path / "out.jsonl.scores.parquet")
    assert len(scores) == 30 and scores["index"].tolist() == list(range(30))
    assert {"index", "score", "kept", "rank", "status"} <= set(scores.columns)
    assert scores["kept"].sum() == 12
    kept_ids = {f"r{i}" for i in scores.loc[scores["kept"], "index"]}
    assert kept_ids == {r["id"] for r in kept}
    assert sorted(scores.loc[scores["kept"], "rank"]) == list(range(12))
    assert "kept 12 of 30 records" in capsys.readouterr().out


def test_fraction_and_formats(tmp_path, capsys, fake_encoder):
    pq = write_records(_records(), tmp_path / "in.parquet")
    assert (
        main(
            [
                "select",
                str(pq),
                "--method",
                "random",
                "--fraction",
                "0.5",
                "-o",
                str(tmp_path / "o.parquet"),
            ]
        )
        == 0
    )
    assert len(load_records(tmp_path / "o.parquet")) == 15
    cs = write_records(_records(), tmp_path / "in.csv")
    assert (
        main(
            [
                "select",
                str(cs),
                "-m",
                "class_balanced",
                "--n-samples",
                "8",
                "--label-field",
                "label",
                "-o",
                str(tmp_path / "o.csv"),
            ]
        )
        == 0
    )
    with open(tmp_path / "o.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8 and sorted(r["label"] for r in rows) == [
        "t0",
        "t0",
        "t1",
        "t1",
        "t2",
        "t2",
        "t3",
        "t3",
    ]


def test_same_seed_same_output(tmp_path, fake_encoder, src):
    for name in ("a", "b"):
        assert (
            main(
                [
                    "select",
                    str(src),
                    "-m",
                    "semdedup",
                    "--fraction",
                    "0.4",
                    "--text-field",
                    "text",
                    "--random-state",
                    "5",
                    "-o",
                    str(tmp_path / f"{name}.jsonl"),
                ]
            )
            == 0
        )
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()


def test_method_options(tmp_path, capsys, fake_encoder, src):
    out = tmp_path / "o.jsonl"
    assert (
        main(
            [
                "select",
                str(src),
                "-m",
                "el2n",
                "--n-samples",
                "6",
                "--text-field",
                "text",
                "--label-field",
                "label",
                "-O",
                "offset=0.1",
                "-O",
                "n_runs=2",
                "-O",
                'proxy={"epochs": 2}',
                "-o",
                str(out),
            ]
        )
        == 0
    )
    manifest = json.loads((tmp_path / "o.jsonl.manifest.json").read_text())
    assert manifest["parameters"]["options"] == {"offset": 0.1, "n_runs": 2, "proxy": {"epochs": 2}}
    scores = pd.read_parquet(tmp_path / "o.jsonl.scores.parquet")
    assert {"el2n", "grand"} <= set(scores.columns)


def test_empty_text_reported(tmp_path, capsys, fake_encoder):
    recs = _records(10)
    recs[2]["text"] = ""
    recs[6]["text"] = "  "
    p = write_records(recs, tmp_path / "in.jsonl")
    assert (
        main(
            [
                "select",
                str(p),
                "-m",
                "kcenter",
                "--fraction",
                "1.0",
                "--text-field",
                "text",
                "-o",
                str(tmp_path / "o.jsonl"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "2 records have empty text (excluded): input positions 2, 6" in out
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 8
    manifest = json.loads((tmp_path / "o.jsonl.manifest.json").read_text())
    assert manifest["empty_text_indices"] == [2, 6] and manifest["counts"]["n_empty_text"] == 2
    scores = pd.read_parquet(tmp_path / "o.jsonl.scores.parquet")
    assert scores.loc[[2, 6], "status"].tolist() == ["empty_text", "empty_text"]


def test_bad_records_skipped_and_listed(tmp_path, capsys, fake_encoder):
    p = tmp_path / "in.jsonl"
    lines = [json.dumps(r) for r in _records(6)]
    lines[3] = '{"id": "r3", "text": 5}'
    lines.insert(1, "{broken")
    p.write_text("\n".join(lines) + "\n")
    assert (
        main(
            [
                "select",
                str(p),
                "-m",
                "random",
                "--n-samples",
                "3",
                "--text-field",
                "text",
                "--on-bad-record",
                "skip",
                "-o",
                str(tmp_path / "o.jsonl"),
            ]
        )
        == 0
    )
    assert "skipped 2 bad records" in capsys.readouterr().out
    rejects = (tmp_path / "o.jsonl.rejects.jsonl").read_text().splitlines()
    assert len(rejects) == 2
    scores = pd.read_parquet(tmp_path / "o.jsonl.scores.parquet")
    assert len(scores) == 7 and (scores["status"] == "rejected").sum() == 2


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-m", "nope", "--n-samples", "3"], "unknown selection method 'nope'; valid: ccs"),
        (["-m", "random", "--n-samples", "0"], "--n-samples must be >= 1"),
        (["-m", "random", "--n-samples", "31"], "n_samples=31 is more than the 30 records"),
        (["-m", "random", "--fraction", "0"], r"--fraction must be in (0, 1]"),
        (["-m", "random", "--fraction", "1.2"], r"--fraction must be in (0, 1]"),
        (
            ["-m", "prototypes", "--n-samples", "3", "-O", "k=3", "--text-field", "text"],
            "unknown option(s) 'k' for method 'prototypes'",
        ),
        (["-m", "el2n", "--n-samples", "3", "--text-field", "text"], "needs labels"),
        (["-m", "random", "--n-samples", "3", "--text-field", "nope"], "field 'nope': missing"),
        (["-m", "random", "--n-samples", "3", "--against-random", "-1"], "--against-random must"),
    ],
)
def test_errors_one_line_exit_2(tmp_path, capsys, fake_encoder, src, args, expected):
    out = tmp_path / "o.jsonl"
    status = main(["select", str(src), *args, "-o", str(out)])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert len(err.splitlines()) == 1 and expected in err, err
    assert not out.exists()


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("knn_method=annoy", "unknown kNN method 'annoy'; valid: auto, cells, exact, hnsw, ivf"),
        ("ef_search=0", "ef_search must be an integer >= 1 or None, got 0"),
    ],
)
def test_knn_options_fail_before_any_text_is_embedded(
    tmp_path, capsys, monkeypatch, src, option, expected
):
    import dataprune.models as models

    def refuse(*a, **k):
        raise AssertionError("the encoder was loaded before the options were checked")

    monkeypatch.setattr(models, "load_encoder", refuse)
    out = tmp_path / "o.jsonl"
    args = ["-m", "facility_location", "--n-samples", "3", "-O", option, "-o", str(out)]
    assert main(["select", str(src), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err, err
    assert not out.exists()


def test_output_same_as_input_refused(capsys, src):
    assert main(["select", str(src), "-m", "random", "--n-samples", "3", "-o", str(src)]) == 2
    assert "inputs are never overwritten" in capsys.readouterr().err


def test_budget_required_and_exclusive(src, tmp_path):
    for extra in ([], ["--n-samples", "3", "--fraction", "0.5"]):
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "dataprune.cli.main",
                "select",
                str(src),
                "-m",
                "random",
                "-o",
                str(tmp_path / "o.jsonl"),
                *extra,
            ],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 2 and "Traceback" not in r.stderr


@pytest.mark.offline_models
def test_real_encoder_semdedup_finds_paraphrased_copies(tmp_path, capsys, isolated_cache):
    base = [
        "How do I reverse a list in Python?",
        "What is the capital city of Australia?",
        "Explain the difference between TCP and UDP.",
        "Write a haiku about autumn leaves.",
        "How many bones are in the adult human body?",
        "What causes the seasons on Earth?",
    ]
    recs = [{"text": t} for t in base]
    recs += [
        {"text": "how do i reverse a list in python"},
        {"text": "What is the capital city of Australia ?"},
    ]
    p = write_records(recs, tmp_path / "in.jsonl")
    assert (
        main(
            [
                "select",
                str(p),
                "-m",
                "semdedup",
                "--n-samples",
                "6",
                "--text-field",
                "text",
                "-O",
                "n_clusters=2",
                "-o",
                str(tmp_path / "o.jsonl"),
            ]
        )
        == 0
    )
    manifest = json.loads((tmp_path / "o.jsonl.manifest.json").read_text())
    groups = sorted(sorted(g) for g in manifest["details"]["duplicate_groups"])
    assert groups == [[0, 6], [1, 7]]
    kept = [json.loads(x)["text"] for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert len(kept) == 6
    assert sum(t.lower().startswith("how do i reverse") for t in kept) == 1
    assert np.isfinite(pd.read_parquet(tmp_path / "o.jsonl.scores.parquet")["score"]).all()


def test_help_lists_every_registered_method():
    from dataprune.cli.select import _METHOD_HELP
    from dataprune.selection import METHODS

    assert set(_METHOD_HELP.split(", ")) == set(METHODS.names())


def test_text_field_defaults_to_text(tmp_path, capsys, fake_encoder, src):
    out = tmp_path / "o.jsonl"
    assert main(["select", str(src), "-m", "kcenter", "--n-samples", "3", "-o", str(out)]) == 0
    named = tmp_path / "n.jsonl"
    args = ["select", str(src), "-m", "kcenter", "--n-samples", "3", "--text-field", "text"]
    assert main([*args, "-o", str(named)]) == 0
    assert out.read_text() == named.read_text()
    bodies = write_records([{"body": "x y"}, {"body": "z"}], tmp_path / "b.jsonl")
    capsys.readouterr()
    bad = tmp_path / "bad.jsonl"
    status = main(["select", str(bodies), "-m", "kcenter", "--n-samples", "1", "-o", str(bad)])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1
    assert "no 'text' field (record 0 has 'body')" in err and "--text-field" in err
    assert not bad.exists()


def test_against_random_prints_and_saves_each_measure(tmp_path, capsys, fake_encoder, src):
    out = tmp_path / "o.jsonl"
    args = ["select", str(src), "-m", "kcenter", "--n-samples", "10", "--text-field", "text"]
    assert main([*args, "--label-field", "label", "--against-random", "12", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "kept set against 12 random subsets of the same size (10 records)" in printed
    assert "embedding coverage" in printed and "classes present (of 4)" in printed
    saved = json.loads((tmp_path / "o.jsonl.manifest.json").read_text())["against_random"]
    assert [c["name"] for c in saved] == [
        "coverage",
        "classes_present",
        "label_distance",
        "label_imbalance",
    ]
    cov = saved[0]
    assert cov["n_subsets"] == 12 and cov["better"] == "higher"
    assert cov["verdict"] in printed.split("embedding coverage")[1].splitlines()[0]
    assert main([*args, "-o", str(tmp_path / "plain.jsonl")]) == 0
    assert "random subsets" not in capsys.readouterr().out
    plain = json.loads((tmp_path / "plain.jsonl.manifest.json").read_text())
    assert plain["against_random"] == []
