"""Deduplication of text records.

:func:`normalise_text` (the canonical form texts are compared in),
:func:`minhash_signatures` (vectorised MinHash of character or word n-gram sets),
:func:`lsh_params` / :func:`lsh_candidate_pairs` (LSH banding) and :func:`fuzzy_duplicates`
(near-duplicate groups with a survivor per group, :class:`FuzzyDuplicates`). Importing the
package imports no numpy; each name loads its module on first use.
"""

from __future__ import annotations

from dataprune.lazy import lazy_exports

__all__ = [
    "FuzzyDuplicates",
    "fuzzy_duplicates",
    "lsh_candidate_pairs",
    "lsh_params",
    "minhash_signatures",
    "normalise_text",
]

_LAZY = {
    "FuzzyDuplicates": "dataprune.dedup.fuzzy",
    "fuzzy_duplicates": "dataprune.dedup.fuzzy",
    "lsh_candidate_pairs": "dataprune.dedup.lsh",
    "lsh_params": "dataprune.dedup.lsh",
    "minhash_signatures": "dataprune.dedup.minhash",
    "normalise_text": "dataprune.dedup.normalise",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
