"""Source-aware calibration candidates: per-source packing and a budget spread evenly over sources.

A calibration set drawn from a uniform mix of sources (web text, code, maths, chat, ...) prunes
better than one drawn from any single source (COLA, NeurIPS 2025). With sources given,
:func:`~dataprune.calibration.build_calibration_set` packs each source's texts separately (a
block never mixes sources), and with ``mix="balanced"`` it spreads ``n_samples`` over the sources
(:func:`balanced_quotas`) and runs the selector inside each source on its share
(:func:`select_by_source`); ``mix="proportional"`` gives each source the share it has of the
candidates (:func:`proportional_quotas`), the mix a random draw has in expectation, so the
selector changes which blocks are kept but not how much of each source.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError, UnknownOptionError

logger = logging.getLogger(__name__)

__all__ = [
    "MIXES",
    "balanced_quotas",
    "check_mix",
    "mix_quotas",
    "pack_blocks",
    "proportional_quotas",
    "select_by_source",
    "source_provenance",
    "text_sources",
]

MIXES = ("none", "balanced", "proportional")
"""How ``build_calibration_set`` spends its budget over sources: ``"none"``, one selection over
all candidates; ``"balanced"``, an even share per source (:func:`balanced_quotas`);
``"proportional"``, each source's share of the candidates (:func:`proportional_quotas`)."""


def check_mix(mix: str) -> str:
    """Validate ``mix`` against :data:`MIXES`."""
    if mix not in MIXES:
        raise UnknownOptionError(f"unknown mix {mix!r}; valid: {', '.join(MIXES)}")
    return mix


def text_sources(
    data: Any,
    n_texts: int,
    *,
    sources: Sequence[Any] | None = None,
    source_field: str | None = None,
    plain_texts: bool = False,
) -> tuple[list[str], np.ndarray] | None:
    """The source of every input text, from ``sources=`` or the records' ``source_field``.

    Parameters
    ----------
    data : the calibration pool given to ``build_calibration_set``
    n_texts : int
        Number of texts extracted from ``data``.
    sources : sequence, optional
        One source per text (a dataset name, ...); values are compared as strings.
    source_field : str, optional
        Field/column of the records holding the source (string values).
    plain_texts : bool
        Whether ``data`` is a sequence of strings (no fields to read).

    Returns
    -------
    (names, codes) or None
        ``names``: the distinct sources in order of first appearance; ``codes``: shape
        (n_texts,), int64, each text's index into ``names``. ``None`` when neither is given.
    """
    if sources is not None and source_field is not None:
        raise DataValidationError("give sources= or source_field=, not both")
    if source_field is not None:
        if plain_texts:
            raise DataValidationError(
                "source_field= names a field of records or a dataset column; for plain texts "
                "pass sources= (one per text)"
            )
        from dataprune.calibration.build import extract_texts

        values: list[Any] = extract_texts(data, source_field)[0]
    elif sources is not None:
        if isinstance(sources, str):
            raise DataValidationError("sources must be a sequence (one per text), not a string")
        values = list(sources)
        if len(values) != n_texts:
            raise DataValidationError(f"{len(values)} sources for {n_texts} texts")
    else:
        return None
    names: dict[str, int] = {}
    codes = np.asarray([names.setdefault(str(v), len(names)) for v in values], dtype=np.int64)
    return list(names), codes


