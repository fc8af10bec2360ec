"""Curation stages (a registry keyed by stage kind; importing this package registers them)."""

from __future__ import annotations

from dataprune.curation.stages import dedup, quality, select  # noqa: F401 - registration
from dataprune.curation.stages.base import STAGES, Stage, StageConfig, StageOutput

__all__ = ["STAGES", "Stage", "StageConfig", "StageOutput"]
