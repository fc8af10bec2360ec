"""The README's command lines are real: every ``dataprune ...`` line parses with the current
options, and the cheap ones run as written on small data in the file names the README uses."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from dataprune.cli.main import build_parser, main

README = Path(__file__).resolve().parents[1] / "README.md"


def _commands() -> list[str]:
    """``dataprune`` command lines of the README's bash blocks (continuations joined)."""
    text = README.read_text()
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        block = block.replace("\\\n", " ")
        for line in block.splitlines():
            line = line.split("   #")[0].split("  #")[0].strip()
            if ".venv/bin/dataprune" in line:
                line = line[line.index(".venv/bin/dataprune") + len(".venv/bin/") :]
            if line.startswith("dataprune "):
                out.append(line)
    return out


def test_the_readme_has_commands():
    assert len(_commands()) >= 10


@pytest.mark.parametrize("line", _commands())
def test_every_readme_command_parses(line):
    argv = shlex.split(line)[1:]
    args = build_parser().parse_args(argv)
    assert getattr(args, "run", None) is not None, line


@pytest.fixture()
def readme_files(tmp_path, monkeypatch):
    """The input files the README's examples name, small."""
    monkeypatch.chdir(tmp_path)
    topics = ["apples", "rivers", "music", "stars"]
    rows = [
        {
            "instruction": f"Tell me about {t} ({i}).",
            "output": f"{t.title()} are a topic; note {i}.",
            "text": f"A note about {t}, number {i}.",
        }
        for i in range(10)
        for t in topics
    ]
    for name in ("data.jsonl", "train.jsonl"):
        Path(name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    passages = [
        {"text": "Warsaw was founded in the 13th century. It rains a lot in autumn."},
        {"text": "The Vistula flows through Warsaw. Bread is baked daily."},
    ]
    Path("passages.jsonl").write_text("".join(json.dumps(p) + "\n" for p in passages))
    return tmp_path


@pytest.mark.offline_models
@pytest.mark.parametrize(
    "starts",
    [
        "dataprune embed data.jsonl",
        "dataprune select train.jsonl --method facility_location",
        "dataprune rag prune",
    ],
)
def test_cheap_readme_commands_run_as_written(starts, readme_files, capsys):
    (line,) = [c for c in _commands() if c.startswith(starts)]
    assert main(shlex.split(line)[1:]) == 0, capsys.readouterr().err
    out = shlex.split(line)[shlex.split(line).index("-o" if " -o " in line else "--output") + 1]
    assert Path(out).is_file() and Path(f"{out}.manifest.json").is_file()
