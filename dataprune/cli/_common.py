"""Helpers shared by the CLI sub-commands (argument groups, loading, writing outputs)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

# What ``ArgumentParser.add_subparsers()`` returns: argparse has no public name for its type.
Subparsers = Any


def add_input_args(
    p: argparse.ArgumentParser | Any,
    *,
    text: bool = True,
    sft: bool = False,
    label: bool = False,
    flags: tuple[str, ...] | None = None,
    dest: str = "input",
    required: bool = True,
    split: bool = True,
    input_help: str = "JSONL / JSON / parquet / CSV file, or a hub dataset id",
    rejects: str = "OUTPUT.rejects.jsonl",
) -> None:
    """Add the input, its field options, ``--split`` and ``--on-bad-record`` (one definition for
    every command that reads records).

    Parameters
    ----------
    p : parser or argument group
    text, sft, label : bool
        Add ``--text-field``; ``--prompt-field`` / ``--response-field``; ``--label-field``.
    flags : tuple of str, optional
        The input as an option (e.g. ``("--input", "-i")``) instead of the positional INPUT.
    dest, required, input_help
        For the input argument.
    split : bool
        Add ``--split`` (hub dataset ids).
    rejects : str
        Where ``--on-bad-record skip`` writes the skipped records (for the help text).
    """
    if flags is None:
        p.add_argument(dest, metavar="INPUT", help=input_help)
    else:
        p.add_argument(*flags, dest=dest, metavar="INPUT", required=required, help=input_help)
    if text:
        p.add_argument("--text-field", help="field holding the text (default: text)")
    if sft:
        p.add_argument("--prompt-field", help="field holding the prompt (SFT records)")
        p.add_argument("--response-field", help="field holding the response (SFT records)")
    if label:
        p.add_argument("--label-field", help="field holding the class label")
    if split:
        p.add_argument(
            "--split", default=None, help="split to load for hub dataset ids (default: train)"
        )
    p.add_argument(
        "--on-bad-record",
        choices=("error", "skip"),
        default="error",
        help="stop at the first bad record (default) or skip bad records and write them to "
        + rejects,
    )


def add_dtype_arg(p: Any, *, what: str) -> None:
    """``--dtype`` of the commands that load a causal LM (default ``auto``:
    :func:`dataprune.precision.resolve_dtype`); ``what`` ends the help text."""
    from dataprune.precision import DTYPES

    p.add_argument(
        "--dtype",
        choices=DTYPES,
        default="auto",
        help="model dtype; auto (default): bfloat16 on CUDA GPUs with native bf16 and on CPUs with "
        "AMX or AVX512-BF16, float32 elsewhere (where bf16 is emulated, several times slower)"
        f"; {what}",
    )


def model_dtype(model: Any) -> str:
    """The parameter dtype of a loaded torch model, as a name (``"float32"``, ...), for manifests."""
    return str(next(model.parameters()).dtype).removeprefix("torch.")


def add_output_args(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    p.add_argument("--output", "-o", required=required, help="output file (format from its suffix)")


def load_validated(
    args: argparse.Namespace, *, text_fields: list[str], label_field: str | None = None
) -> tuple[Any, list[str]]:
    """Load ``args.input`` and validate the fields.

    Returns ``(RecordSet, text fields)``; ``text_fields=[]`` (no field option given) means the
    records' ``text`` field.
    """
    from dataprune.io import load_records, resolve_text_fields, validate_fields

    rs = load_records(args.input, split=args.split, on_bad_record=args.on_bad_record)
    text_fields = resolve_text_fields(rs, text_fields, how=CLI_TEXT_OPTIONS)
    rs = validate_fields(
        rs, text_fields=text_fields, label_field=label_field, on_bad_record=args.on_bad_record
    )
    return rs, text_fields


def output_format(output: str, input_format: str) -> str | None:
    """Output format: from the output suffix, else the input's format."""
    from dataprune.errors import DataValidationError
    from dataprune.io import detect_format

    try:
        return detect_format(output)
    except DataValidationError:
        if input_format in ("jsonl", "json", "parquet", "csv"):
            return input_format
        raise


