"""The I/O promises of every sub-command, as a matrix: each bad output place and each bad input
gives exit status 2 and one line on stderr naming the path / record / option, no traceback, no
file written, and every input byte-identical afterwards. Bad outputs are found before any model
or data is loaded (each case here returns in well under a second)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dataprune.cli.main import main

# command -> (argv template, kind of its main output). {in} is a JSONL of {"text", "label"},
# {sft} prompt/response records, {rec} AGP records, {top} a topology, {agents} an agent pool,
# {squad} a SQuAD v2 file; {out} is the output path.
COMMANDS: dict[str, tuple[list[str], str]] = {
    "select": (["select", "{in}", "-m", "kcenter", "--n-samples", "1", "-o", "{out}"], "file"),
    "embed": (["embed", "{in}", "-o", "{out}"], "file"),
    "rag prune": (["rag", "prune", "--query", "q", "--input", "{in}", "-o", "{out}"], "file"),
    "triage": (
        [
            "triage",
            "{sft}",
            "--prompt-field",
            "prompt",
            "--response-field",
            "response",
            "-o",
            "{out}",
        ],
        "file",
    ),
    "prune-model": (
        ["prune-model", "--sparsity", "0.5", "--calibration", "{in}", "-o", "{out}"],
        "dir",
    ),
    "agents train": (["agents", "train", "--records", "{rec}", "-o", "{out}"], "dir"),
    "agents export": (
        ["agents", "export", "--format", "mermaid", "--topology", "{top}", "-o", "{out}"],
        "file",
    ),
    "rag train": (["rag", "train", "--data", "{squad}", "--output", "{out}"], "dir"),
    "demo": (["demo", "--steps", "dedup", "--output-dir", "{out}"], "dir"),
    "curate": (
        ["curate", "{sft}", "--recipe", "dedup", "--on-bad-record", "error", "-o", "{out}"],
        "file",
    ),
}
# where each command reads the input that the bad-input cases replace
MAIN_INPUT = {
    "select": "in",
    "embed": "in",
    "rag prune": "in",
    "triage": "sft",
    "curate": "sft",
    "prune-model": "in",
    "agents train": "rec",
    "agents export": "top",
}


@pytest.fixture()
def workspace(tmp_path):
    from dataprune.agents import Topology
    from dataprune.agents.spec import as_agent_specs

    files = {}
    rows = [{"text": f"record {i} about topic {i % 3}", "label": f"t{i % 3}"} for i in range(6)]
    files["in"] = tmp_path / "in.jsonl"
    files["in"].write_text("".join(json.dumps(r) + "\n" for r in rows))
    files["sft"] = tmp_path / "sft.jsonl"
    files["sft"].write_text(
        "".join(json.dumps({"prompt": f"q{i}?", "response": f"a{i}."}) + "\n" for i in range(4))
    )
    agents = [{"name": f"agent_{i}", "role": "solver"} for i in range(3)]
    files["agents"] = tmp_path / "agents.json"
    files["agents"].write_text(json.dumps(agents))
    files["top"] = tmp_path / "top.json"
    files["top"].write_text(Topology.preset("chain", list(as_agent_specs(agents))).to_json())
    files["rec"] = tmp_path / "recs.json"
    files["rec"].write_text(
        json.dumps([{"task": "t", "edge_weight": [[0.0] * 3] * 3, "mask": [[1] * 3] * 3}])
    )
    files["squad"] = tmp_path / "squad.json"
    files["squad"].write_text(json.dumps({"version": "v2.0", "data": []}))
    return tmp_path, files


def _argv(command: str, files: dict, out: str, **replace: str) -> list[str]:
    template, _ = COMMANDS[command]
    values = {k: str(v) for k, v in files.items()} | {"out": out} | replace
    return [part.format(**values) for part in template]


def _snapshot(root: Path) -> dict[str, str]:
    """Every file and folder below ``root`` (following nothing) -> content hash / 'dir'."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = "dir"
        for f in filenames:
            p = Path(dirpath) / f
            out[os.path.relpath(p, root)] = (
                "link" if p.is_symlink() else hashlib.sha256(p.read_bytes()).hexdigest()
            )
    return out


