"""The ``dataprune`` console script.

Sub-commands are discovered from the modules of :mod:`dataprune.cli` that define
``register(subparsers)``; those modules import only the standard library at import time so
``dataprune --help`` stays fast, and do their heavy imports inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence
from typing import NoReturn

from dataprune import __version__
from dataprune.errors import DataPruneError

__all__ = ["build_parser", "main"]

EXIT_USAGE = 2


def _command_modules() -> list:
    import dataprune.cli as pkg

    mods = []
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_") or info.name == "main":
            continue
        mod = importlib.import_module(f"dataprune.cli.{info.name}")
        if hasattr(mod, "register"):
            mods.append(mod)
    return sorted(mods, key=lambda m: (getattr(m, "ORDER", 100), m.__name__))


class OneLineErrorParser(argparse.ArgumentParser):
    """Usage errors as one line (``PROG: error: ... (see PROG --help)``), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every discovered sub-command."""
    parser = OneLineErrorParser(
        prog="dataprune",
        description="Data- and agent-level pruning for LLM pipelines.",
    )
    parser.add_argument("--version", action="version", version=f"dataprune {__version__}")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    verbosity.add_argument(
        "-q", "--quiet", action="store_true", help="warnings only, no progress bars"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _command_modules():
        mod.register(sub)
    return parser


def _configure_logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("dataprune")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    if quiet:
        import os

        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if not verbose:
        for noisy in (
            "transformers",
            "sentence_transformers",
            "datasets",
            "huggingface_hub",
            "httpx",
        ):
            logging.getLogger(noisy).setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    root = logging.getLogger("dataprune")
    saved = (root.handlers[:], root.level, root.propagate)
    _configure_logging(args.verbose, args.quiet)
    try:
        status = args.run(args)
    except DataPruneError as exc:
        msg = " ".join(str(exc).split())
        print(f"dataprune {args.command}: error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"dataprune {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        # main() may be called in-process (tests, notebooks): leave logging as it was.
        root.handlers[:], root.level, root.propagate = saved
    return int(status or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
