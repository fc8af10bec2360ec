"""Nothing a user hands the toolkit runs code on load: ``torch.load`` only with
``weights_only=True``, no pickle, and remote code only behind an explicit opt-in."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CODE = [REPO / d for d in ("dataprune", "rag", "agents", "benchmarks", "scripts")]


def _calls(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def _dotted(func: ast.expr) -> str:
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def _kw(call: ast.Call, name: str):
    for k in call.keywords:
        if k.arg == name:
            return k.value.value if isinstance(k.value, ast.Constant) else k.value
    return None


def _problems(paths) -> list[str]:
    found = []
    for path in paths:
        for call in _calls(path):
            name = _dotted(call.func)
            rel = path.relative_to(REPO) if path.is_relative_to(REPO) else path.name
            where = f"{rel}:{call.lineno}"
            if name == "torch.load" and _kw(call, "weights_only") is not True:
                found.append(f"{where} torch.load without weights_only=True")
            if name.split(".")[0] in ("pickle", "cloudpickle", "joblib", "dill") and (
                name.endswith(".load") or name.endswith(".loads")
            ):
                found.append(f"{where} {name}")
            if _kw(call, "trust_remote_code") is True:  # only the user's own value may pass
                found.append(f"{where} trust_remote_code=True")
    return found


def test_no_unsafe_loading_in_the_code():
    paths = sorted(p for root in CODE if root.is_dir() for p in root.rglob("*.py"))
    assert _problems(paths) == []


def test_the_check_finds_unsafe_loading(tmp_path):
    bad = tmp_path / "probe.py"
    code = (
        "import pickle, torch\n"
        "a = torch.load('x')\n"
        "b = torch.load('x', weights_only=False)\n"
        "c = pickle.load(open('x', 'rb'))\n"
        "d = AutoModel.from_pretrained('x', trust_remote_code=True)\n"
        "e = torch.load('x', weights_only=True)\n"
    )
    bad.write_text(code)
    found = _problems([bad])
    assert [f.split(" ", 1)[1] for f in found] == [
        "torch.load without weights_only=True",
        "torch.load without weights_only=True",
        "pickle.load",
        "trust_remote_code=True",
    ]


def test_remote_code_opt_in_is_the_only_trust_in_the_pruner():
    """In rag/loading.py the user's ``trust_remote_code`` reaches transformers only after the
    explicit checks (opt-in given, revision pinned)."""
    src = (REPO / "rag" / "loading.py").read_text()
    i = src.index("model = AutoModel.from_pretrained(")
    call = src[i : src.index(")", i)]
    assert "trust_remote_code=trust_remote_code," in call and "revision=revision," in call
    assert src.index("if not trust_remote_code:") < i and src.index("if not revision:") < i
