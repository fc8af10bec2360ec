"""SFT curation in one call: ``dataprune.curate(data, recipe)`` runs validation, exact / fuzzy /
semantic dedup, quality filters and a budgeted selection, resumably, with a status for every
record and an HTML report comparing the kept set with random subsets of the same size."""

from __future__ import annotations

from dataprune.lazy import lazy_exports

__all__ = ["BUILTIN_RECIPES", "STAGES", "CurationResult", "Recipe", "curate", "load_recipe"]

_LAZY = {
    "curate": ".pipeline",
    "CurationResult": ".result",
    "Recipe": ".recipe",
    "load_recipe": ".recipe",
    "BUILTIN_RECIPES": ".recipe",
    "STAGES": ".stages",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
