"""What ``benchmarks/selection_quality.py`` compares: the MMLU pool, the conditions, the methods and
the downstream learner's settings."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "mmlu" / "test"
RESULTS = ROOT / "benchmarks" / "results"
NAME = "selection_quality"

FRACTIONS = (0.1, 0.3, 0.5, 0.7)
CONDITIONS = ("clean", "noise20", "dup30")
METHODS = (
    "random",
    "class_balanced",
    "kcenter",
    "facility_location",
    "prototypes_easy",
    "prototypes_hard",
    "semdedup",
    "ccs_el2n",
    "el2n",
    "el2n_offset",
    "grand",
    "confident_learning",
)
TEST_FRACTION = 0.3
SPLIT_SEED = 20240601
DUP_SEED = 7
NOISE_RATE = 0.2
DUP_SOURCE_FRACTION = 0.1
DUP_COPIES = 3
LR_C = 10.0
LR_MAX_ITER = 30
EL2N_OFFSET = 0.1
CCS_BETA = 0.1