def _run_refused(argv: list[str], root: Path, capsys, *expected: str) -> str:
    before = _snapshot(root)
    capsys.readouterr()
    status = main(argv)
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert status == 2, (argv, captured.out, err)
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, (text, err)
    assert _snapshot(root) == before, "a file was written, removed or changed"
    return err


@pytest.fixture(scope="session")
def read_only_dir(tmp_path_factory):
    """A folder nothing can be written into: a read-only tmpfs for root, else chmod 0555."""
    d = tmp_path_factory.mktemp("read-only")
    if os.geteuid() != 0:
        d.chmod(0o555)
        yield d
        d.chmod(0o755)
        return
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(d)], capture_output=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot make a read-only folder as root here: {r.stderr.decode().strip()}")
    try:
        yield d
    finally:
        subprocess.run(["umount", str(d)], capture_output=True)


def _out_name(command: str) -> str:
    if command == "embed":
        return "out.npy"
    return "out.jsonl" if COMMANDS[command][1] == "file" else "outdir"


# ---------------------------------------------------------------------------- bad outputs
@pytest.mark.parametrize("command", list(COMMANDS))
def test_output_is_the_input(command, workspace, capsys):
    root, files = workspace
    kind = COMMANDS[command][1]
    if command == "demo":
        pytest.skip("the demo reads no input file")
    key = MAIN_INPUT.get(command, "squad")
    src = files[key]
    if kind == "file":
        argv = _argv(command, files, str(src))
        if command == "embed":  # .npy outputs only: the input named .npy
            npy = root / "in.npy"
            src.rename(npy)
            files[key] = npy
            argv = _argv(command, files, str(npy))
        _run_refused(argv, root, capsys, "inputs are never overwritten")
    else:  # the folder holding the input
        _run_refused(_argv(command, files, str(root)), root, capsys, "never overwritten")


@pytest.mark.parametrize("command", [c for c, (_, k) in COMMANDS.items() if k == "file"])
def test_output_is_the_input_through_a_symlink(command, workspace, capsys):
    root, files = workspace
    key = MAIN_INPUT[command]
    link = root / ("link.npy" if command == "embed" else "link.jsonl")
    if command == "embed":
        npy = root / "in.npy"
        files[key].rename(npy)
        files[key] = npy
    link.symlink_to(files[key])
    _run_refused(_argv(command, files, str(link)), root, capsys, "inputs are never overwritten")
    # and through a linked folder
    alias = root / "alias"
    alias.symlink_to(root, target_is_directory=True)
    through = alias / files[key].name
    _run_refused(_argv(command, files, str(through)), root, capsys, "never overwritten")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_output_of_the_wrong_kind(command, workspace, capsys):
    root, files = workspace
    kind = COMMANDS[command][1]
    if kind == "file":
        folder = root / ("folder.npy" if command == "embed" else "folder.jsonl")
        folder.mkdir()
        _run_refused(_argv(command, files, str(folder)), root, capsys, str(folder), "is a folder")
    else:
        f = root / "a-file"
        f.write_text("x")
        _run_refused(_argv(command, files, str(f)), root, capsys, str(f), "is a file")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_output_under_a_file(command, workspace, capsys):
    root, files = workspace
    blocker = root / "blocker"
    blocker.write_text("x")
    out = blocker / "sub" / _out_name(command)
    _run_refused(_argv(command, files, str(out)), root, capsys, str(out), "is a file")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_unwritable_output_place(command, workspace, read_only_dir, capsys):
    root, files = workspace
    out = read_only_dir / _out_name(command)
    err = _run_refused(_argv(command, files, str(out)), root, capsys, str(out), "cannot write")
    assert "read-only" in err or "permission denied" in err
    assert not out.exists()


