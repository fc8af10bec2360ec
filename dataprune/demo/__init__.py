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
    from dataprune.errors import DataValidationError

    names = sorted(i.name for i in pkgutil.iter_modules(pkg.__path__) if i.name.startswith("step_"))
    shorts = {name: name.split("_", 2)[-1] for name in names}
    unknown = sorted(set(only or ()) - set(shorts.values()))
    if unknown:
        raise DataValidationError(
            f"unknown demo step(s) {', '.join(map(repr, unknown))}; valid: "
            + ", ".join(shorts.values())
        )
    mods = []
    for name in names:
        if only and shorts[name] not in only:
            continue
        mod = importlib.import_module(f"dataprune.demo.{name}")
        mod.SHORT_NAME = shorts[name]
        mods.append(mod)
    return mods


def run_demo(
    output_dir: str | Path,
    *,
    random_state: int = 0,
    only: list[str] | None = None,
    emit: Callable[[str], None] | None = None,
    show_progress_bar: bool | None = False,
) -> DemoContext:
    """Run every demo step and hand each summary line to ``emit`` (default: the logger).

    ``show_progress_bar=True`` shows one bar that advances per step (the lines print above it);
    the steps' own library calls follow the log level as usual.
    """
    from dataprune.progress import progress

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(out, random_state)
    say = emit or logger.info
    steps = demo_steps(only)
    bar = progress(total=len(steps), show_progress_bar=show_progress_bar, unit="step", leave=False)
    for n, step in enumerate(steps, start=1):
        bar.set_description(f"demo: {step.SHORT_NAME}")
        with bar.external_write_mode():
            say(f"\n[{n}/{len(steps)}] {step.TITLE}")
        t0 = time.perf_counter()
        lines = list(step.run(ctx))
        with bar.external_write_mode():
            for line in lines:
                say(f"  {line}")
            say(f"  ({time.perf_counter() - t0:.1f} s)")
        bar.update(1)
    bar.close()
    return ctx