def report_rejects(rs: Any, output: str | Path) -> str | None:
    """Write rejects next to ``output``; return a one-line summary or ``None``."""
    from dataprune.io import write_rejects

    path = write_rejects(rs.rejects, output)
    if path is None:
        return None
    return f"skipped {len(rs.rejects)} bad records (details in {path})"


CLI_TEXT_OPTIONS = "--text-field, or --prompt-field and --response-field"


def text_fields_from_args(args: argparse.Namespace) -> list[str]:
    """The text fields named on the command line (``--text-field`` or prompt + response).

    Empty when none is named: the loaders then use the records' ``text`` field
    (:func:`dataprune.io.resolve_text_fields`).
    """
    from dataprune.errors import DataValidationError

    text = getattr(args, "text_field", None)
    prompt = getattr(args, "prompt_field", None)
    response = getattr(args, "response_field", None)
    if text and (prompt or response):
        raise DataValidationError(
            "give either --text-field or --prompt-field/--response-field, not both"
        )
    if text:
        return [text]
    if prompt and response:
        return [prompt, response]
    if prompt or response:
        raise DataValidationError("--prompt-field and --response-field must be given together")
    return []


def record_texts(records: list[dict], fields: list[str]) -> list[str]:
    """One text per record: the named fields joined by a blank line."""
    if len(fields) == 1:
        return [r[fields[0]] for r in records]
    return ["\n\n".join(r[f] for f in fields) for r in records]


def key_value_option(text: str) -> tuple[str, object]:
    """argparse type for ``--option KEY=VALUE``: VALUE parsed as JSON when it is JSON, else str."""
    import json

    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip().replace("-", "_")
    if not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key, value


def _bounded(convert: Any, minimum: float, *, strict: bool, what: str) -> Any:
    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


# argparse types: bad values fail at parse time, before any work
positive_int = _bounded(int, 0, strict=True, what="an integer >= 1")
non_negative_int = _bounded(int, 0, strict=False, what="an integer >= 0")
non_negative_float = _bounded(float, 0.0, strict=False, what="a number >= 0")


def add_engine_args(p: argparse.ArgumentParser, *, engine_help: str) -> None:
    """``--engine`` and the Ray options (one definition for every command that runs on engines)."""
    eg = p.add_argument_group("execution engine")
    eg.add_argument("--engine", default="local", help=engine_help)
    eg.add_argument(
        "--address",
        default=None,
        help="Ray cluster address (e.g. auto, ray://head:10001); default: a running ray.init, "
        "else a local Ray on this machine",
    )
    eg.add_argument(
        "--num-cpus", type=int, default=None, help="CPUs of a locally started Ray (default: all)"
    )
    eg.add_argument(
        "--concurrency", type=int, default=None, help="encoder actors (default: one per CPU)"
    )
    eg.add_argument(
        "--work-dir",
        default=None,
        help="where the engine keeps embedding shards (a rerun resumes from them; default: "
        "the dataprune cache)",
    )


def engine_from_args(args: argparse.Namespace) -> tuple[str, dict[str, object]]:
    """``(engine name, engine options)`` from :func:`add_engine_args`'s options, checked."""
    from dataprune.errors import DataValidationError

    engine = str(args.engine).lower()
    if engine == "local":
        if any(v is not None for v in (args.address, args.num_cpus, args.concurrency)):
            raise DataValidationError("--address, --num-cpus and --concurrency need --engine ray")
        return engine, {}
    from dataprune.distributed.engines import ENGINES

    ENGINES.get(engine)  # unknown engine: error listing the valid ones
    options = {
        "address": args.address,
        "num_cpus": args.num_cpus,
        "concurrency": args.concurrency,
        "work_dir": args.work_dir,
    }
    return engine, {k: v for k, v in options.items() if v is not None}


def field_sources(rs: Any, field: str) -> list[str]:
    """Each record's ``field`` as its source name (one line naming the record when it is
    missing or not a string/number)."""
    from dataprune.errors import DataValidationError

    out = []
    for i, r in enumerate(rs.records):
        v = r.get(field) if isinstance(r, dict) else None
        if v is None or isinstance(v, (dict, list)):
            raise DataValidationError(
                "expected a source name (string or number)",
                source=rs.source,
                record=rs.indices[i],
                field=field,
                line=rs.line_of(i),
            )
        out.append(str(v))
    return out
