"""Every package folder is listed in pyproject.toml (rag/ and agents/ map into dataprune.*)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")


def test_all_packages_listed():
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    roots = {
        "dataprune": REPO / "dataprune",
        "dataprune.rag": REPO / "rag",
        "dataprune.agents": REPO / "agents",
    }
    assert cfg["package-dir"] == {k: v.name for k, v in roots.items()}
    found = set()
    for name, root in roots.items():
        for init in root.rglob("__init__.py"):
            rel = init.parent.relative_to(root).parts
            found.add(".".join((name, *rel)))
    assert found == listed, f"add to/remove from pyproject packages: {sorted(found ^ listed)}"


def test_rag_and_agents_import_under_dataprune():
    import dataprune.agents
    import dataprune.rag

    assert Path(dataprune.rag.__file__).parent == REPO / "rag"
    assert Path(dataprune.agents.__file__).parent == REPO / "agents"
