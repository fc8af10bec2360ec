"""Library code uses no private API of other packages (``obj._name`` that this project does not
define itself), so a new release of transformers, torch, datasets, ... cannot silently break it."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIBRARY = [REPO / "dataprune", REPO / "rag", REPO / "agents"]
# documented public API spelled with a leading underscore (collections.namedtuple)
PUBLIC_UNDERSCORE = {"_replace", "_asdict", "_fields", "_make", "_field_defaults"}


def _files() -> list[Path]:
    return sorted(p for root in LIBRARY for p in root.rglob("*.py"))


def _own_names(trees: dict[Path, ast.AST]) -> set[str]:
    """Every name the project itself defines: functions, classes, attributes, arguments, imports."""
    names: set[str] = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.arg, ast.keyword)) and node.arg:
                names.add(node.arg)  # also set_defaults(_parser=...) and similar
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                    names.add(node.attr)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
            elif (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", "") == "setattr"
                and len(node.args) > 1
                and isinstance(node.args[1], ast.Constant)
            ):
                names.add(str(node.args[1].value))
    for path in trees:  # private modules of our own packages
        names.add(path.stem)
    return names


def _private_uses(trees: dict[Path, ast.AST], own: set[str]) -> list[str]:
    found = []
    for path, tree in trees.items():
        for node in ast.walk(tree):
            name = None
            if isinstance(node, ast.Attribute):
                name = node.attr
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") in (
                "getattr",
                "hasattr",
            ):
                if len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                    name = str(node.args[1].value)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if not node.module.startswith("dataprune"):
                    parts = node.module.split(".") + [a.name for a in node.names]
                    hidden = [p for p in parts if p.startswith("_") and not p.startswith("__")]
                    if hidden:
                        found.append(f"{path.relative_to(REPO)}:{node.lineno} imports {hidden[0]}")
                continue
            if (
                name
                and name.startswith("_")
                and not name.startswith("__")
                and name not in own
                and name not in PUBLIC_UNDERSCORE
            ):
                found.append(f"{path.relative_to(REPO)}:{node.lineno} uses .{name}")
    return found


def test_library_code_uses_no_private_api_of_other_packages():
    trees = {p: ast.parse(p.read_text(), filename=str(p)) for p in _files()}
    assert _private_uses(trees, _own_names(trees)) == []


def test_the_check_finds_a_private_call(tmp_path):
    code = "def f(model):\n    return model.encoder._create_attention_masks(None)\n"
    trees = {REPO / "dataprune" / "x.py": ast.parse(code)}
    (hit,) = _private_uses(trees, _own_names(trees))
    assert hit.endswith("uses ._create_attention_masks")
    imp = {REPO / "dataprune" / "y.py": ast.parse("from torch._dynamo import config\n")}
    assert _private_uses(imp, set()) == ["dataprune/y.py:1 imports _dynamo"]
