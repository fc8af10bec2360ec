"""Every notebook is committed without outputs (each one's execution test lives with its module)."""

from __future__ import annotations

import pytest

from notebook_runner import NOTEBOOKS

ALL = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


def test_there_are_notebooks():
    assert len(ALL) >= 5


@pytest.mark.parametrize("name", ALL)
def test_notebook_is_committed_without_outputs(name):
    import nbformat

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, name
