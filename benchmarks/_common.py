"""What the benchmark scripts share: paths, 95% intervals, machine info, shared data, output files.

Every script writes ``benchmarks/results/<name>.json`` (the run's numbers) and
``benchmarks/results/<name>.md`` (its section, rendered from those numbers only), then rebuilds
``benchmarks/RESULTS.md`` with :func:`rebuild_results_md`. Files are written atomically
(:mod:`dataprune.atomic`: temporary file in the same folder, renamed on success).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
#: ``../shared/data`` beside the checkout (GSM8K, MMLU, C4/wiki text, AGP records, ...)
SHARED_DATA = REPO.parent / "shared" / "data"
#: the LoRA target modules of the Llama-style models the Q-Tuning benchmarks fine-tune
LORA_TARGET_MODULES = (
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
)


# ------------------------------------------------------------------------- confidence intervals
def t_ci95(values: Iterable[float]) -> tuple[float, float]:
    """Mean and half-width of the two-sided 95% Student-t interval over ``values`` (e.g. seeds).

    Half-width ``t.ppf(0.975, n - 1) * sd(ddof=1) / sqrt(n)`` (:func:`scipy.stats.t.ppf`), the
    definition every script used before this module existed (same operation order, so the
    published numbers are reproduced bit for bit). With fewer than two values there is no
    interval: the half-width is NaN (not 0, which would claim certainty).
    """
    from scipy import stats

    a = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=float)
    m = float(np.mean(a))
    if len(a) < 2:
        return m, float("nan")
    half = stats.t.ppf(0.975, len(a) - 1) * np.std(a, ddof=1) / np.sqrt(len(a))
    return m, float(half)


def t_interval95(values: Iterable[float]) -> tuple[float, float, float]:
    """``(mean, low, high)`` of the 95% Student-t interval of :func:`t_ci95`."""
    m, h = t_ci95(values)
    return m, m - h, m + h


def significance(mean: float, half: float, *, higher_is_better: bool = True) -> int:
    """+1 if the interval ``mean ± half`` lies wholly on the better side of 0, -1 if wholly on
    the worse side, 0 if it contains 0 (or is undefined)."""
    if not np.isfinite(half):
        return 0
    lo, hi = mean - half, mean + half
    if lo > 0:
        return 1 if higher_is_better else -1
    if hi < 0:
        return -1 if higher_is_better else 1
    return 0


# ------------------------------------------------------------------------------- machine info
def _version(module: str) -> str:
    try:
        mod = __import__(module)
    except Exception:  # a missing or broken optional package is reported as such
        return "not installed"
    return str(getattr(mod, "__version__", "?"))


def machine_info(packages: Sequence[str] = ()) -> dict[str, Any]:
    """CPU, memory, load average (1/5/15 min, read now) and versions, for a results JSON."""
    try:
        mem = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
    except (ValueError, OSError, AttributeError):
        mem = None
    try:
        load = list(os.getloadavg())
    except (OSError, AttributeError):
        load = None
    info = {
        "cpu": _cpu_model() or platform.processor() or platform.machine(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "memory_gib": mem,
        "load_average_at_start": load,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {p: _version(p) for p in ("numpy", *packages)},
    }
    if "torch" in packages:
        # the instruction set torch's CPU kernels dispatch to: the same bf16 forwards, and the
        # pruning masks computed from them, differed between two machines
        # (benchmarks/results/model_pruning_machines.md)
        import torch

        info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    return info


def _cpu_model() -> str | None:
    """The processor's model name from /proc/cpuinfo (None where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        return None
    return None


def record_end_load(info: dict[str, Any] | None) -> dict[str, Any] | None:
    """Add ``load_average_at_end`` (1/5/15 min, read now) to a :func:`machine_info` dict."""
    if isinstance(info, dict):
        try:
            info["load_average_at_end"] = list(os.getloadavg())
        except (OSError, AttributeError):
            info["load_average_at_end"] = None
    return info


