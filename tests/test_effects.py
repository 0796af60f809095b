"""Marginal effects (``fit.predictions``, ``comparisons``, ``slopes``) against statsmodels' ``get_margeff``,
by hand for factors, and the coverage of their intervals by simulation for a small net."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import bayes_rglm as br


@pytest.fixture(scope="module")
def binary():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 2))
    y = (rng.random(300) < 1 / (1 + np.exp(-(0.3 + X @ np.array([1.0, -0.5]))))).astype(float)
    return X, y


@pytest.mark.parametrize(("family", "reference"), [("bernoulli", sm.Logit), ("poisson", sm.Poisson)])
def test_average_slopes_match_statsmodels_margeff(binary, family, reference):
    X, y = binary
    if family == "poisson":
        y = np.random.default_rng(1).poisson(np.exp(0.2 + X @ np.array([0.4, -0.3]))).astype(float)
    ref = reference(y, sm.add_constant(X)).fit(disp=0).get_margeff(at="overall")
    fit = br.RGLM(family).fit(X, y, method="mle")
    for j, name in enumerate(["x0", "x1"]):
        table = fit.slopes(name)
        np.testing.assert_allclose(table["estimate"].iloc[0], ref.margeff[j], rtol=1e-6)
        np.testing.assert_allclose(table["std_error"].iloc[0], ref.margeff_se[j], rtol=1e-4)


def test_posterior_slopes_agree_with_the_delta_method(binary):
    X, y = binary
    point = br.RGLM("bernoulli").fit(X, y, method="mle").slopes("x0")
    laplace = br.RGLM("bernoulli", prior=br.GaussianPrior(scale=100.0)).fit(X, y, method="laplace").slopes("x0")
    assert "posterior draws" in laplace.attrs["interval"]
    se = point["std_error"].iloc[0]
    assert abs(laplace["estimate"].iloc[0] - point["estimate"].iloc[0]) < 0.1 * se
    np.testing.assert_allclose(laplace["std_error"].iloc[0], se, rtol=0.1)


@pytest.fixture(scope="module")
def factor_fit():
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"x": rng.standard_normal(200), "g": rng.choice(["a", "b", "c"], 200)})
    df["y"] = rng.poisson(np.exp(0.2 * df["x"] + np.where(df["g"] == "b", 0.5, 0.0))).astype(float)
    return df, br.RGLM("poisson").fit("y ~ x * g", data=df, method="mle")


def test_factor_comparisons_are_level_contrasts_averaged_over_rows(factor_fit):
    df, fit = factor_fit
    table = fit.comparisons("g")
    assert list(table.index) == ["g: b - a", "g: c - a"]
    for level, row in zip("bc", table["estimate"], strict=True):
        expected = np.mean(fit.predict(df.assign(g=level)) - fit.predict(df.assign(g="a")))
        np.testing.assert_allclose(row, expected, rtol=1e-10)
    numeric = fit.comparisons("x", (0.0, 1.0))
    expected = np.mean(fit.predict(df.assign(x=1.0)) - fit.predict(df.assign(x=0.0)))
    np.testing.assert_allclose(numeric["estimate"].iloc[0], expected, rtol=1e-10)


def test_predictions_at_given_values_and_plots(factor_fit):
    df, fit = factor_fit
    grid = pd.DataFrame({"x": [0.0, 1.0], "g": ["a", "b"]})
    table = fit.predictions(grid, plot=True)
    np.testing.assert_allclose(table["estimate"], fit.predict(grid), rtol=1e-10)
    assert np.all(table["lower_0.95"] < table["estimate"]) and "ax" in table.attrs
    slope = fit.slopes("x", data=grid.iloc[[0]])  # at one point: the derivative there
    np.testing.assert_allclose(
        slope["estimate"].iloc[0], fit.params["w0"][0, 0] * fit.predict(grid.iloc[[0]])[0], rtol=1e-6
    )


def test_interval_coverage_for_a_small_net():
    # 40 simulated data sets from a 1-2-1 tanh network; the 90% delta-method interval of the average slope
    # should cover the true average slope about 90% of the time (Monte Carlo sd 0.047 at 40 runs).
    rng = np.random.default_rng(5)
    model = br.RGLM("gaussian", hidden=(2,), activation="tanh", prior=br.GaussianPrior(scale=10.0))
    covered = []
    for _ in range(40):
        x = rng.uniform(-2, 2, (200, 1))
        y = np.tanh(1.5 * x[:, 0]) + 0.3 * rng.standard_normal(200)
        truth = np.mean(1.5 * (1 - np.tanh(1.5 * x[:, 0]) ** 2))
        with warnings.catch_warnings():  # a flat MAP of a net may stop just short of its gradient tolerance
            warnings.simplefilter("ignore", br.ConvergenceWarning)
            table = model.fit(x, y, method="map", num_restarts=2).slopes("x0", prob=0.9)
        covered.append(table["lower_0.9"].iloc[0] <= truth <= table["upper_0.9"].iloc[0])
    assert 0.75 <= np.mean(covered) <= 1.0, np.mean(covered)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda f: f.slopes("z"), "variable 'z' is not in the model"),
        (lambda f: f.slopes("g"), "is a factor; use comparisons"),
        (lambda f: f.comparisons("nope"), "variable 'nope' is not in the model's data"),
    ],
)
def test_bad_effects_are_named(factor_fit, call, message):
    _, fit = factor_fit
    with pytest.raises(ValueError, match=message):
        call(fit)


def test_classes_have_no_scalar_mean():
    X = np.random.default_rng(0).standard_normal((30, 2))
    fit = br.RGLM("categorical").fit(X, np.arange(30.0) % 3, method="map")
    with pytest.raises(ValueError, match="needs a scalar mean"):
        fit.slopes("x0")
