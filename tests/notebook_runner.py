"""Execute a notebook of ``notebooks/`` in a fresh kernel and collect what it printed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@dataclass
class NotebookRun:
    """Outputs of an executed notebook: every output object and their text joined."""

    outputs: list
    text: str

    @property
    def has_png(self) -> bool:
        return any("image/png" in o.get("data", {}) for o in self.outputs)

    def html(self) -> list[str]:
        return [o["data"]["text/html"] for o in self.outputs if "text/html" in o.get("data", {})]


def run_notebook(name: str, monkeypatch, **env: str) -> NotebookRun:
    """Execute ``notebooks/<name>`` offline with ``env`` set; fail on any error output."""
    import nbformat
    from nbclient import NotebookClient

    for key, value in {"HF_HUB_OFFLINE": "1", **env}.items():
        monkeypatch.setenv(key, value)
    path = NOTEBOOKS / name
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute(env=dict(os.environ))
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, f"{name} raised: {errors[0].get('ename')}: {errors[0].get('evalue')}"
    text = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs
    )
    return NotebookRun(outputs, text)
