"""The embedded end-to-end demo behind ``dataprune demo``.

Steps are the modules ``dataprune/demo/step_*.py`` (run in name order); each defines ``TITLE`` and
``run(ctx) -> list[str]`` returning the summary lines to show. Modules add their own step file.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["DemoContext", "demo_steps", "run_demo"]


@dataclass
class DemoContext:
    """State shared by demo steps.

    Attributes
    ----------
    output_dir : Path
        Where steps write their files.
    random_state : int
        Seed for every step.
    state : dict
        Values a step leaves for later steps (``"records"``, ``"embeddings"``, ...).
    """

    output_dir: Path
    random_state: int = 0
    state: dict[str, Any] = field(default_factory=dict)


def demo_steps(only: list[str] | None = None) -> list[Any]:
    """Step modules in run order, optionally restricted to names in ``only``."""
    import dataprune.demo as pkg

    mods = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if not info.name.startswith("step_"):
            continue
        mod = importlib.import_module(f"dataprune.demo.{info.name}")
        short = info.name.split("_", 2)[-1]
        if only and short not in only:
            continue
        mod.SHORT_NAME = short
        mods.append(mod)
    return mods


def run_demo(
    output_dir: str | Path,
    *,
    random_state: int = 0,
    only: list[str] | None = None,
    emit: Callable[[str], None] | None = None,
) -> DemoContext:
    """Run every demo step and hand each summary line to ``emit`` (default: the logger)."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(out, random_state)
    say = emit or logger.info
    steps = demo_steps(only)
    for n, step in enumerate(steps, start=1):
        say(f"\n[{n}/{len(steps)}] {step.TITLE}")
        t0 = time.perf_counter()
        for line in step.run(ctx):
            say(f"  {line}")
        say(f"  ({time.perf_counter() - t0:.1f} s)")
    return ctx
