"""``fit.stats`` and ``fit.residuals`` against R's ``glm``, ``glm.nb`` and ``polr``.

The references are those of ``tests/test_weights.py`` (``tests/reference/glm_surface.R``): each case
has weights, so these also check that the weights enter the deviance, the degrees of freedom and
the residuals as R's.  Limits: deviance, log-likelihood, AIC and BIC within 1e-6 relative; residuals
within 1e-5 relative (our coefficients are within 1e-7 of R's here, which moves the fitted means).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_weights import CASES, load

import bayes_rglm as br

RTOL = 1e-6

GLM_CASES = {
    "poisson_weights_offset": ("poisson", None),
    "gaussian_weights": ("gaussian", None),
    "gamma_weights": ("gamma", "log"),
    "binomial_proportion": ("binomial", None),
    "bernoulli_weights": ("bernoulli", None),
    "negbin_weights": ("negative_binomial", None),
}


def _fit(case):
    family, link = GLM_CASES[case]
    X, y, w, offset = load(case)
    if family == "binomial":  # R: proportion y / w with weights w; ours: y successes of w trials
        return br.RGLM(family).fit(X, y, method="mle", trials=w), np.ones(len(y)) > 0
    return br.RGLM(family, link=link).fit(X, y, method="mle", weights=w, offset=offset), w > 0


@pytest.fixture(scope="module", params=list(GLM_CASES))
def case(request):
    fit, kept = _fit(request.param)
    return request.param, fit, kept


def test_deviance_null_deviance_and_df_match_r(case):
    name, fit, _ = case
    ref, stats = CASES[name], fit.stats
    np.testing.assert_allclose(stats["deviance"], ref["deviance"], rtol=RTOL)
    np.testing.assert_allclose(stats["null_deviance"], ref["null_deviance"], rtol=RTOL)
    assert (stats["df_residual"], stats["df_null"]) == (ref["df_residual"], ref["df_null"])


def test_loglik_aic_bic_match_r(case):
    name, fit, _ = case
    if name == "gamma_weights":
        pytest.skip("R's logLik.glm for Gamma plugs in deviance / n as the dispersion, not its MLE")
    ref, stats = CASES[name], fit.stats
    bic = ref["bic"]
    if name == "bernoulli_weights":
        # R's BIC takes n from logLik's "nobs", which counts zero-weight rows (32 here), though its
        # df_residual and nobs() do not; ours uses the rows of positive weight throughout.
        k, rows = stats["n_params"], len(CASES[name]["fitted"])
        bic = bic - k * np.log(rows) + k * np.log(stats["n"])
        assert stats["n"] < rows
    for key, expected in (("loglik", ref["loglik"]), ("aic", ref["aic"]), ("bic", bic)):
        np.testing.assert_allclose(stats[key], expected, rtol=RTOL, err_msg=key)


def test_dispersion_matches_summary_glm(case):
    name, fit, _ = case
    np.testing.assert_allclose(fit.stats["dispersion"], CASES[name]["dispersion"], rtol=1e-6)


@pytest.mark.parametrize("kind", ["deviance", "pearson", "response", "working"])
def test_residuals_match_r(case, kind):
    name, fit, kept = case
    ref = np.asarray(CASES[name][f"res_{kind}"])[kept]  # R keeps zero-weight rows; we drop them
    np.testing.assert_allclose(fit.residuals(kind), ref, rtol=1e-5, atol=1e-8)


def test_polr_deviance_and_aic():
    X, y, w, _ = load("polr_weights")
    ref = CASES["polr_weights"]
    stats = br.RGLM("ordinal").fit(X, y, method="mle", weights=w).stats
    np.testing.assert_allclose(stats["deviance"], ref["deviance"], rtol=RTOL)
    np.testing.assert_allclose(stats["aic"], ref["aic"], rtol=RTOL)


def test_stats_and_residuals_need_a_point_fit_and_a_known_kind():
    X, y, w, _ = load("gaussian_weights")
    fit = br.RGLM("gaussian").fit(X, y, method="mle", weights=w)
    with pytest.raises(ValueError, match="kind='raw' is not a residual type"):
        fit.residuals("raw")
    laplace = br.RGLM("gaussian").fit(X, y, method="laplace", weights=w)
    with pytest.raises(ValueError, match="point fits"):
        _ = laplace.stats
    ordinal = br.RGLM("ordinal").fit(*load("polr_weights")[:2], method="mle")
    with pytest.raises(ValueError, match="not defined for family 'ordinal'"):
        ordinal.residuals("pearson")
