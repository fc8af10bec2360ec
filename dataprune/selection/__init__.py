"""Coreset selectors (estimator-style: ``fit`` -> ``selected_indices_``, ``scores_``, ``ranking_``).

Selectors: :class:`RandomSelector`, :class:`ClassBalancedSelector`, :class:`LongestSelector`,
:class:`ScoreSelector` (any score, with offset), :class:`KCenterGreedy`,
:class:`FacilityLocation`, :class:`Herding`, :class:`Prototypes`, :class:`SemDeDup`, :class:`CCS`,
:class:`EL2NSelector`, :class:`ConfidentLearningSelector`. ``METHODS`` maps the method names
used by :func:`dataprune.select` and ``dataprune select`` to them.
"""

from __future__ import annotations

from dataprune.lazy import lazy_exports
from dataprune.selection.base import BaseSelector, resolve_budget

__all__ = [
    "CCS",
    "METHODS",
    "BaseSelector",
    "ClassBalancedSelector",
    "ConfidentLearningSelector",
    "EL2NSelector",
    "FacilityLocation",
    "Herding",
    "KCenterGreedy",
    "LongestSelector",
    "MethodSpec",
    "Prototypes",
    "RandomSelector",
    "ScoreSelector",
    "SelectionResult",
    "SemDeDup",
    "compare_selection_with_random",
    "resolve_budget",
    "select",
]

_LAZY = {
    "RandomSelector": "dataprune.selection.baselines",
    "ClassBalancedSelector": "dataprune.selection.baselines",
    "LongestSelector": "dataprune.selection.baselines",
    "ScoreSelector": "dataprune.selection.baselines",
    "KCenterGreedy": "dataprune.selection.kcenter",
    "FacilityLocation": "dataprune.selection.facility_location",
    "Herding": "dataprune.selection.herding",
    "Prototypes": "dataprune.selection.prototypes",
    "SemDeDup": "dataprune.selection.semdedup",
    "CCS": "dataprune.selection.ccs",
    "EL2NSelector": "dataprune.selection.el2n",
    "ConfidentLearningSelector": "dataprune.selection.confident_learning",
    "METHODS": "dataprune.selection.methods",
    "MethodSpec": "dataprune.selection.methods",
    "SelectionResult": "dataprune.selection.api",
    "select": "dataprune.selection.api",
    "compare_selection_with_random": "dataprune.selection.against_random",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
