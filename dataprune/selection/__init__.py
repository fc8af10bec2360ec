"""Coreset selectors (estimator-style: ``fit`` -> ``selected_indices_``, ``scores_``, ``ranking_``).

Selectors: :class:`RandomSelector`, :class:`ClassBalancedSelector`, :class:`LongestSelector`,
:class:`ScoreSelector` (any score, with offset), :class:`KCenterGreedy`,
:class:`FacilityLocation`, :class:`Prototypes`, :class:`SemDeDup`, :class:`CCS`,
:class:`EL2NSelector`, :class:`ConfidentLearningSelector`. ``METHODS`` maps the method names
used by :func:`dataprune.select` and ``dataprune select`` to them.
"""

from __future__ import annotations

import importlib
from typing import Any

from dataprune.selection.base import BaseSelector, resolve_budget

__all__ = [
    "CCS",
    "METHODS",
    "BaseSelector",
    "ClassBalancedSelector",
    "ConfidentLearningSelector",
    "EL2NSelector",
    "FacilityLocation",
    "KCenterGreedy",
    "LongestSelector",
    "MethodSpec",
    "Prototypes",
    "RandomSelector",
    "ScoreSelector",
    "SelectionResult",
    "SemDeDup",
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
    "Prototypes": "dataprune.selection.prototypes",
    "SemDeDup": "dataprune.selection.semdedup",
    "CCS": "dataprune.selection.ccs",
    "EL2NSelector": "dataprune.selection.el2n",
    "ConfidentLearningSelector": "dataprune.selection.confident_learning",
    "METHODS": "dataprune.selection.methods",
    "MethodSpec": "dataprune.selection.methods",
    "SelectionResult": "dataprune.selection.api",
    "select": "dataprune.selection.api",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dataprune.selection' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
