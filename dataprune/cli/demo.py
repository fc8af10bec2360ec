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


def run(args: argparse.Namespace) -> int:
    import time

    from dataprune.demo import run_demo

    t0 = time.perf_counter()
    print(f"dataprune demo -> {args.output_dir}")
    run_demo(args.output_dir, random_state=args.random_state, only=args.steps, emit=print)
    print(f"\ndemo finished in {time.perf_counter() - t0:.1f} s")
    return 0
