"""Vectorised MinHash signatures of character or word n-gram sets.

Pipeline, for a batch of records at a time (no Python call per shingle):

1. Each text is normalised (:func:`~dataprune.dedup.normalise.normalise_text`) and turned into
   tokens: its Unicode code points (``unit="char"``, read from one UTF-32 buffer per batch) or
   the CRC-32 of each space-separated word (``unit="word"``, one :func:`zlib.crc32` call per word).
2. Every window of ``ngram`` consecutive tokens (one shingle) gets a 64-bit polynomial hash
   ``(((c * P + t0) * P + t1) ...) mod 2**64``, computed for all windows of the batch with
   ``ngram`` vectorised multiply-adds; windows crossing a record boundary are dropped. A text
   shorter than one n-gram is one shingle (the hash of its whole token sequence; the constant
   start value ``c`` makes the token count part of the hash). The hash is finished with the
   MurmurHash3 64-bit mixer and its high 32 bits are the shingle's hash ``h``.
3. Permutation ``k`` maps ``h`` to ``(a_k * h + b_k) mod 2**32`` with ``a_k`` odd (a bijection
   of the 32-bit values): the "affine32" scheme datasketch uses by default since 2.0. Because
   ``h`` already went through a strong mixer, the family behaves as an approximately min-wise
   independent one (the tests check the Jaccard estimate against exact Jaccard). ``a_k, b_k``
   come from SplitMix64 of ``seed`` (no dependence on numpy's generator or on ``hash()``), and
   the first ``m`` permutations of ``num_perm`` are those of ``num_perm=m``.
4. The ``(num_perm, shingles)`` matrix of a chunk of shingles is reduced per record with
   :func:`numpy.minimum.reduceat`; a record split between chunks takes the minimum of both.

A record without any shingle (empty after normalisation) has the all-``2**32 - 1`` signature.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence

import numpy as np

from dataprune.dedup.normalise import normalise_text
from dataprune.errors import DataValidationError, UnknownOptionError

__all__ = ["EMPTY_HASH", "UNITS", "minhash_signatures"]

logger = logging.getLogger(__name__)

UNITS = ("char", "word")
#: every entry of an empty record's signature
EMPTY_HASH = np.uint32(0xFFFFFFFF)

_U64 = np.uint64
_POLY = _U64(0x9E3779B97F4A7C15)  # odd multiplier of the window hash
_START = _U64(0x243F6A8885A308D3)  # non-zero start value (makes the length part of the hash)
_CHUNK_ELEMENTS = 1 << 21  # permutation matrix entries per chunk (8 MiB of uint32)


def _fmix64(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser, elementwise on a uint64 array (modified in place)."""
    x ^= x >> _U64(33)
    x *= _U64(0xFF51AFD7ED558CCD)
    x ^= x >> _U64(33)
    x *= _U64(0xC4CEB9FE1A85EC53)
    x ^= x >> _U64(33)
    return x


def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(a, b)``, each ``(num_perm,)`` uint32, ``a`` odd: SplitMix64 outputs ``2k`` and ``2k+1``."""
    golden = _U64(0x9E3779B97F4A7C15)
    state = _U64(seed) + np.arange(1, 2 * num_perm + 1, dtype=_U64) * golden
    z = state.copy()
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    z ^= z >> _U64(31)
    z = (z >> _U64(32)).astype(np.uint32)
    return z[0::2] | np.uint32(1), z[1::2]


# --------------------------------------------------------------------------------- validation
def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, (str, bytes)):
        raise DataValidationError("expected a sequence of strings, got one string")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise DataValidationError(f"expected a string, got {type(t).__name__}", record=i)
    return out


def _check_options(unit: str, ngram: int, num_perm: int, seed: int) -> None:
    if unit not in UNITS:
        raise UnknownOptionError(f"unknown unit {unit!r}; valid: {', '.join(UNITS)}")
    for name, value, low in (("ngram", ngram, 1), ("num_perm", num_perm, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise DataValidationError(f"{name} must be an integer >= {low}, got {value!r}")
    if seed >= 2**64:
        raise DataValidationError(f"seed must be < 2**64, got {seed}")


# ----------------------------------------------------------------------------------- shingles
def _tokens(texts: list[str], unit: str) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated tokens (uint64) of normalised ``texts`` and the count per text (int64)."""
    if unit == "char":
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        buf = "".join(texts).encode("utf-32-le", "surrogatepass")
        return np.frombuffer(buf, dtype=np.uint32).astype(_U64), lengths
    crc = zlib.crc32
    words = [
        [crc(w.encode("utf-8", "surrogatepass")) for w in t.split(" ")] if t else [] for t in texts
    ]
    lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    flat = np.fromiter((h for ws in words for h in ws), dtype=_U64, count=int(lengths.sum()))
    return flat, lengths