def machine_sentence(info: dict[str, Any] | None) -> str:
    """``"Machine: 2 CPUs, 1-minute load average 8.7 at the start."`` (or that it is unknown).

    With ``load_average_at_end`` (:func:`record_end_load`) the load at the end is given too.
    """
    if not isinstance(info, dict) or not info.get("load_average_at_start"):
        return "Machine and load not recorded in this run's JSON."
    end = info.get("load_average_at_end")
    detail = [info["cpu"]] if info.get("cpu") not in (None, "", info.get("machine")) else []
    if info.get("torch_cpu_capability"):
        detail.append(f"torch CPU kernels {info['torch_cpu_capability']}")
    return (
        f"Machine: {info['cpu_count']} CPUs"
        + (f" ({'; '.join(detail)})" if detail else "")
        + ", 1-minute load average "
        f"{info['load_average_at_start'][0]:.1f} at the start"
        + (f" and {end[0]:.1f} at the end." if end else ".")
    )


def describe_machine(info: dict[str, Any]) -> str:
    """``"x86_64, 2 CPUs, 24 GiB"`` from :func:`machine_info`."""
    mem = f", {info['memory_gib']} GiB" if info.get("memory_gib") is not None else ""
    return f"{info['machine']}, {info['cpu_count']} CPUs{mem}"


def load_1min() -> float:
    """The 1-minute load average now (NaN where the platform has none)."""
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):
        return float("nan")


# -------------------------------------------------------------------------------- shared data
def need_data(path: Path, what: str = "") -> None:
    """Exit with status 2 and a one-line message if ``path`` (under ../shared/data) is missing."""
    if not path.exists():
        label = f"{what} " if what else ""
        print(
            f"{label}not found at {path}; this benchmark needs ../shared/data beside the checkout",
            file=sys.stderr,
        )
        raise SystemExit(2)


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON-lines file (blank lines skipped)."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def gsm8k(split: str = "train") -> list[dict]:
    """GSM8K records (``question``, ``answer``) from ``../shared/data/gsm8k/<split>.jsonl``."""
    return read_jsonl(SHARED_DATA / "gsm8k" / f"{split}.jsonl")


# --------------------------------------------------------------------------- worker processes
def run_worker(
    script: str | Path, payload: dict, *, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``python <script> --worker <payload as JSON>`` from the repository root.

    Used by the benchmarks that measure each case in a fresh process (its own peak memory, no
    state from earlier cases). Raises :class:`subprocess.TimeoutExpired` after ``timeout`` s.
    """
    return subprocess.run(
        [sys.executable, str(script), "--worker", json.dumps(payload)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {}), "PYTHONPATH": str(REPO)},
        cwd=REPO,
    )


# ------------------------------------------------------------------------------- output files
def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    from dataprune.atomic import atomic_write

    with atomic_write(path) as fh:
        fh.write(text)


def write_json(path: Path, obj: Any, *, indent: int = 2) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (numpy scalars/arrays and paths converted)."""
    from dataprune.atomic import atomic_write_json

    atomic_write_json(path, obj, indent=indent)


def read_results(name: str) -> dict:
    """The saved ``benchmarks/results/<name>.json``."""
    return json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))


def rebuild_results_md() -> Path:
    """Reassemble ``benchmarks/RESULTS.md`` from the section files."""
    from benchmarks.make_results import write_results_md

    return write_results_md()


def publish(
    name: str,
    md: str,
    payload: Any = None,
    *,
    indent: int = 2,
    out_dir: Path = RESULTS,
    rebuild: bool = True,
) -> None:
    """Write ``<name>.json`` (when ``payload`` is given) and ``<name>.md``, then RESULTS.md."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if payload is not None:
        write_json(out_dir / f"{name}.json", payload, indent=indent)
    write_text(out_dir / f"{name}.md", md)
    if rebuild and out_dir == RESULTS:
        rebuild_results_md()


def add_render_only(
    parser: argparse.ArgumentParser, name: str, *aliases: str, dest: str = "render_only"
) -> None:
    """The ``--render-only`` option every script has (``aliases``: its older spellings)."""
    parser.add_argument(
        "--render-only",
        *aliases,
        dest=dest,
        action="store_true",
        help=f"re-render benchmarks/results/{name}.md (and its plot, if any) from the saved "
        f"{name}.json; recompute nothing, leave the JSON as it is",
    )


def render_from_json(name: str, render: Callable[[dict], str]) -> str:
    """``--render-only``: re-render ``<name>.md`` from the saved JSON (nothing recomputed)."""
    md = render(read_results(name))
    publish(name, md)
    return md
