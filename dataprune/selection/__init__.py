"""Coreset selectors (estimator-style: ``fit`` -> ``selected_indices_``, ``scores_``, ``ranking_``)."""

from __future__ import annotations

from dataprune.selection.base import BaseSelector, resolve_budget

__all__ = ["BaseSelector", "resolve_budget"]