def _shingle_hashes(
    tokens: np.ndarray, lengths: np.ndarray, ngram: int
) -> tuple[np.ndarray, np.ndarray]:
    """32-bit hashes of every record's shingles, record after record, and the count per record.

    Returns
    -------
    hashes : ndarray of shape (counts.sum(),), uint32
    counts : ndarray of shape (len(lengths),), int64
        ``lengths - ngram + 1`` for records with at least ``ngram`` tokens, 1 for shorter
        non-empty ones, 0 for empty ones.
    """
    starts = np.cumsum(lengths) - lengths
    long_ = lengths >= ngram
    counts = np.where(long_, lengths - ngram + 1, (lengths > 0).astype(np.int64))
    n_win = max(len(tokens) - ngram + 1, 0)
    h = np.full(n_win, _START, dtype=_U64)
    for k in range(ngram):
        h *= _POLY
        h += tokens[k : k + n_win]
    # windows starting at [start, start + count) of a long record lie inside it: +1/-1 marks
    # (the starts are distinct, and so are the ends) and a running sum select them in order
    marks = np.zeros(n_win + 1, dtype=np.int8)
    marks[starts[long_]] += 1
    marks[(starts + counts)[long_]] -= 1
    out = h[np.cumsum(marks[:n_win], dtype=np.int8).view(bool)]
    short = np.flatnonzero(~long_ & (lengths > 0))
    if len(short):
        hs = np.full(len(short), _START, dtype=_U64)
        for k in range(ngram - 1):
            live = lengths[short] > k
            hs[live] = hs[live] * _POLY + tokens[starts[short][live] + k]
        # a short record's shingle goes after the shingles of the long records before it
        long_before = np.cumsum(np.where(long_, counts, 0))[short]
        out = np.insert(out, long_before, hs)
    return (_fmix64(out) >> _U64(32)).astype(np.uint32), counts


def _signature_batch(
    hashes: np.ndarray, counts: np.ndarray, a: np.ndarray, b: np.ndarray
) -> np.ndarray:
    """``(len(counts), num_perm)`` uint32 minima of ``a * h + b`` per record (see module doc)."""
    num_perm = len(a)
    sig = np.full((len(counts), num_perm), EMPTY_HASH, dtype=np.uint32)
    rec = np.repeat(np.arange(len(counts)), counts)
    step = max(1024, _CHUNK_ELEMENTS // num_perm)
    buf = np.empty((num_perm, min(step, len(hashes))), dtype=np.uint32)
    a_col, b_col = a[:, None], b[:, None]
    for s in range(0, len(hashes), step):
        e = min(s + step, len(hashes))
        m = buf[:, : e - s]
        np.multiply(a_col, hashes[None, s:e], out=m)
        m += b_col
        r = rec[s:e]
        seg = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
        ids = r[seg]
        sig[ids] = np.minimum(sig[ids], np.minimum.reduceat(m, seg, axis=1).T)
    return sig


# ------------------------------------------------------------------------------------- public
def minhash_signatures(
    texts: Sequence[str],
    *,
    unit: str = "char",
    ngram: int = 5,
    num_perm: int = 128,
    seed: int = 1,
    batch_size: int = 2048,
    show_progress_bar: bool | None = None,
) -> np.ndarray:
    """MinHash signatures of the n-gram sets of ``texts`` (normalised first).

    Parameters
    ----------
    texts : sequence of str, length n
        The records.
    unit : {"char", "word"}
        Shingle unit: ``ngram`` consecutive characters or space-separated words of the
        normalised text. 5 characters or 3 words are usual choices.
    ngram : int
        Tokens per shingle (>= 1). A text with fewer tokens is a single shingle.
    num_perm : int
        Number of hash permutations (signature length).
    seed : int
        Selects the permutations (0 <= seed < 2**64).
    batch_size : int
        Records hashed together; the result does not depend on it.
    show_progress_bar : bool, optional
        None: shown when the ``dataprune`` logger is at INFO or more verbose.

    Returns
    -------
    ndarray of shape (n, num_perm), uint32
        Row ``i`` is the signature of record ``i``; an empty record's row is all
        :data:`EMPTY_HASH`. The fraction of equal entries of two rows estimates the Jaccard
        similarity of the two shingle sets. Identical for identical inputs and ``seed``.
    """
    texts = _check_texts(texts)
    _check_options(unit, ngram, num_perm, seed)
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise DataValidationError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    return _compute_signatures(
        texts, unit, int(ngram), int(num_perm), int(seed), int(batch_size), show_progress_bar
    )


def _compute_signatures(
    texts: list[str],
    unit: str,
    ngram: int,
    num_perm: int,
    seed: int,
    batch_size: int,
    show_progress_bar: bool | None,
) -> np.ndarray:
    from dataprune.progress import progress

    a, b = _permutations(num_perm, seed)
    out = np.empty((len(texts), num_perm), dtype=np.uint32)
    with progress(
        total=len(texts), show_progress_bar=show_progress_bar, desc="MinHash", unit="rec"
    ) as bar:
        for s in range(0, len(texts), batch_size):
            batch = [normalise_text(t) for t in texts[s : s + batch_size]]
            tokens, lengths = _tokens(batch, unit)
            hashes, counts = _shingle_hashes(tokens, lengths, ngram)
            out[s : s + len(batch)] = _signature_batch(hashes, counts, a, b)
            bar.update(len(batch))
    logger.debug("MinHash signatures: %d records, %d permutations", len(texts), num_perm)
    return out
