"""Near-duplicate groups of texts: MinHash signatures, LSH banding, verification, components."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dataprune.dedup.components import component_labels
from dataprune.dedup.lsh import _compute_pairs, lsh_params
from dataprune.dedup.minhash import _check_options, _check_texts, _compute_signatures
from dataprune.dedup.normalise import normalise_text
from dataprune.errors import DataValidationError, UnknownOptionError

__all__ = ["KEEP_RULES", "FuzzyDuplicates", "fuzzy_duplicates"]

logger = logging.getLogger(__name__)

KEEP_RULES = ("first", "longest", "quality")
_PAIR_CHUNK_ELEMENTS = 1 << 22  # signature entries compared per verification chunk


@dataclass(frozen=True)
class FuzzyDuplicates:
    """Near-duplicate groups found by :func:`fuzzy_duplicates` (n records).

    Attributes
    ----------
    duplicate_of : ndarray of shape (n,), int64
        Index of the group's survivor for a dropped record; -1 for survivors and for records
        in no group.
    group : ndarray of shape (n,), int64
        Position of the record's group in :attr:`groups`; -1 for records in no group.
    similarity : ndarray of shape (n,), float32
        Estimated Jaccard similarity (MinHash agreement over all ``num_perm`` entries) between a
        dropped record and its survivor; NaN for survivors and records in no group.
    groups : list of ndarray of int64
        One array of record indices per group of two or more: the survivor first, then the
        others in ascending order. Largest group first (ties: smaller survivor index first).
    params : dict
        ``threshold, unit, ngram, num_perm, bands, rows, verify, keep, seed``.
    """

    duplicate_of: np.ndarray
    group: np.ndarray
    similarity: np.ndarray
    groups: list[np.ndarray] = field(repr=False)
    params: dict[str, Any]

    @property
    def is_duplicate(self) -> np.ndarray:
        """ndarray of shape (n,), bool: True for records to drop (``duplicate_of >= 0``)."""
        return self.duplicate_of >= 0


def _int_or_none(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DataValidationError(f"{name} must be an integer >= 1 or None, got {value!r}")
    return int(value)


def _default_banding(threshold: float, num_perm: int, *, verify: bool) -> tuple[int, int]:
    """Bands and rows when the caller gives neither (see :func:`fuzzy_duplicates`)."""
    if not verify:
        return lsh_params(threshold, num_perm)
    return lsh_params(
        max(threshold - 0.1, 0.05),
        num_perm,
        false_positive_weight=0.1,
        false_negative_weight=0.9,
    )


def fuzzy_duplicates(
    texts: Sequence[str],
    *,
    threshold: float = 0.8,
    unit: str = "char",
    ngram: int = 5,
    num_perm: int = 128,
    bands: int | None = None,
    rows: int | None = None,
    verify: bool = True,
    keep: str = "first",
    quality: Sequence[float] | np.ndarray | None = None,
    seed: int = 1,
    show_progress_bar: bool | None = None,
) -> FuzzyDuplicates:
    """Group near-duplicate texts (Jaccard similarity of their n-gram sets) and pick survivors.

    Steps: :func:`~dataprune.dedup.minhash.minhash_signatures` of the normalised texts;
    candidate pairs from LSH banding (:func:`~dataprune.dedup.lsh.lsh_candidate_pairs`: star
    edges per bucket); with ``verify``, only candidates whose estimated Jaccard (the fraction
    of equal signature entries) is >= ``threshold`` are kept; connected components of the kept
    pairs (:func:`scipy.sparse.csgraph.connected_components`) are the groups. Time and memory
    are linear in n (the signatures take ``4 * num_perm`` bytes per record).

    A group is transitive: A ~ B and B ~ C put A, B, C together even if A and C are less
    similar than ``threshold``, so a dropped record may be below ``threshold`` to its survivor
    (see :attr:`FuzzyDuplicates.similarity`), as in every LSH + union-find pipeline. Empty
    texts (after normalisation) are never grouped.

    Parameters
    ----------
    texts : sequence of str, length n
        The records.
    threshold : float
        Jaccard similarity of the shingle sets at or above which two texts are duplicates, in
        (0, 1].
    unit : {"char", "word"}
        Shingles are ``ngram`` consecutive characters or words of the normalised text.
    ngram : int
        Shingle length (>= 1); 5 characters or 3 words are usual.
    num_perm : int
        MinHash signature length.
    bands, rows : int, optional
        LSH banding (``bands * rows <= num_perm``). Both None: with ``verify``, banding tuned
        for recall (:func:`lsh_params` for ``threshold - 0.1`` with false negatives weighted
        0.9: at ``threshold=0.8`` and 128 permutations, 20 bands of 6 rows, which makes a pair
        at Jaccard 0.8 a candidate with probability 0.998), verification then removing the extra
        candidates; without ``verify``, :func:`lsh_params` for ``threshold`` (balanced errors).
        One None: ``num_perm // other``.
    verify : bool
        Keep only candidate pairs whose estimated Jaccard is >= ``threshold``.
    keep : {"first", "longest", "quality"}
        Survivor of each group: lowest index; most characters of the normalised text; highest
        ``quality`` (NaN ranks lowest). Ties go to the lowest index.
    quality : array-like of shape (n,), optional
        Required by (and only used with) ``keep="quality"``.
    seed : int
        Selects the MinHash permutations.
    show_progress_bar : bool, optional
        None: shown when the ``dataprune`` logger is at INFO or more verbose.

    Returns
    -------
    FuzzyDuplicates
    """
    texts = _check_texts(texts)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)):
        raise DataValidationError(f"threshold must be a number in (0, 1], got {threshold!r}")
    if not 0.0 < float(threshold) <= 1.0:  # also rejects NaN
        raise DataValidationError(f"threshold must be in (0, 1], got {threshold!r}")
    _check_options(unit, ngram, num_perm, seed)
    bands, rows = _int_or_none("bands", bands), _int_or_none("rows", rows)
    if bands is None and rows is None:
        bands, rows = _default_banding(float(threshold), int(num_perm), verify=bool(verify))
    elif rows is None:
        rows = max(int(num_perm) // bands, 1)
    elif bands is None:
        bands = max(int(num_perm) // rows, 1)
    if bands * rows > num_perm:
        raise DataValidationError(f"bands * rows = {bands * rows} exceeds num_perm = {num_perm}")
    if keep not in KEEP_RULES:
        raise UnknownOptionError(f"unknown keep {keep!r}; valid: {', '.join(KEEP_RULES)}")
    q = None
    if keep == "quality":
        if quality is None:
            raise DataValidationError("keep='quality' needs quality (one number per text)")
        try:
            q = np.asarray(quality, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DataValidationError(f"quality must be numbers ({exc})", field="quality") from None
        if q.shape != (len(texts),):
            raise DataValidationError(
                f"quality must have shape ({len(texts)},), got {q.shape}", field="quality"
            )
    elif quality is not None:
        raise DataValidationError(f"quality is only used with keep='quality' (keep={keep!r})")
    params = {
        "threshold": float(threshold),
        "unit": unit,
        "ngram": int(ngram),
        "num_perm": int(num_perm),
        "bands": bands,
        "rows": rows,
        "verify": bool(verify),
        "keep": keep,
        "seed": int(seed),
    }
    return _compute_fuzzy(texts, params, q, show_progress_bar)


def _agreement(sig: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """``(len(i),)`` float32: fraction of equal entries of ``sig[i]`` and ``sig[j]``, chunked."""
    out = np.empty(len(i), dtype=np.float32)
    step = max(1, _PAIR_CHUNK_ELEMENTS // sig.shape[1])
    for s in range(0, len(i), step):
        eq = sig[i[s : s + step]] == sig[j[s : s + step]]
        out[s : s + step] = np.count_nonzero(eq, axis=1) / sig.shape[1]
    return out


def _preference(texts: list[str], members: np.ndarray, keep: str, quality: np.ndarray | None):
    """Sort key per group member: smaller is preferred (ties: lower index)."""
    if keep == "longest":
        return -np.fromiter(
            (len(normalise_text(texts[k])) for k in members), np.int64, len(members)
        )
    if keep == "quality":
        q = quality[members]
        return np.where(np.isnan(q), math.inf, -q)
    return np.zeros(len(members))


def _compute_fuzzy(
    texts: list[str], params: dict[str, Any], quality: np.ndarray | None, show_progress_bar
) -> FuzzyDuplicates:
    n, p = len(texts), params
    sig = _compute_signatures(
        texts, p["unit"], p["ngram"], p["num_perm"], p["seed"], 2048, show_progress_bar
    )
    i, j = _compute_pairs(sig, p["bands"], p["rows"])
    n_candidates = len(i)
    if p["verify"] and len(i):
        ok = _agreement(sig, i, j) >= p["threshold"]
        i, j = i[ok], j[ok]
    labels = component_labels(n, i, j)
    sizes = np.bincount(labels)
    members = np.flatnonzero(sizes[labels] > 1)  # ascending index
    lab = labels[members]
    pref = _preference(texts, members, p["keep"], quality)
    order = np.lexsort((members, pref, lab))  # per label: the survivor first
    first = np.r_[True, lab[order][1:] != lab[order][:-1]][: len(order)]
    surv_of_label = np.full(len(sizes), -1, dtype=np.int64)
    surv_of_label[lab[order][first]] = members[order][first]
    survivors = members[order][first]
    # groups ranked by size (descending), then survivor index
    rank_order = np.lexsort((survivors, -sizes[labels[survivors]]))
    rank_of_label = np.full(len(sizes), -1, dtype=np.int64)
    rank_of_label[labels[survivors[rank_order]]] = np.arange(len(survivors))

    duplicate_of = np.full(n, -1, dtype=np.int64)
    group = np.full(n, -1, dtype=np.int64)
    similarity = np.full(n, np.nan, dtype=np.float32)
    group[members] = rank_of_label[lab]
    surv = surv_of_label[lab]
    dropped = members != surv
    duplicate_of[members[dropped]] = surv[dropped]
    similarity[members[dropped]] = _agreement(sig, members[dropped], surv[dropped])
    layout = np.lexsort((members, dropped, group[members]))  # group, survivor first, index
    bounds = np.cumsum(np.bincount(group[members], minlength=len(survivors)))[:-1]
    groups = np.split(members[layout], bounds) if len(members) else []
    logger.info(
        "fuzzy_duplicates: %d records, %d candidate pairs, %d kept, %d groups, %d duplicates",
        n,
        n_candidates,
        len(i),
        len(groups),
        int(dropped.sum()),
    )
    return FuzzyDuplicates(duplicate_of, group, similarity, groups, p)
