"""scikit-learn estimators: sklearn's own estimator checks, composition, and exact MAP = penalised-fit mappings."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_iris, make_regression
from sklearn.linear_model import LogisticRegression, PoissonRegressor
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from bayes_rglm.sklearn import RGLMClassifier, RGLMRegressor


def _expected_failures(estimator):
    if isinstance(estimator, RGLMRegressor):
        # sklearn's data here has 30 columns and 15 rows: the gaussian MAP interpolates, and its density grows
        # without bound as sigma -> 0, so the weighted and the repeated fits stop at different points of a
        # degenerate mode.  Where the MAP exists, sample_weight equals repeated rows: tests/test_weights.py.
        return {"check_sample_weight_equivalence_on_dense_data": "degenerate gaussian MAP when p > n"}
    return {}


@pytest.mark.slow
@parametrize_with_checks(
    [RGLMRegressor(prior_scale=10.0), RGLMClassifier(prior_scale=10.0)], expected_failed_checks=_expected_failures
)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X[:, :8])
    return X, y


@pytest.mark.parametrize("C", [0.05, 1.0])
def test_map_equals_logistic_regression(cancer, C):
    X, y = cancer
    ref = LogisticRegression(C=C, tol=1e-12, max_iter=10_000, solver="newton-cholesky").fit(X, y)
    ours = RGLMClassifier(prior_scale=np.sqrt(C), bias_scale=1e6).fit(X, y)
    coef = ours.fit_.params["w0"][:, 0]
    np.testing.assert_allclose(coef, ref.coef_[0], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.fit_.params["b0"][0], ref.intercept_[0], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("alpha", [0.01, 0.3])
def test_map_equals_poisson_regressor(alpha):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 4))
    y = rng.poisson(np.exp(0.4 + X @ np.array([0.3, -0.2, 0.1, 0.0])))
    ref = PoissonRegressor(alpha=alpha, tol=1e-12, max_iter=10_000, solver="newton-cholesky").fit(X, y)
    ours = RGLMRegressor(family="poisson", prior_scale=1 / np.sqrt(len(y) * alpha), bias_scale=1e6).fit(X, y)
    np.testing.assert_allclose(ours.fit_.params["w0"][:, 0], ref.coef_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.fit_.params["b0"][0], ref.intercept_, rtol=1e-6, atol=1e-9)


def test_pipeline_grid_search_and_cross_val():
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), RGLMClassifier())
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.mean() > 0.85
    grid = GridSearchCV(pipe, {"rglmclassifier__prior_scale": [0.01, 1.0]}, cv=3).fit(X, y)
    # The same cross-validation by hand: the grid must pick the better prior scale, and the scale must matter.
    manual = {
        s: cross_val_score(make_pipeline(StandardScaler(), RGLMClassifier(prior_scale=s)), X, y, cv=3).mean()
        for s in (0.01, 1.0)
    }
    assert manual[0.01] != manual[1.0]
    assert grid.best_params_["rglmclassifier__prior_scale"] == max(manual, key=manual.get)
    assert grid.best_score_ == pytest.approx(max(manual.values()), abs=1e-12)
    assert list(grid.predict(X[:3])) == list(grid.best_estimator_.predict(X[:3]))
    Xr, yr = make_regression(n_samples=80, n_features=3, noise=1.0, random_state=0)
    assert cross_val_score(RGLMRegressor(), Xr, yr, cv=3).mean() > 0.9


def test_string_labels_and_feature_names():
    import pandas as pd

    X, y = load_iris(return_X_y=True)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = RGLMClassifier().fit(frame, labels)
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"]
    assert list(clf.feature_names_in_) == ["a", "b", "c", "d"] and clf.n_features_in_ == 4
    assert set(clf.predict(frame)) <= set(labels)
    assert clf.score(frame, labels) > 0.9
