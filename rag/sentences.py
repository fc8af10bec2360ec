"""Offline sentence splitter with character offsets.

No data files and no downloads (nltk's punkt data is not available offline). Rules:

* a sentence ends at ``.``, ``!``, ``?`` or ``…`` (optionally followed by closing quotes or
  brackets) when whitespace follows and the next word starts like a sentence (upper-case letter,
  digit, opening quote or bracket); a lower-case continuation never starts a new sentence
  (``"Stop!" she said.``, ``e.g. this``);
* no split after known abbreviations (``Dr.``, ``e.g.``, ``U.S.``, ``Jan.``...), single initials
  (``J. R. R. Tolkien``) or inside numbers (``3.14``, ``v1.2``: no whitespace after the dot);
* CJK terminators (``。！？``) end a sentence without needing whitespace;
* a blank line always ends a sentence; a single newline ends one unless it is a hard wrap inside a
  sentence (previous line has no terminal punctuation and the next line starts in lower case);
  bullet and numbered list items (``- x``, ``* x``, ``1. x``) always start a new sentence.

Every sentence is returned with its ``[start, end)`` character span in the original text, with
surrounding whitespace excluded, so ``text[s.start:s.end] == s.text``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ABBREVIATIONS", "Sentence", "split_sentences"]

# Lower-cased, without the final dot. Multi-dot initialisms are handled by a pattern.
ABBREVIATIONS: frozenset[str] = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "mt",
        "ft",
        "gen",
        "col",
        "lt",
        "sgt",
        "capt",
        "cmdr",
        "adm",
        "gov",
        "sen",
        "rep",
        "rev",
        "hon",
        "pres",
        "supt",
        "messrs",
        "mme",
        "mlle",
        "inc",
        "ltd",
        "co",
        "corp",
        "bros",
        "dept",
        "univ",
        "assn",
        "est",
        "vs",
        "etc",
        "al",
        "approx",
        "ca",
        "cf",
        "ed",
        "eds",
        "vol",
        "vols",
        "no",
        "nos",
        "pp",
        "p",
        "para",
        "fig",
        "figs",
        "eq",
        "eqs",
        "ch",
        "sec",
        "secs",
        "art",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "mon",
        "tue",
        "tues",
        "wed",
        "thu",
        "thur",
        "thurs",
        "fri",
        "sat",
        "sun",
        "ave",
        "blvd",
        "rd",
        "hwy",
        "dist",
        "min",
        "max",
        "misc",
        "dept",
        "esp",
        "e.g",
        "i.e",
        "a.m",
        "p.m",
        "a.d",
        "b.c",
        "b.c.e",
        "c.e",
        "u.s",
        "u.k",
        "u.n",
        "e.u",
        "ph.d",
        "m.d",
        "b.a",
        "m.a",
        "b.sc",
        "m.sc",
        "d.c",
        "u.s.a",
    ]
)
# Abbreviations that are also common sentence ends; after these a capitalised word does start a
# new sentence ("... and so on, etc. The next ...").
_WEAK_ABBREVIATIONS = frozenset({"etc", "al", "no", "inc", "ltd", "co", "corp", "bros"})

_TERMINAL = ".!?…"
_CJK_TERMINAL = "。！？"
_CLOSERS = "\"'”’)]}»"
_OPENERS = "\"'“‘([{«¿¡"
_BULLET = re.compile(r"[ \t]*(?:[-*•–·]|\d{1,3}[.)]|[a-zA-Z][.)])\s+")
_WORD_BEFORE_DOT = re.compile(r"([A-Za-z][A-Za-z.]*)\.$")


@dataclass(frozen=True)
class Sentence:
    """One sentence of a text.

    Attributes
    ----------
    text : str
        The sentence, equal to ``original[start:end]``.
    start, end : int
        Character span in the original text (``end`` exclusive).
    """

    text: str
    start: int
    end: int


def split_sentences(text: str) -> list[Sentence]:
    """Split ``text`` into sentences with character offsets.

    Parameters
    ----------
    text : str
        Any text; an empty or all-whitespace text has no sentences.

    Returns
    -------
    list of Sentence
        In text order; spans do not overlap and exclude surrounding whitespace.
    """
    if not isinstance(text, str):
        raise TypeError(f"expected a string, got {type(text).__name__}")
    cuts = _cut_points(text)
    out: list[Sentence] = []
    prev = 0
    for cut in [*cuts, len(text)]:
        seg_start, seg_end = prev, cut
        while seg_start < seg_end and text[seg_start].isspace():
            seg_start += 1
        while seg_end > seg_start and text[seg_end - 1].isspace():
            seg_end -= 1
        if seg_end > seg_start:
            out.append(Sentence(text[seg_start:seg_end], seg_start, seg_end))
        prev = cut
    return out


def _cut_points(text: str) -> list[int]:
    """Positions where a new sentence may begin (sorted, unique)."""
    cuts: set[int] = set()
    n = len(text)
    i = 0
    while i < n:
        ch = text[i]
        if ch in _CJK_TERMINAL:
            j = i + 1
            while j < n and (text[j] in _CJK_TERMINAL or text[j] in _CLOSERS):
                j += 1
            cuts.add(j)
            i = j
            continue
        if ch == "\n":
            j = i
            newlines = 0
            while j < n and text[j].isspace():
                newlines += text[j] == "\n"
                j += 1
            if j < n and _newline_breaks(text, i, j, newlines):
                cuts.add(j)
            i = j
            continue
        if ch in _TERMINAL:
            j = i + 1
            while j < n and text[j] in _TERMINAL:
                j += 1
            while j < n and text[j] in _CLOSERS:
                j += 1
            if j < n and text[j].isspace() and _ends_sentence(text, i, j):
                k = j
                while k < n and text[k].isspace():
                    k += 1
                if k < n:
                    cuts.add(k)
            i = j
            continue
        i += 1
    return sorted(c for c in cuts if 0 < c < n)


def _newline_breaks(text: str, nl: int, nxt: int, newlines: int) -> bool:
    """Whether the line break(s) between ``nl`` and ``nxt`` end a sentence."""
    if newlines >= 2:
        return True
    line_start = text.rfind("\n", 0, nl) + 1
    if _BULLET.match(text, nxt):
        return True
    prev = text[line_start:nl].rstrip()
    if not prev:
        return True
    last = prev[-1]
    if last in _TERMINAL or last in _CJK_TERMINAL or last in _CLOSERS or last == ":":
        return True
    # A hard wrap inside a sentence: the next line continues in lower case (or with punctuation).
    first = text[nxt]
    return not (first.islower() or first in ",;)-")


def _ends_sentence(text: str, dot: int, after: int) -> bool:
    """Whether terminal punctuation at ``dot`` (closers end at ``after``) ends a sentence."""
    k = after
    n = len(text)
    while k < n and text[k].isspace():
        k += 1
    if k >= n:
        return True
    nxt = text[k]
    if nxt in _OPENERS:
        k2 = k + 1
        while k2 < n and text[k2] in _OPENERS:
            k2 += 1
        nxt_word = text[k2] if k2 < n else ""
        starts = bool(nxt_word) and not nxt_word.islower()
    else:
        starts = not nxt.islower() and nxt not in ",;:)-"
    if not starts:
        return False
    if text[dot] != "." or (after - dot > 1 and text[dot + 1] == "."):
        # "!" / "?" / "..." followed by a capitalised word: a new sentence.
        return True
    if text[dot + 1 : after].strip(_CLOSERS):
        return True
    if after > dot + 1:
        # A closing quote/bracket right after the dot: a sentence end ('He said "Stop." Then').
        return True
    m = _WORD_BEFORE_DOT.search(text, max(0, dot - 20), dot + 1)
    if m is None:
        return True
    word = m.group(1)
    # The word must start at a word boundary (not the tail of "3.14" or "x.y").
    if m.start(1) > 0 and not (text[m.start(1) - 1].isspace() or text[m.start(1) - 1] in _OPENERS):
        return True
    low = word.lower()
    if low in ABBREVIATIONS:
        return low in _WEAK_ABBREVIATIONS and nxt.isupper() and _looks_like_sentence_start(text, k)
    if len(word) == 1 and word.isupper():
        return False  # an initial: "J. R. R. Tolkien"
    # Initialisms such as "U.S." or "N.A.S.A." (letters separated by dots).
    return not re.fullmatch(r"(?:[A-Za-z]\.)+[A-Za-z]", word)


_STARTERS = frozenset(
    [
        "the",
        "a",
        "an",
        "this",
        "that",
        "these",
        "those",
        "it",
        "its",
        "he",
        "she",
        "they",
        "we",
        "i",
        "in",
        "on",
        "at",
        "for",
        "from",
        "but",
        "and",
        "or",
        "so",
        "however",
        "there",
        "his",
        "her",
        "their",
        "our",
        "after",
        "before",
        "when",
        "while",
        "as",
        "by",
        "if",
        "during",
        "since",
    ]
)


def _looks_like_sentence_start(text: str, k: int) -> bool:
    m = re.match(r"[A-Za-z]+", text[k:])
    return bool(m) and m.group(0).lower() in _STARTERS
