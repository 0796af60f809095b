"""Standard-error types (``cov_type=``) against R's ``summary`` and statsmodels' sandwiches.

``"glm"`` must reproduce R's ``summary.glm`` (expected information, Pearson dispersion on n - p df for
gaussian and gamma, t-based p-values), ``summary(glm.nb)`` and ``polr``'s standard errors; the references
are those of ``tests/reference/glm_surface.R``.  Sandwiches: statsmodels' OLS (HC0-HC3; a gaussian
GLM's coefficients are OLS's) and GLM (HC0 and cluster; statsmodels' GLM ignores HC1-HC3's corrections,
so those are checked on OLS only).  Limit: standard errors within 2% (they agree far closer).
"""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from test_weights import CASES, coefficients, load

import bayes_rglm as br

SE_RTOL = 0.02

GLM_CASES = {
    "poisson_weights_offset": ("poisson", None),
    "gaussian_weights": ("gaussian", None),
    "gamma_weights": ("gamma", "log"),
    "bernoulli_weights": ("bernoulli", None),
    "negbin_weights": ("negative_binomial", None),
    "birthwt_cloglog": ("bernoulli", "cloglog"),
}


@pytest.mark.parametrize("case", list(GLM_CASES))
def test_glm_standard_errors_are_r_summary(case):
    family, link = GLM_CASES[case]
    X, y, w, offset = load(case)
    fit = br.RGLM(family, link=link).fit(X, y, method="mle", weights=w, offset=offset, cov_type="glm")
    ref = CASES[case]
    np.testing.assert_allclose(coefficients(fit, bse=True), ref["se_glm"], rtol=SE_RTOL)
    table = fit.summary()
    assert table.attrs["cov_type"] == "glm"
    p_values = table.loc[["b0"] + [f"w0[x{j}]" for j in range(X.shape[1])], "p_value"].to_numpy()
    np.testing.assert_allclose(p_values, ref["p_glm"], rtol=1e-3)
    assert ("t" in table.columns) == (family in ("gaussian", "gamma"))


def test_cloglog_glm_differs_from_observed_as_r_does():
    # The case: a non-canonical link, where R's summary uses the expected information.
    X, y, _, _ = load("birthwt_cloglog")
    observed = br.RGLM("bernoulli", link="cloglog").fit(X, y, method="mle")
    expected = br.RGLM("bernoulli", link="cloglog").fit(X, y, method="mle", cov_type="expected")
    ref = np.asarray(CASES["birthwt_cloglog"]["se_glm"])
    np.testing.assert_allclose(coefficients(expected, bse=True), ref, rtol=SE_RTOL)
    assert np.max(np.abs(coefficients(observed, bse=True) / ref - 1.0)) > 0.02


def test_expected_equals_observed_for_a_canonical_link():
    X, y, w, offset = load("poisson_weights_offset")
    observed = br.RGLM("poisson").fit(X, y, method="mle", weights=w, offset=offset)
    expected = br.RGLM("poisson").fit(X, y, method="mle", weights=w, offset=offset, cov_type="expected")
    np.testing.assert_allclose(coefficients(expected, bse=True), coefficients(observed, bse=True), rtol=1e-6)


def test_polr_glm_is_its_observed_information():
    X, y, w, _ = load("polr_weights")
    fit = br.RGLM("ordinal").fit(X, y, method="mle", weights=w, cov_type="glm")
    np.testing.assert_allclose(np.ravel(fit.bse["w0"]), CASES["polr_weights"]["se"], rtol=SE_RTOL)


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((80, 3))
    y_gauss = X @ np.array([0.5, -1.0, 0.2]) + rng.standard_normal(80) * (0.5 + np.abs(X[:, 0]))
    y_count = rng.poisson(np.exp(0.2 + X @ np.array([0.3, -0.2, 0.1]))).astype(float)
    groups = rng.integers(0, 10, 80)
    return X, y_gauss, y_count, groups


@pytest.mark.parametrize("cov_type", ["HC0", "HC1", "HC2", "HC3"])
def test_sandwich_of_a_gaussian_glm_is_ols_sandwich(regression, cov_type):
    X, y, _, _ = regression
    ref = sm.OLS(y, sm.add_constant(X)).fit(cov_type=cov_type)
    fit = br.RGLM("gaussian").fit(X, y, method="mle", cov_type=cov_type)
    np.testing.assert_allclose(coefficients(fit, bse=True), ref.bse, rtol=SE_RTOL)
    assert fit.summary().attrs["cov_type"] == cov_type


def test_poisson_hc0_and_cluster_match_statsmodels(regression):
    X, _, y, groups = regression
    glm = sm.GLM(y, sm.add_constant(X), family=sm.families.Poisson())
    for cov_type, kwds in (("HC0", {}), ("cluster", {"groups": groups})):
        ref = glm.fit(cov_type=cov_type, cov_kwds=kwds)
        extra = {"groups": groups} if cov_type == "cluster" else {}
        fit = br.RGLM("poisson").fit(X, y, method="mle", cov_type=cov_type, **extra)
        np.testing.assert_allclose(coefficients(fit, bse=True), ref.bse, rtol=SE_RTOL, err_msg=cov_type)


def test_cluster_groups_follow_dropped_rows(regression):
    X, _, y, groups = regression
    w = np.ones(len(y))
    w[:5] = 0.0
    dropped = br.RGLM("poisson").fit(X, y, method="mle", weights=w, cov_type="cluster", groups=groups)
    subset = br.RGLM("poisson").fit(X[5:], y[5:], method="mle", cov_type="cluster", groups=groups[5:])
    np.testing.assert_allclose(coefficients(dropped, bse=True), coefficients(subset, bse=True), rtol=1e-8)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"cov_type": "robust"}, ValueError, "cov_type='robust' is not known"),
        ({"cov_type": "cluster"}, ValueError, "needs groups="),
        ({"cov_type": "cluster", "groups": np.zeros(10)}, ValueError, "groups has shape"),
        ({"cov_type": "HC0", "groups": np.zeros(80)}, ValueError, "groups= is only used with cov_type='cluster'"),
        ({"cov_type": "cluster", "groups": np.zeros(80)}, ValueError, "single cluster"),
    ],
)
def test_bad_cov_type_input_is_named(regression, options, error, message):
    X, _, y, _ = regression
    with pytest.raises(error, match=message):
        br.RGLM("poisson").fit(X, y, method="mle", **options)


def test_cov_type_is_for_point_fits(regression):
    X, _, y, _ = regression
    with pytest.raises(TypeError, match="does not take option 'cov_type'"):
        br.RGLM("poisson").fit(X, y, method="laplace", cov_type="HC0")


def test_expected_needs_a_variance_function():
    X, y, w, _ = load("polr_weights")
    with pytest.raises(ValueError, match="cov_type='expected' needs a family with a variance function"):
        br.RGLM("ordinal").fit(X, y, method="mle", weights=w, cov_type="expected")