def pack_blocks(
    token_lists: Sequence[Sequence[int]],
    seq_len: int,
    separator: int | None,
    groups: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Join texts (each followed by ``separator``) and cut the stream into ``seq_len`` blocks.

    With ``groups``, each group's texts (in input order) form their own stream, cut separately
    and its incomplete last block dropped, so no block mixes groups; groups come out in order of
    first appearance. Empty texts are skipped.

    Parameters
    ----------
    token_lists : sequence of token-id lists, one per text
    seq_len : int
    separator : int or None
        Token appended to every text (EOS), or none.
    groups : ndarray of shape (n_texts,), int, optional

    Returns
    -------
    ids : ndarray of shape (n_blocks, seq_len), int64
    owner : ndarray of shape (n_blocks, seq_len), int64
        Index of the text every token comes from.
    n_tokens : int
        Tokens in all the streams (before cutting).
    """
    if groups is None:
        groups = np.zeros(len(token_lists), dtype=np.int64)
    ids_out, owner_out, n_tokens = [], [], 0
    for g in dict.fromkeys(groups.tolist()):
        pieces, owners = [], []
        for i in np.flatnonzero(groups == g):
            t = token_lists[i]
            if not len(t):
                continue
            seq = [*t, separator] if separator is not None else list(t)
            pieces.append(np.asarray(seq, dtype=np.int64))
            owners.append(np.full(len(seq), i, dtype=np.int64))
        if not pieces:
            continue
        stream, owner = np.concatenate(pieces), np.concatenate(owners)
        n_tokens += len(stream)
        n = len(stream) // seq_len
        ids_out.append(stream[: n * seq_len].reshape(n, seq_len))
        owner_out.append(owner[: n * seq_len].reshape(n, seq_len))
    if not ids_out:
        empty = np.zeros((0, seq_len), dtype=np.int64)
        return empty, empty.copy(), 0
    return np.concatenate(ids_out), np.concatenate(owner_out), n_tokens


def _capacities(available: Sequence[int], n_samples: int) -> np.ndarray:
    cap = np.asarray(available, dtype=np.int64)
    if cap.sum() < n_samples:
        raise DataValidationError(
            f"the sources have {int(cap.sum())} candidates in all, fewer than n_samples={n_samples}"
        )
    return cap


def balanced_quotas(
    available: Sequence[int], n_samples: int, random_state: int | np.random.Generator | None = None
) -> np.ndarray:
    """Spread ``n_samples`` as evenly as possible over sources with ``available`` candidates.

    Water-filling: every source gets the same share ``t`` or all its candidates when it has
    fewer (its remainder goes to the others); the ``r < #sources`` samples left over after the
    even shares go one each to ``r`` of the sources that still have candidates, chosen at random
    (seeded by ``random_state``, so the same seed gives the same quotas).

    Parameters
    ----------
    available : sequence of int, shape (n_sources,)
        Candidates per source.
    n_samples : int
        The total budget.
    random_state : int, Generator or None

    Returns
    -------
    ndarray of shape (n_sources,), int64
        Samples per source; sums to ``n_samples``, never above ``available``.

    Raises
    ------
    DataValidationError
        When all sources together have fewer than ``n_samples`` candidates.
    """
    cap = _capacities(available, n_samples)
    # the largest even share t with sum(min(cap, t)) <= n_samples
    lo, hi = 0, int(cap.max()) if len(cap) else 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if np.minimum(cap, mid).sum() <= n_samples:
            lo = mid
        else:
            hi = mid - 1
    quotas = np.minimum(cap, lo)
    left = n_samples - int(quotas.sum())
    if left:
        open_ = np.flatnonzero(cap > quotas)  # all have cap > lo, so each can take one more
        pick = np.random.default_rng(random_state).permutation(open_)[:left]
        quotas[pick] += 1
    return quotas


def proportional_quotas(
    available: Sequence[int], n_samples: int, random_state: int | np.random.Generator | None = None
) -> np.ndarray:
    """Spread ``n_samples`` over sources in proportion to their ``available`` candidates.

    Largest remainder: each source gets ``floor(n_samples * a_s / sum(a))``, and the samples
    left go one each to the sources with the largest fractional parts (ties broken at random,
    seeded by ``random_state``). The expected mix of a uniform random draw, without its spread.
    Parameters, return value (samples per source, summing to ``n_samples``, never above
    ``available``) and error as :func:`balanced_quotas`.
    """
    cap = _capacities(available, n_samples)
    total = int(cap.sum())
    exact = cap * (n_samples / total) if total else np.zeros(len(cap))
    quotas = np.minimum(np.floor(exact + 1e-9).astype(np.int64), cap)
    left = n_samples - int(quotas.sum())
    if left:
        rng = np.random.default_rng(random_state)
        frac = exact - quotas
        order = np.lexsort((rng.permutation(len(cap)), -frac))  # largest remainder first
        open_ = [s for s in order.tolist() if quotas[s] < cap[s]]
        quotas[open_[:left]] += 1
    return quotas


def mix_quotas(
    mix: str,
    available: Sequence[int],
    n_samples: int,
    random_state: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Samples per source for ``mix`` (``"balanced"`` or ``"proportional"``)."""
    if check_mix(mix) == "balanced":
        return balanced_quotas(available, n_samples, random_state)
    if mix == "proportional":
        return proportional_quotas(available, n_samples, random_state)
    raise DataValidationError(f"mix {mix!r} spends no per-source quotas")


def select_by_source(
    X: np.ndarray,
    y: np.ndarray | None,
    codes: np.ndarray,
    quotas: np.ndarray,
    make_selector: Callable[[int], Any],
) -> np.ndarray:
    """Run a selector inside each source on its quota.

    Parameters
    ----------
    X : ndarray of shape (n_candidates, ...)
        What the selector is fitted on (embeddings, lengths, ...).
    y : ndarray of shape (n_candidates,) or None
        Labels for label-aware selectors.
    codes : ndarray of shape (n_candidates,), int
        Each candidate's source.
    quotas : ndarray of shape (n_sources,), int
        Samples per source (:func:`balanced_quotas`).
    make_selector : callable
        ``make_selector(k)`` returns a fresh selector with budget ``k``.

    Returns
    -------
    ndarray of shape (quotas.sum(),), int64
        Chosen candidate indices: source by source (in source order), each in its selector's
        order. A source whose quota is all its candidates keeps them in candidate order.
    """
    chosen = []
    for s, k in enumerate(quotas.tolist()):
        members = np.flatnonzero(codes == s)
        if k == 0:
            continue
        if k >= len(members):
            chosen.append(members)
            continue
        sel = make_selector(k).fit(X[members], None if y is None else y[members])
        chosen.append(members[np.asarray(sel.selected_indices_, dtype=np.int64)])
    return np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)


def source_provenance(names: list[str], codes: np.ndarray, chosen: np.ndarray) -> dict[str, Any]:
    """Provenance entries: candidates and samples per source, and every sample's source."""
    n_cand = np.bincount(codes, minlength=len(names))
    n_chosen = np.bincount(codes[chosen], minlength=len(names))
    return {
        "sources": list(names),
        "source_candidates": {n: int(c) for n, c in zip(names, n_cand)},
        "source_counts": {n: int(c) for n, c in zip(names, n_chosen)},
        "sample_sources": [names[c] for c in codes[chosen].tolist()],
    }
