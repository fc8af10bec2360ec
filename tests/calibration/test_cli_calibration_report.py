from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataprune.calibration import build_calibration_set
from dataprune.cli.main import main
from dataprune.io import write_records


@pytest.fixture()
def files(tmp_path, tok, pool):
    """Two saved sets (a .npz and a prune-model-like folder) and a reference JSONL."""
    src = ["web" if i < 48 else "math" for i in range(64)]
    mixed = build_calibration_set(
        pool, tok, n_samples=4, seq_len=8, sources=src, mix="balanced", random_state=0
    )
    mixed.save(tmp_path / "balanced.npz")
    (tmp_path / "pruned").mkdir()
    build_calibration_set(pool, tok, n_samples=4, seq_len=8, random_state=1).save(
        tmp_path / "pruned" / "calibration.npz"
    )
    ref = write_records([{"body": t} for t in pool[::3]], tmp_path / "ref.jsonl")
    return tmp_path, ref


def _argv(tmp_path, ref, lm_dir, *extra):
    return [
        "calibration-report",
        str(tmp_path / "balanced.npz"),
        str(tmp_path / "pruned"),
        "--reference",
        str(ref),
        "--text-field",
        "body",
        "--model",
        str(lm_dir),
        "--dtype",
        "float32",
        *extra,
    ]


def test_cli_writes_json_and_manifest_atomically(files, lm_dir, capsys):
    # atomic: both files complete and no temporary file left behind (checked at the end)
    tmp_path, ref = files
    out = tmp_path / "report.json"
    rc = main(_argv(tmp_path, ref, lm_dir, "--layers", "0,-1", "-o", str(out)))
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert out.is_file() and Path(f"{out}.manifest.json").is_file()
    data = json.loads(out.read_text())
    assert data["layers"] == [0, 5]
    assert [s["name"] for s in data["sets"]] == ["balanced", "pruned"]
    balanced, pruned = data["sets"]
    assert balanced["sources"] == {
        "web": {"count": 2, "share": 0.5},
        "math": {"count": 2, "share": 0.5},
    }
    assert pruned["sources"] is None and pruned["n_samples"] == 4 and pruned["n_tokens"] == 32
    assert set(balanced["coverage"]) == {"0", "5"} and balanced["coverage_mean"] > 0
    assert data["reference"]["n_texts"] == 22 and data["reference"]["seq_len"] == 8
    manifest = json.loads((tmp_path / "report.json.manifest.json").read_text())
    assert manifest["command"] == "dataprune calibration-report"
    assert manifest["counts"]["n_sets"] == 2
    assert "| set | samples | tokens |" in captured.out and "| balanced | 4 | 32 |" in captured.out
    assert "web 50%, math 50%" in captured.out
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_cli_names_and_default_layers(files, lm_dir, capsys):
    tmp_path, ref = files
    out = tmp_path / "named.json"
    argv = _argv(tmp_path, ref, lm_dir, "--name", "a", "--name", "b", "-o", str(out))
    assert main(argv) == 0, capsys.readouterr().err
    data = json.loads(out.read_text())
    assert [s["name"] for s in data["sets"]] == ["a", "b"] and data["layers"] == [1, 3, 5]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"set": "missing.npz"}, "missing.npz: no such file; expected a .npz file written by"),
        ({"extra": ["--layers", "mid"]}, "--layers expects 'auto' or comma-separated"),
        ({"extra": ["--name", "only-one"]}, "1 --name for 2 calibration sets"),
        ({"out": "report.txt"}, "expected an output path ending in .json"),
    ],
)
def test_cli_bad_inputs_exit_2_with_one_line(files, lm_dir, capsys, change, expected):
    tmp_path, ref = files
    argv = _argv(tmp_path, ref, lm_dir, *change.get("extra", []))
    if "set" in change:
        argv[1] = str(tmp_path / change["set"])
    argv[argv.index("--model") + 1] = str(tmp_path / "no-such-model")  # fails before loading
    out = tmp_path / change.get("out", "report.json")
    before = sorted(p.name for p in tmp_path.iterdir())
    capsys.readouterr()
    assert main([*argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("dataprune calibration-report: error: ") and expected in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_cli_layer_out_of_range(files, lm_dir, capsys):
    tmp_path, ref = files
    out = tmp_path / "report.json"
    assert main(_argv(tmp_path, ref, lm_dir, "--layers", "9", "-o", str(out))) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after transformers' loading bar
    assert last == (
        "dataprune calibration-report: error: layer 9 is out of range: the model has 6 decoder "
        "blocks (valid: -6..5)"
    )
    assert not out.exists()
