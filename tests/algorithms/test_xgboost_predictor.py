"""The serving predictor calls XGBoost's C API directly for float32 rows: it must answer
exactly what ``Booster.inplace_predict`` answers, for every input it is given."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from algorithms.xgboost import XGBoostPredictor
from core.errors import SchemaError


@pytest.fixture(scope="module", params=["binary:logistic", "multi:softprob"])
def booster(request) -> xgb.Booster:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2000, 12)).astype(np.float32)
    x[x > 1.8] = np.nan  # missing values take the trees' default branches
    classes = 3 if request.param == "multi:softprob" else 2
    y = rng.integers(0, classes, len(x))
    params = {"objective": request.param, "max_depth": 4, "nthread": 1}
    if classes > 2:
        params["num_class"] = classes
    return xgb.train(params, xgb.DMatrix(x, y), 20)


@pytest.mark.parametrize("rows", [1, 17, 1500])
def test_predictions_equal_inplace_predict(booster, rows):
    predictor = XGBoostPredictor(booster)
    x = np.random.default_rng(rows).normal(size=(rows, 12)).astype(np.float32)
    x[::3, 2] = np.nan
    expected = booster.inplace_predict(x, validate_features=False)
    strided = np.repeat(x, 2, axis=1)[:, ::2]  # the same values, not contiguous
    for given in (x, x.astype(np.float64), np.asfortranarray(x), strided):
        scores = predictor.predict(given)
        assert scores.shape == expected.shape and scores.dtype == expected.dtype
        assert np.array_equal(scores, expected)
    first = predictor.predict(x)
    predictor.predict(x[:1] + 1)  # the next call reuses XGBoost's buffer: ours was copied
    assert np.array_equal(first, expected)


def test_wrong_width_is_named(booster):
    with pytest.raises(SchemaError, match="expected rows of 12 features, got shape"):
        XGBoostPredictor(booster).predict(np.zeros((2, 11), dtype=np.float32))
