"""Griffe extension for the API reference: the packages ``package-dir`` maps in from elsewhere.

``pyproject.toml`` installs the top-level folders ``rag/`` and ``agents/`` as ``dataprune.rag``
and ``dataprune.agents`` (``[tool.setuptools] package-dir``). Python finds them through the
install, editable or not; Griffe reads the sources of ``dataprune/`` only, so without this
``::: dataprune.rag...`` would not be found. Once Griffe has loaded a package, this visits each
folder mapped under its name (statically, nothing is imported) and attaches it there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import griffe

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest's tomli
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def _package_dirs() -> dict[str, Path]:
    """Installed dotted name -> source folder, for folders that are not where the name says."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        mapping = tomllib.load(f)["tool"]["setuptools"].get("package-dir", {})
    return {
        name: ROOT / folder
        for name, folder in mapping.items()
        if "." in name and Path(folder) != Path(*name.split("."))
    }


class PackageDir(griffe.Extension):
    """Attach ``package-dir`` subpackages (``dataprune.rag`` <- ``rag/``) to their parent."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        for name, folder in sorted(_package_dirs().items()):
            parent_path, _, child = name.rpartition(".")
            if parent_path.split(".")[0] != pkg.name:
                continue
            parent = loader.modules_collection.get_member(parent_path)
            for module in _attach(loader, parent, child, folder):
                loader.expand_exports(module)


def _attach(
    loader: griffe.GriffeLoader, parent: griffe.Module, name: str, folder: Path
) -> list[griffe.Module]:
    """Visit the package in ``folder`` and its subpackages/modules as ``parent.name``."""
    package = _visit(loader, parent, name, folder / "__init__.py")
    out = [package]
    for child in sorted(folder.iterdir()):
        if child.is_dir() and (child / "__init__.py").is_file():
            out += _attach(loader, package, child.name, child)
        elif child.suffix == ".py" and child.name != "__init__.py":
            out.append(_visit(loader, package, child.stem, child))
    return out


def _visit(loader: griffe.GriffeLoader, parent: griffe.Module, name: str, path: Path):
    code = path.read_text(encoding="utf-8-sig")
    if loader.store_source:
        loader.lines_collection[path] = code.splitlines(keepends=False)
    module = griffe.visit(
        name,
        path,
        code,
        extensions=loader.extensions,
        parent=parent,
        docstring_parser=loader.docstring_parser,
        docstring_options=loader.docstring_options,
        lines_collection=loader.lines_collection,
        modules_collection=loader.modules_collection,
    )
    parent.set_member(name, module)
    return module