@pytest.mark.parametrize("command", [c for c, (_, k) in COMMANDS.items() if k == "dir"])
def test_non_empty_output_folder_needs_overwrite(command, workspace, capsys):
    root, files = workspace
    if command == "demo":
        pytest.skip("the demo writes into its own folder again by design")
    folder = root / "taken"
    folder.mkdir()
    (folder / "keep.txt").write_text("precious")
    _run_refused(_argv(command, files, str(folder)), root, capsys, str(folder), "--overwrite")
    assert (folder / "keep.txt").read_text() == "precious"


# ---------------------------------------------------------------------------- bad inputs
BAD_INPUTS = {
    "missing file": (None, "no such file"),
    "malformed JSONL": ('{"text": "a", "label": "x"}\n{"text": \n', "malformed JSON"),
    "wrong type": ('{"text": 5, "label": "x"}\n', "expected a string"),
    "CSV row with extra cells": ("text,label\na,x\nb,y,z\n", "row has 3 cells"),
    "duplicate CSV header": ("text,text\na,b\n", "duplicate column name 'text'"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
@pytest.mark.parametrize("command", list(MAIN_INPUT))
def test_bad_input(command, case, workspace, capsys):
    root, files = workspace
    key = MAIN_INPUT[command]
    content, expected = BAD_INPUTS[case]
    is_csv = "CSV" in case
    if key in ("rec", "top") and (is_csv or case == "wrong type"):
        pytest.skip("agents commands read JSON files only")
    if key == "sft" and content is not None:
        content = content.replace('"text"', '"prompt"').replace('"label"', '"response"')
        content = content.replace("text,label", "prompt,response").replace(
            "text,text", "prompt,prompt"
        )
        expected = expected.replace("'text'", "'prompt'")
    bad = root / ("bad.csv" if is_csv else "bad.jsonl" if key not in ("rec", "top") else "bad.json")
    if content is not None:
        bad.write_text(content)
    files[key] = bad
    out = root / _out_name(command)
    err = _run_refused(_argv(command, files, str(out)), root, capsys, str(bad))
    if key in ("rec", "top"):
        assert "no such file" in err or "not found" in err or "malformed JSON" in err, err
    else:
        assert expected in err, err
    assert not out.exists()


# ---------------------------------------------------------------------------- options
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["demo", "--steps", "bogus"], "unknown demo step(s) 'bogus'; valid: dedup"),
        (["agents", "predict", "--model", "m", "--query", "q", "--token-budget", "-5"], ">= 0"),
        (["rag", "prune", "--query", "q", "--input", "x", "-o", "y", "--max-tokens", "-1"], ">= 0"),
        (["agents", "train", "--records", "r", "-o", "o", "--epochs", "0"], ">= 1"),
        (["select"], "required"),
    ],
)
def test_bad_options_are_one_line(argv, expected, tmp_path, capsys):
    before = _snapshot(tmp_path)
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse
        status = exc.code
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1 and expected in err, err
    assert _snapshot(tmp_path) == before


def test_device_is_checked_before_the_model_loads(workspace, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    root, files = workspace
    argv = [*_argv("triage", files, str(root / "o.jsonl")), "--device", "cuda:7"]
    _run_refused(argv, root, capsys, "device 'cuda:7'", "CUDA is not available")


def test_selector_option_values_are_checked_before_embedding(workspace, capsys, monkeypatch):
    import dataprune.models as models

    def no_loading(*a, **k):
        raise AssertionError("an encoder was loaded before the options were checked")

    monkeypatch.setattr(models, "load_encoder", no_loading)
    root, files = workspace
    argv = ["select", str(files["in"]), "-m", "prototypes", "--n-samples", "2", "-O"]
    argv += ["keep=medium", "-o", str(root / "o.jsonl")]
    _run_refused(argv, root, capsys, "keep must be 'hard' or 'easy', got 'medium'")


def test_usage_errors_are_one_line_in_a_real_process(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "dataprune.cli.main", "agents", "export", "--format", "nope"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "invalid choice: 'nope'" in lines[0], r.stderr
