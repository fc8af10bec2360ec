from __future__ import annotations

import pytest

from dataprune.errors import UnknownOptionError
from dataprune.selection import METHODS, BaseSelector
from dataprune.selection.methods import FIT_INPUTS, get_method

EXPECTED = {
    "random",
    "class_balanced",
    "longest",
    "kcenter",
    "facility_location",
    "cluster_facility_location",
    "prototypes",
    "herding",
    "semdedup",
    "ccs",
    "el2n",
    "grand",
    "confident_learning",
}


def test_all_methods_registered_and_buildable():
    assert set(METHODS.names()) == EXPECTED
    for name in METHODS:
        spec = get_method(name)
        assert spec.fit_input in FIT_INPUTS
        sel_opts, _ = spec.split_options({})
        sel = spec.build(n_samples=3, random_state=0, **sel_opts)
        assert isinstance(sel, BaseSelector)
        assert sel.n_samples == 3 and sel.random_state == 0


def test_unknown_method_lists_valid_names():
    with pytest.raises(UnknownOptionError) as exc:
        get_method("coreset-magic")
    msg = str(exc.value)
    assert "coreset-magic" in msg
    for name in EXPECTED:
        assert name in msg


def test_names_are_case_insensitive():
    assert get_method("SemDeDup").name == "semdedup"


def test_options_are_validated_and_split():
    spec = get_method("el2n")
    sel, inp = spec.split_options({"offset": 0.1, "n_runs": 3})
    assert sel == {"keep": "hard", "offset": 0.1}
    assert inp == {"n_runs": 3, "score": "el2n"}
    with pytest.raises(UnknownOptionError, match=r"valid: .*offset"):
        spec.split_options({"offest": 0.1})
    # fixed options cannot be overridden
    with pytest.raises(UnknownOptionError, match="score"):
        spec.split_options({"score": "grand"})
    assert get_method("grand").split_options({})[1]["score"] == "grand"
    assert "keep" in get_method("prototypes").valid_options()
    assert get_method("longest").split_options({"unit": "words"}) == ({}, {"unit": "words"})
