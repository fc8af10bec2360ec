"""Keep patterns: sentences that must survive pruning whatever their score.

Pass regular expressions as ``keep_patterns=`` to :meth:`~dataprune.rag.ContextPruner.prune`,
:meth:`~dataprune.rag.ContextPruner.prune_batch` or
:func:`~dataprune.rag.selection.select_passages`: a sentence in whose text one of them is found
(:func:`re.search`) is always kept, whatever its score, the threshold, the title rule or the
``max_tokens`` / ``rate`` budgets. :data:`KEEP_PATTERNS` holds ready-made ones::

    from dataprune.rag import KEEP_PATTERNS

    pruner.prune(query, passages, keep_patterns=[KEEP_PATTERNS["numbers"], r"\\bWarsaw\\b"])
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError

__all__ = ["KEEP_PATTERNS", "compile_keep_patterns", "forced_mask"]

_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)

KEEP_PATTERNS: MappingProxyType[str, str] = MappingProxyType(
    {
        "numbers": r"\d+(?:[.,]\d+)*",
        "dates": (
            r"\b\d{4}-\d{1,2}-\d{1,2}\b"
            r"|\b\d{1,2}[/.]\d{1,2}[/.]\d{2,4}\b"
            rf"|\b{_MONTH}\.?,?\s+\d{{1,4}}\b"
            rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\b"
        ),
        "urls": r"\bhttps?://\S+|\bwww\.\S+",
        "ids": (
            r"\b(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)+\b"
            r"|\b[A-Z]{2,}\d+[A-Z0-9]*\b"
            r"|\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
            r"|\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{7,}\b"
        ),
    }
)
"""Ready-made keep patterns (read-only mapping of name -> regular expression string):

* ``"numbers"``: any number: a run of digits, with ``.`` / ``,`` separators (``42``,
  ``3.14``, ``1,200``, ``13th``);
* ``"dates"``: ISO dates (``2024-01-31``), numeric day/month/year dates with ``/`` or ``.``
  (``31/01/2024``, ``1.2.24``), and an English month name or its three-letter abbreviation
  (capitalised) next to a number (``January 5``, ``5 Jan 2024``, ``March 1816``,
  ``3rd of May``);
* ``"urls"``: web addresses starting with ``http://``, ``https://`` or ``www.``;
* ``"ids"``: identifier-like tokens: letters and digits joined by ``-`` or ``_`` with at least
  one letter and one digit (``SKU-1234``, ``CVE-2024-3094``, ``gpt-4o``), upper-case letters
  followed by digits (``ISO9001``, ``AB12``), UUIDs, and lower-case hex strings of 7 or more
  characters mixing letters and digits (git hashes).

Pass the pattern, not its name: ``keep_patterns=[KEEP_PATTERNS["dates"]]`` (the string
``"dates"`` itself would be searched as the literal word). CLI: ``--keep-preset dates``.
"""


def compile_keep_patterns(patterns: Any) -> list[re.Pattern[str]]:
    """Validate and compile keep patterns.

    Parameters
    ----------
    patterns : sequence of (str or re.Pattern), str, re.Pattern or None
        Regular expressions; one string or compiled pattern counts as a list of one. ``None``
        or an empty list: no patterns.

    Returns
    -------
    list of re.Pattern
        Shape ``(n_patterns,)``, in the given order.

    Raises
    ------
    DataValidationError
        For a pattern that is not a string or compiled pattern, is empty (it would keep every
        sentence) or is not a valid regular expression.
    """
    if patterns is None:
        return []
    if isinstance(patterns, (str, re.Pattern)):
        patterns = [patterns]
    if not isinstance(patterns, Sequence):
        raise DataValidationError(
            f"keep_patterns: expected a list of regular expressions, got {type(patterns).__name__}"
        )
    out: list[re.Pattern[str]] = []
    for i, p in enumerate(patterns):
        if isinstance(p, re.Pattern):
            if not isinstance(p.pattern, str):
                raise DataValidationError(f"keep_patterns[{i}]: expected a str pattern, got bytes")
            out.append(p)
            continue
        if not isinstance(p, str):
            raise DataValidationError(
                f"keep_patterns[{i}]: expected a regular expression string, got {type(p).__name__}"
            )
        if not p:
            raise DataValidationError(
                f"keep_patterns[{i}]: the pattern is empty (it would keep every sentence)"
            )
        try:
            out.append(re.compile(p))
        except re.error as exc:
            raise DataValidationError(
                f"keep_patterns[{i}]: {p!r} is not a valid regular expression ({exc})"
            ) from None
    return out


def forced_mask(sentences: Sequence[Any], patterns: Sequence[re.Pattern[str]]) -> np.ndarray:
    """Which sentences contain a match of any pattern.

    Parameters
    ----------
    sentences : sequence of Sentence or str
        The passage's sentences, shape ``(n_sentences,)``.
    patterns : sequence of re.Pattern
        Compiled patterns (:func:`compile_keep_patterns`).

    Returns
    -------
    numpy.ndarray
        Boolean mask of shape ``(n_sentences,)``: ``True`` = kept whatever its score.
    """
    texts = [s if isinstance(s, str) else s.text for s in sentences]
    return np.array([any(p.search(t) for p in patterns) for t in texts], dtype=bool)
