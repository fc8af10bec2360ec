"""Named selection methods (the ``--method`` values): which selector, and what it is fitted on.

Every entry is a :class:`MethodSpec`. ``METHODS.get(name)`` fails with the list of valid names.
Selector classes are imported only when a method is built, so listing methods stays cheap.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dataprune.errors import UnknownOptionError
from dataprune.registry import Registry

__all__ = ["DIFFICULTY_OPTIONS", "FIT_INPUTS", "METHODS", "MethodSpec", "get_method"]

#: What a selector's ``fit`` receives.
FIT_INPUTS = (
    "none",  # nothing but the record count
    "labels",  # fit(index, labels)
    "lengths",  # fit(lengths)
    "embeddings",  # fit(embeddings)
    "embeddings+labels",  # fit(embeddings, labels)
    "difficulty",  # fit(difficulty scores): proxy EL2N/GraNd with labels, LM EL2N/GraNd for SFT
)

#: Options consumed while computing difficulty scores (not passed to the selector).
DIFFICULTY_OPTIONS = {
    "score": "which difficulty score: 'el2n' (default) or 'grand'",
    "n_runs": "proxy heads averaged (labelled data), default 5",
    "proxy": "proxy head options (dict, see dataprune.scores.ProxyConfig)",
    "batch_size": "LM batch size (SFT data), default 8",
    "max_length": "LM token window per record (SFT data), default 1024",
}

#: Options consumed while computing lengths.
LENGTH_OPTIONS = {"unit": "'tokens' (default, the LM tokenizer), 'words' or 'chars'"}


@dataclass(frozen=True)
class MethodSpec:
    """A selection method.

    Attributes
    ----------
    name : str
        Registry name.
    target : str
        ``"module:Class"`` of the selector.
    fit_input : str
        One of :data:`FIT_INPUTS`.
    summary : str
        One line for ``--help`` and docs.
    fixed : mapping
        Selector options this method fixes (users cannot override them).
    defaults : mapping
        Selector options this method sets unless the user overrides them.
    """

    name: str
    target: str
    fit_input: str
    summary: str
    fixed: Mapping[str, Any] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)

    @property
    def needs_labels(self) -> bool:
        return self.fit_input in ("labels", "embeddings+labels")

    @property
    def needs_embeddings(self) -> bool:
        return self.fit_input in ("embeddings", "embeddings+labels")

    def selector_class(self) -> type:
        module, cls = self.target.split(":")
        return getattr(importlib.import_module(module), cls)

    def selector_options(self) -> list[str]:
        """Options the user may pass to the selector."""
        sig = inspect.signature(self.selector_class().__init__)
        skip = {"self", "n_samples", "fraction", "random_state", "show_progress_bar", *self.fixed}
        return [p for p in sig.parameters if p not in skip]

    def valid_options(self) -> list[str]:
        extra: list[str] = []
        if self.fit_input == "difficulty":
            extra = [o for o in DIFFICULTY_OPTIONS if o not in self.fixed]
        elif self.fit_input == "lengths":
            extra = list(LENGTH_OPTIONS)
        return sorted({*self.selector_options(), *extra})

    def split_options(self, options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Split user options into (selector options, input options); unknown names fail."""
        valid = self.valid_options()
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise UnknownOptionError(
                f"unknown option(s) {', '.join(map(repr, unknown))} for method {self.name!r}; "
                f"valid: {', '.join(valid) or '(none)'}"
            )
        sel_names = set(self.selector_options())
        sel = {**self.defaults, **{k: v for k, v in options.items() if k in sel_names}}
        inp = {k: v for k, v in options.items() if k not in sel_names}
        params = set(inspect.signature(self.selector_class().__init__).parameters)
        for k, v in self.fixed.items():
            (sel if k in params else inp)[k] = v
        return sel, inp

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Validate option names and values before any data or model is loaded.

        Raises
        ------
        UnknownOptionError, DataValidationError
            An unknown option name (with the valid ones), or a value the selector rejects.
        """
        sel, _ = self.split_options(options)
        self.build(n_samples=1, **sel)._check_params()

    def build(
        self,
        *,
        n_samples: int | None = None,
        fraction: float | None = None,
        random_state: int | None = None,
        show_progress_bar: bool | None = None,
        **options: Any,
    ):
        """Instantiate the selector (``options`` are selector options only)."""
        cls = self.selector_class()
        kwargs = dict(options)
        if "show_progress_bar" in inspect.signature(cls.__init__).parameters:
            kwargs["show_progress_bar"] = show_progress_bar
        return cls(n_samples=n_samples, fraction=fraction, random_state=random_state, **kwargs)


METHODS: Registry[MethodSpec] = Registry("selection method")


def _add(spec: MethodSpec) -> None:
    METHODS.register(spec.name, spec)


_add(
    MethodSpec(
        "random",
        "dataprune.selection.baselines:RandomSelector",
        "none",
        "uniform random subset (the baseline)",
    )
)
_add(
    MethodSpec(
        "class_balanced",
        "dataprune.selection.baselines:ClassBalancedSelector",
        "labels",
        "random subset with classes as equal as possible (needs a label field)",
    )
)
_add(
    MethodSpec(
        "longest",
        "dataprune.selection.baselines:LongestSelector",
        "lengths",
        "the records with the longest responses (LM tokens by default)",
    )
)
_add(
    MethodSpec(
        "kcenter",
        "dataprune.selection.kcenter:KCenterGreedy",
        "embeddings",
        "k-center greedy coverage of the embedding space (Sener & Savarese 2018)",
    )
)
_add(
    MethodSpec(
        "facility_location",
        "dataprune.selection.facility_location:FacilityLocation",
        "embeddings",
        "facility-location submodular coverage on a kNN graph (lazy greedy)",
    )
)
_add(
    MethodSpec(
        "cluster_facility_location",
        "dataprune.distributed.clustered:ClusteredFacilityLocation",
        "embeddings",
        "facility location inside k-means clusters, budget split by cluster size (runs per "
        "cluster on --engine ray)",
    )
)
_add(
    MethodSpec(
        "prototypes",
        "dataprune.selection.prototypes:Prototypes",
        "embeddings",
        "distance to k-means prototypes, keep='hard' (far, default) or 'easy' (Sorscher et al. 2022)",
    )
)
_add(
    MethodSpec(
        "herding",
        "dataprune.selection.herding:Herding",
        "embeddings",
        "greedy mean matching: the subset's mean embedding tracks the data's (Welling 2009)",
    )
)
_add(
    MethodSpec(
        "semdedup",
        "dataprune.selection.semdedup:SemDeDup",
        "embeddings",
        "remove semantic near-duplicates inside k-means clusters, then fill (Abbas et al. 2023)",
    )
)
_add(
    MethodSpec(
        "ccs",
        "dataprune.selection.ccs:CCS",
        "difficulty",
        "coverage-centric stratified sampling over EL2N/GraNd (Zheng et al. 2023)",
    )
)
_add(
    MethodSpec(
        "el2n",
        "dataprune.selection.baselines:ScoreSelector",
        "difficulty",
        "keep the hardest by EL2N (proxy heads with labels; LM tokens for SFT), optional offset",
        fixed={"score": "el2n"},
        defaults={"keep": "hard"},
    )
)
_add(
    MethodSpec(
        "grand",
        "dataprune.selection.baselines:ScoreSelector",
        "difficulty",
        "keep the hardest by last-layer GraNd, optional offset (Paul et al. 2021)",
        fixed={"score": "grand"},
        defaults={"keep": "hard"},
    )
)
_add(
    MethodSpec(
        "confident_learning",
        "dataprune.selection.confident_learning:ConfidentLearningSelector",
        "embeddings+labels",
        "drop likely label errors (confident learning), then sample the rest (needs labels)",
    )
)


def get_method(name: str) -> MethodSpec:
    """The :class:`MethodSpec` for ``name``; unknown names fail with the valid ones."""
    return METHODS.get(name)
