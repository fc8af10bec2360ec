from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from dataprune.cli.main import main
from dataprune.io import write_records

from fakes import HashingEncoder


def run_cli(*args):
    return main(list(args))


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys; from dataprune.cli.main import build_parser; build_parser();"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'faiss', 'datasets', 'numpy')"
        " if m in sys.modules]; print(heavy); assert not heavy"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_help_exits_zero():
    r = subprocess.run(
        [sys.executable, "-m", "dataprune.cli.main", "--help"], capture_output=True, text=True
    )
    assert r.returncode == 0 and "demo" in r.stdout and "env" in r.stdout


def test_no_command_prints_help_and_exit_2(capsys):
    assert run_cli() == 2


@pytest.fixture()
def fake_encoder(monkeypatch):
    import dataprune.models as models

    enc = HashingEncoder()
    monkeypatch.setattr(models, "load_encoder", lambda *a, **k: enc)
    return enc


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"text": "a"}\n{"text": \n', "line 2: malformed JSON"),
        (
            '{"text": "a"}\n{"text": 5}\n',
            "line 2, record 1, field 'text': expected a string, got int",
        ),
        ('{"txt": "a"}\n', "field 'text': missing field"),
        ("", "the dataset is empty"),
        ('{"text": "a"}\n7\n', "line 2: expected a JSON object"),
    ],
)
def test_bad_inputs_give_one_line_and_exit_2(tmp_path, capsys, fake_encoder, content, expected):
    src = tmp_path / "in.jsonl"
    src.write_text(content)
    status = run_cli("embed", str(src), "--text-field", "text", "-o", str(tmp_path / "out.npy"))
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert expected in err and "in.jsonl" in err
    assert not (tmp_path / "out.npy").exists()


def test_bad_input_subprocess_has_no_traceback(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": 5}\n')
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "dataprune.cli.main",
            "embed",
            str(src),
            "--text-field",
            "text",
            "-o",
            str(tmp_path / "o.npy"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"dataprune embed: error: {src}, line 1, record 0, field 'text': expected a string, got int"
    ]


def test_output_equal_to_input_refused(tmp_path, capsys, fake_encoder):
    src = tmp_path / "in.npy"
    src.write_text("x")
    assert run_cli("embed", str(src), "--text-field", "text", "-o", str(src)) == 2
    assert "same file" in capsys.readouterr().err
    assert src.read_text() == "x"


def test_embed_skip_writes_rejects_and_manifest(tmp_path, capsys, fake_encoder):
    src = tmp_path / "in.jsonl"
    write_records([{"text": "a"}, {"text": None}, {"text": "c"}], src)
    before = src.read_bytes()
    out = tmp_path / "out.npy"
    assert (
        run_cli(
            "embed", str(src), "--text-field", "text", "-o", str(out), "--on-bad-record", "skip"
        )
        == 0
    )
    assert "skipped 1 bad records" in capsys.readouterr().out
    X = np.load(out)
    assert X.shape == (2, 16)
    rejects = [
        json.loads(line) for line in (tmp_path / "out.npy.rejects.jsonl").read_text().splitlines()
    ]
    assert rejects[0]["index"] == 1
    manifest = json.loads((tmp_path / "out.npy.manifest.json").read_text())
    assert manifest["counts"] == {"n_input": 3, "n_output": 2, "n_rejected": 1}
    assert manifest["command"] == "dataprune embed"
    assert len(next(iter(manifest["inputs"].values()))) == 64
    assert manifest["wall_time_s"] >= 0
    assert src.read_bytes() == before


def test_prompt_response_fields_must_come_together(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    write_records([{"p": "a", "r": "b"}], src)
    assert run_cli("embed", str(src), "--prompt-field", "p", "-o", str(tmp_path / "o.npy")) == 2
    assert "together" in capsys.readouterr().err


def test_env_json(capsys):
    assert run_cli("env", "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["models"]["encoder"]["source"] == "offline-package"
    assert "cpu_threads" in info["devices"]
    import torch

    assert info["devices"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    from dataprune.precision import cpu_has_fast_bf16

    fast = cpu_has_fast_bf16()  # the machine's own answer, whichever it is
    assert info["devices"]["auto_dtype_cpu"] == ("bfloat16" if fast else "float32")
    assert bool(info["devices"]["cpu_bf16_flags"]) is fast


@pytest.mark.offline_models
def test_demo_runs_end_to_end(tmp_path, capsys):
    assert run_cli("demo", "--output-dir", str(tmp_path), "--steps", "dedup") == 0
    out = capsys.readouterr().out
    assert "injected copies recovered" in out
    report = json.loads((tmp_path / "near_duplicates.json").read_text())
    assert report["n_records"] == 176
    assert len(report["pairs"]) >= 1
