"""Command-line options generated from a config dataclass: one source for defaults and help.

:func:`add_config_options` adds ``--field-name`` for each field of a dataclass (default: the
field's default; help: the first sentence of the field's entry in the class's numpydoc
``Parameters`` section; choices: a registry's names when the caller names one; type: from the
annotation). :func:`config_from_args` builds the config back from the parsed options; its own
validation then names the option in the error. So a new config field, or a changed default or
description, reaches ``--help`` with no second copy to keep in step.

This module imports only the standard library (``dataprune --help`` stays fast).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["add_config_options", "config_from_args", "field_help"]

_TYPES = {"float": float, "int": int, "str": str, "bool": bool}


def field_help(cls: type) -> dict[str, str]:
    """First sentence of each parameter's description in ``cls``'s numpydoc docstring.

    Entries are read from every section of ``name : type`` lines (``Parameters``, or named
    groups such as ``Network``), except ``Attributes``, ``Returns``, ``Raises`` and the like.
    """
    doc = cls.__doc__ or ""
    lines = doc.splitlines()
    out: dict[str, str] = {}
    skip = {"Attributes", "Returns", "Raises", "Yields", "Examples", "Notes", "See Also"}
    section: str | None = None
    names: list[str] = []
    indent: int | None = None
    body: list[str] = []

    def flush() -> None:
        text = " ".join(s.strip() for s in body).strip().replace("``", "")
        first = re.split(r"(?<=\.)\s", text, maxsplit=1)[0].rstrip(".") if text else ""
        for n in names:
            out.setdefault(n, first)

    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and re.fullmatch(r"\s*-{3,}\s*", nxt):  # a section header
            if names:
                flush()
            section, names, indent, body = line.strip(), [], None, []
            continue
        if section is None or section in skip or re.fullmatch(r"\s*-{3,}\s*", line):
            continue
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if (indent is None or depth <= indent) and " : " in line:
            if names:
                flush()
            indent = depth
            names = [n.strip() for n in line.split(" : ")[0].split(",")]
            body = []
        elif names:
            body.append(line)
    if names:
        flush()
    return out


def add_config_options(
    parser: argparse.ArgumentParser | Any,
    cls: type,
    *,
    fields: Iterable[str] | None = None,
    flags: Mapping[str, str] | None = None,
    choices: Mapping[str, Iterable[str]] | None = None,
    types: Mapping[str, Any] | None = None,
) -> None:
    """Add one option per dataclass field of ``cls``.

    Parameters
    ----------
    parser : argparse.ArgumentParser or argument group
    cls : dataclass type
        Its field defaults and docstring are the source of the options' defaults and help.
    fields : iterable of str, optional
        Which fields (default: all).
    flags : mapping, optional
        Field -> option string where it is not ``--field-name`` (e.g. ``{"neighbor_lambda":
        "--lambda"}``).
    choices : mapping, optional
        Field -> allowed values (e.g. a registry's ``names()``).
    types : mapping, optional
        Field -> argparse type where the annotation's type is not enough (e.g. a bounded float).
    """
    helps = field_help(cls)
    wanted = None if fields is None else set(fields)
    for f in dataclasses.fields(cls):
        if wanted is not None and f.name not in wanted:
            continue
        if f.default is dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name} has no default; give it on the command line")
        flag = (flags or {}).get(f.name, "--" + f.name.replace("_", "-"))
        kind = (types or {}).get(f.name) or _TYPES.get(str(f.type).split("|")[0].strip(), str)
        text = helps.get(f.name, "")
        kwargs: dict[str, Any] = {
            "dest": f.name,
            "default": f.default,
            "help": f"{text} (default {f.default})" if text else f"(default {f.default})",
        }
        if f.name in (choices or {}):
            kwargs["choices"] = list((choices or {})[f.name])
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = kind
        parser.add_argument(flag, **kwargs)


def config_from_args(cls: type, args: argparse.Namespace, **extra: Any) -> Any:
    """``cls(**{field: args.<field>})`` for the fields present in ``args`` (plus ``extra``)."""
    values = {
        f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)
    }
    return cls(**{**values, **extra})
