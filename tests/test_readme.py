"""The documented command lines are real: every ``dataprune ...`` line of the README and of the
pages under ``docs/`` parses with the current options, and the cheap ones run as written on small
data in the file names the documentation uses."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from dataprune.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def _documents() -> list[Path]:
    """The README and every Markdown page under ``docs/``."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def _commands_in(path: Path) -> list[str]:
    """``dataprune`` command lines of one file's bash blocks (continuations joined)."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S):
        block = block.replace("\\\n", " ")
        for line in block.splitlines():
            line = line.split("   #")[0].split("  #")[0].strip()
            if ".venv/bin/dataprune" in line:
                line = line[line.index(".venv/bin/dataprune") + len(".venv/bin/") :]
            if line.startswith("dataprune "):
                out.append(line)
    return out


def _commands() -> list[str]:
    """Every documented command line, once (the README repeats some of the guides' examples)."""
    return list(dict.fromkeys(c for path in _documents() for c in _commands_in(path)))


def test_the_documentation_has_commands():
    # Every sub-command is documented somewhere, and the README keeps one example per job.
    commands = _commands()
    assert len(commands) >= 12, commands
    subcommands = {c.split()[1] for c in commands}
    assert {
        "demo",
        "embed",
        "env",
        "select",
        "triage",
        "prune-model",
        "rag",
        "agents",
    } <= subcommands
    assert len(_commands_in(README)) >= 8


@pytest.mark.parametrize("line", _commands())
def test_every_documented_command_parses(line):
    argv = shlex.split(line)[1:]
    args = build_parser().parse_args(argv)
    assert getattr(args, "run", None) is not None, line


@pytest.fixture()
def readme_files(tmp_path, monkeypatch):
    """The input files the documented examples name, small."""
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
