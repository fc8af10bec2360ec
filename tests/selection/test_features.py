"""The selection-input providers: every method's input kind has one, and each computes what the
selector is fitted on (shape (n_records, ...)) and reports its columns."""

from __future__ import annotations

import numpy as np
import pytest

from dataprune.errors import UnknownOptionError
from dataprune.selection.features import FEATURES, FeatureContext
from dataprune.selection.methods import FIT_INPUTS, METHODS


def test_every_method_input_kind_has_a_provider():
    assert set(FEATURES.names()) == set(FIT_INPUTS)
    for name in METHODS.names():
        assert callable(FEATURES.get(METHODS.get(name).fit_input))
    with pytest.raises(UnknownOptionError, match="valid: difficulty, embeddings"):
        FEATURES.get("pixels")


def _ctx(records, **kw):
    base = dict(
        spec=METHODS.get("longest"),
        records=records,
        fields=["text"],
        is_sft=False,
        prompt_field=None,
        response_field=None,
        label_field=None,
        y=None,
        model=None,
        embeddings=None,
        rows=np.arange(len(records)),
        n_input=len(records),
        engine=None,
        engine_options={},
        input_options={},
        random_state=0,
        show_progress_bar=False,
    )
    base.update(kw)
    return FeatureContext(**base)


def test_lengths_and_precomputed_embeddings():
    recs = [{"text": "a b c"}, {"text": "hello"}, {"text": "x y"}]
    ctx = _ctx(recs, input_options={"unit": "words"})
    np.testing.assert_array_equal(FEATURES.get("lengths")(ctx), [3, 1, 2])
    assert list(ctx.columns) == ["length_words"]
    E = np.arange(12, dtype=np.float32).reshape(4, 3)  # one row per input record
    ctx = _ctx(recs, embeddings=E, rows=np.array([0, 2, 3]), n_input=4)
    np.testing.assert_array_equal(FEATURES.get("embeddings")(ctx), E[[0, 2, 3]])
    assert ctx.models["encoder"] == {"name": "precomputed embeddings"}
    assert FEATURES.get("none")(ctx).shape == (3, 1)
