"""Text normalisation shared by exact and fuzzy deduplication."""

from __future__ import annotations

import unicodedata

__all__ = ["normalise_text"]


def normalise_text(text: str) -> str:
    """The canonical form two texts are compared in.

    NFKC Unicode normalisation (compatibility forms folded: full-width letters, ligatures,
    non-breaking spaces), then :meth:`str.casefold`, then every run of whitespace (anything
    :meth:`str.isspace` accepts) collapsed to one ASCII space, leading and trailing ones removed.

    Parameters
    ----------
    text : str
        Any text.

    Returns
    -------
    str
        The normalised text (``""`` for a text that is empty or only whitespace).

    Examples
    --------
    >>> normalise_text("  Hello\\u00a0 WORLD\\n\\tagain ")
    'hello world again'
    """
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())
