"""The curation report (self-contained HTML) and its kept-versus-random comparison."""

from __future__ import annotations

from dataprune.curation.report.compare import Comparison, compare_with_random
from dataprune.curation.report.html import render_report, write_report

__all__ = ["Comparison", "compare_with_random", "render_report", "write_report"]
