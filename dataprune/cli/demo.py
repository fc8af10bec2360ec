"""``dataprune demo``: the embedded end-to-end demo."""

from __future__ import annotations

import argparse

from dataprune.cli._common import Subparsers

ORDER = 1


def register(sub: Subparsers) -> None:
    p = sub.add_parser("demo", help="run the embedded end-to-end demo on data the package ships")
    p.add_argument(
        "--output-dir", default="dataprune-demo-output", help="where the demo writes its files"
    )
    p.add_argument("--random-state", type=int, default=0)
    p.add_argument("--steps", nargs="*", default=None, help="run only these steps (by short name)")
    p.set_defaults(run=run)


def _quiet_libraries() -> None:
    """The demo shows its own lines: library logs at WARNING, Ray's start-up chatter off."""
    import logging
    import os

    logging.getLogger("dataprune").setLevel(logging.WARNING)  # RayEngine follows it too
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars


def run(args: argparse.Namespace) -> int:
    import time

    from dataprune.demo import demo_steps, run_demo
    from dataprune.outputs import check_output

    steps = demo_steps(args.steps)  # unknown step names fail before anything runs
    # the demo's own folder: re-runs write into it again
    check_output(args.output_dir, kind="dir", overwrite=True)
    if not args.verbose:
        _quiet_libraries()
    t0 = time.perf_counter()
    print(f"dataprune demo -> {args.output_dir} ({len(steps)} steps; -v shows library logs)")
    run_demo(
        args.output_dir,
        random_state=args.random_state,
        only=args.steps,
        emit=lambda line: print(line, flush=True),
        show_progress_bar=None if args.verbose else not args.quiet,
    )
    print(f"\ndemo finished in {time.perf_counter() - t0:.1f} s", flush=True)
    return 0
