"""Prediction matches DataFrame columns by name (as scikit-learn does); arrays by position."""

import numpy as np
import pandas as pd
import pytest

import bayes_rglm as br


@pytest.fixture(scope="module")
def frame_fit():
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40), "c": rng.normal(size=40)})
    y = 1.0 + 2.0 * X["a"] - 3.0 * X["b"] + 0.5 * X["c"] + rng.normal(scale=0.1, size=40)
    return br.RGLM("gaussian").fit(X, y, method="mle"), X, y


def test_reordered_frame_predicts_the_same(frame_fit):
    fit, X, y = frame_fit
    assert fit.named_columns
    shuffled = X[["c", "a", "b"]]
    np.testing.assert_allclose(fit.predict(shuffled), fit.predict(X), rtol=0, atol=1e-12)
    np.testing.assert_allclose(fit.log_likelihood(shuffled, y), fit.log_likelihood(X, y), rtol=0, atol=1e-12)
    lo, hi = fit.predict_interval(shuffled)
    lo0, hi0 = fit.predict_interval(X)
    np.testing.assert_allclose(lo, lo0, atol=1e-12)
    # The slopes differ enough that matching by position would move the prediction far.
    positional = fit.predict(shuffled.to_numpy())
    assert np.max(np.abs(positional - fit.predict(X))) > 1.0


def test_arrays_are_matched_by_position(frame_fit):
    fit, X, _ = frame_fit
    np.testing.assert_allclose(fit.predict(X.to_numpy()), fit.predict(X), atol=1e-12)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda X: X[["a", "b"]], "missing column 'c'"),
        (lambda X: X.rename(columns={"b": "B"}), "missing column 'b'"),
        (lambda X: X.assign(d=1.0), "column 'd', which the model was not fitted on"),
        (lambda X: pd.concat([X, X[["a"]]], axis=1), "duplicated column 'a'"),
    ],
    ids=["missing", "renamed", "unknown", "duplicated"],
)
def test_bad_columns_name_the_column(frame_fit, make, message):
    fit, X, y = frame_fit
    with pytest.raises(ValueError, match=message):
        fit.predict(make(X))
    with pytest.raises(ValueError, match=message):
        fit.log_likelihood(make(X), y)


def test_names_survive_save_and_load(frame_fit, tmp_path):
    fit, X, _ = frame_fit
    path = fit.save(tmp_path / "fit.nc")
    loaded = br.load(path)
    assert loaded.named_columns
    np.testing.assert_allclose(loaded.predict(X[["b", "c", "a"]]), fit.predict(X), atol=1e-12)


def test_array_fit_keeps_positional_matching():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(30, 2))
    y = X @ np.array([1.0, -1.0]) + rng.normal(scale=0.1, size=30)
    fit = br.RGLM("gaussian").fit(X, y, method="mle")
    assert not fit.named_columns
    frame = pd.DataFrame(X, columns=["p", "q"])
    np.testing.assert_allclose(fit.predict(frame), fit.predict(X), atol=1e-12)
