"""Prior weights (``weights=``) and ``exposure=`` against R, and in every method.

References: ``tests/reference/glm_surface.R`` (R 4.2 with MASS and AER) fitted each case on a
dataset that ships with R and wrote the design (R's ``model.matrix`` without its intercept
column), the response, the weights and the offset to ``tests/reference/glm_surface/<case>.csv``
and its estimates to ``tests/reference/glm_surface.json``.  Limits (issue 11): coefficients within
1% of R's standard error, standard errors within 2%, log-likelihoods within 1e-6 relative.

Weights are R's prior weights: for gaussian and gamma the dispersion of row ``i`` is ``phi / w_i``
(R's ``glm(weights=)``, statsmodels' ``var_weights``); for every other family the row's
log-likelihood is multiplied by ``w_i`` (for counts and classes: frequency weights, as R's glm,
``glm.nb``, ``polr`` and ``survreg``).  Our standard errors are the observed information; they are
compared with R's where R's are the same quantity (canonical links and families without a
dispersion, and the full-likelihood fits of ``glm.nb``, ``polr`` and ``tobit``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special

import bayes_rglm as br
from bayes_rglm.families import Tobit
from bayes_rglm.sklearn import RGLMRegressor

REFERENCE = Path(__file__).parent / "reference"
CASES = json.loads((REFERENCE / "glm_surface.json").read_text())
COEF_FRAC, SE_RTOL, LOGLIK_RTOL = 0.01, 0.02, 1e-6


def load(case: str):
    frame = pd.read_csv(REFERENCE / "glm_surface" / f"{case}.csv")
    columns = CASES[case]["columns"]
    weights = frame["weights"].to_numpy() if "weights" in frame else None
    offset = frame["offset"].to_numpy() if "offset" in frame else None
    return frame[columns].to_numpy(float), frame["y"].to_numpy(float), weights, offset


def within_se(ours, ref, se, name):
    ours, ref, se = (np.ravel(np.asarray(a, dtype=float)) for a in (ours, ref, se))
    dev = np.abs(ours - ref) / se
    assert np.all(dev <= COEF_FRAC), f"{name}: |ours - R| / se_R = {np.round(dev, 4)} (limit {COEF_FRAC})"


def coefficients(fit, bse=False):
    """``(intercept, slopes...)`` in R's order, from ``b0`` and ``w0`` (or their standard errors)."""
    source = fit.bse if bse else fit.params
    return np.r_[np.ravel(source["b0"]), np.ravel(source["w0"])]


def loglik(fit, X, y, weights=None, offset=None, trials=None):
    return float(np.sum(fit.log_likelihood(X, y, offset=offset, trials=trials, weights=weights)))


# ------------------------------------------------------------------------------------------- R's glm


@pytest.fixture(scope="module")
def poisson_case():
    X, y, w, offset = load("poisson_weights_offset")
    return X, y, w, offset, br.RGLM("poisson").fit(X, y, method="mle", weights=w, offset=offset)


def test_poisson_weights_and_offset_match_glm(poisson_case):
    X, y, w, offset, fit = poisson_case
    ref = CASES["poisson_weights_offset"]
    within_se(coefficients(fit), ref["coef"], ref["se_glm"], "coefficients")
    # Canonical link, no dispersion: R's expected information is the observed one.
    np.testing.assert_allclose(coefficients(fit, bse=True), ref["se_glm"], rtol=SE_RTOL)
    np.testing.assert_allclose(loglik(fit, X, y, w, offset), ref["loglik"], rtol=LOGLIK_RTOL)
    np.testing.assert_allclose(fit.predict(X, offset=offset), ref["fitted"], rtol=1e-6)


def test_exposure_is_an_offset_of_its_log(poisson_case):
    X, y, w, offset, fit = poisson_case
    by_exposure = br.RGLM("poisson").fit(X, y, method="mle", weights=w, exposure=np.exp(offset))
    np.testing.assert_allclose(coefficients(by_exposure), coefficients(fit), rtol=1e-10, atol=1e-12)


def test_gaussian_weights_scale_the_variance():
    X, y, w, _ = load("gaussian_weights")
    ref = CASES["gaussian_weights"]
    fit = br.RGLM("gaussian").fit(X, y, method="mle", weights=w)
    within_se(coefficients(fit), ref["coef"], ref["se_glm"], "coefficients")
    # The ML sigma of y_i ~ N(mu_i, sigma^2 / w_i) is sqrt(sum w r^2 / n); R's logLik is at that sigma.
    np.testing.assert_allclose(float(np.ravel(fit.params["sigma"])[0]), ref["sigma_ml"], rtol=1e-7)
    np.testing.assert_allclose(loglik(fit, X, y, w), ref["loglik"], rtol=LOGLIK_RTOL)


def test_gamma_weights_scale_the_dispersion():
    X, y, w, _ = load("gamma_weights")
    ref = CASES["gamma_weights"]
    fit = br.RGLM("gamma", link="log").fit(X, y, method="mle", weights=w)
    within_se(coefficients(fit), ref["coef"], ref["se_glm"], "coefficients")
    # Row i has shape a w_i (dispersion phi / w_i).  R reports no ML shape, so it is found here: the
    # profile likelihood of a at R's fitted means (the coefficients' MLE does not depend on a).
    mu = np.asarray(ref["fitted"])

    def negative_profile(log_a):
        k = np.exp(log_a) * w
        return -np.sum(k * np.log(k * y / mu) - k * y / mu - np.log(y) - special.gammaln(k))

    a = np.exp(optimize.minimize_scalar(negative_profile, bounds=(-5, 10), method="bounded").x)
    np.testing.assert_allclose(float(np.ravel(fit.params["concentration"])[0]), a, rtol=1e-5)


def test_binomial_proportion_with_weights_is_successes_of_trials():
    X, y, w, _ = load("binomial_proportion")  # y: successes; R fitted proportions y / w with weights w
    ref = CASES["binomial_proportion"]
    fit = br.RGLM("binomial").fit(X, y, method="mle", trials=w)
    within_se(coefficients(fit), ref["coef"], ref["se_glm"], "coefficients")
    np.testing.assert_allclose(coefficients(fit, bse=True), ref["se_glm"], rtol=SE_RTOL)
    np.testing.assert_allclose(loglik(fit, X, y, trials=w), ref["loglik"], rtol=LOGLIK_RTOL)


def test_bernoulli_frequency_weights_and_zero_weights():
    X, y, w, _ = load("bernoulli_weights")
    assert (w == 0).any()
    ref = CASES["bernoulli_weights"]
    fit = br.RGLM("bernoulli").fit(X, y, method="mle", weights=w)
    within_se(coefficients(fit), ref["coef"], ref["se_glm"], "coefficients")
    np.testing.assert_allclose(coefficients(fit, bse=True), ref["se_glm"], rtol=SE_RTOL)
    np.testing.assert_allclose(loglik(fit, X, y, w), ref["loglik"], rtol=LOGLIK_RTOL)
    # A zero weight drops the row: the fit is the one without those rows.
    kept = w > 0
    assert fit.info["n_dropped"] == int((~kept).sum())
    without = br.RGLM("bernoulli").fit(X[kept], y[kept], method="mle", weights=w[kept])
    np.testing.assert_allclose(coefficients(fit), coefficients(without), rtol=1e-9)


# ------------------------------------------------------------------------- glm.nb, polr and tobit


def test_negative_binomial_weights_match_glm_nb():
    X, y, w, _ = load("negbin_weights")
    ref = CASES["negbin_weights"]
    fit = br.RGLM("negative_binomial").fit(X, y, method="mle", weights=w)
    within_se(coefficients(fit), ref["coef"], ref["se_glm"], "coefficients")
    within_se(np.ravel(fit.params["concentration"]), [ref["theta"]], [ref["se_theta"]], "theta")
    np.testing.assert_allclose(loglik(fit, X, y, w), ref["loglik"], rtol=LOGLIK_RTOL)


def test_ordinal_frequency_weights_match_polr():
    X, y, w, _ = load("polr_weights")
    ref = CASES["polr_weights"]
    fit = br.RGLM("ordinal").fit(X, y, method="mle", weights=w)
    # polr: logit P(y <= k) = zeta_k - x beta; ours: the same with cutpoints = zeta.
    within_se(np.ravel(fit.params["w0"]), ref["coef"], ref["se"], "coefficients")
    within_se(np.ravel(fit.params["cutpoints"]), ref["zeta"], ref["se_zeta"], "cutpoints")
    np.testing.assert_allclose(np.ravel(fit.bse["w0"]), ref["se"], rtol=SE_RTOL)
    np.testing.assert_allclose(np.ravel(fit.bse["cutpoints"]), ref["se_zeta"], rtol=SE_RTOL)
    np.testing.assert_allclose(loglik(fit, X, y, w), ref["loglik"], rtol=LOGLIK_RTOL)


def test_tobit_with_upper_bound_and_weights_matches_aer():
    X, y, w, _ = load("tobit_weights")
    ref = CASES["tobit_weights"]
    fit = br.RGLM(Tobit(lower=0.0, upper=12.0)).fit(X, y, method="mle", weights=w)
    within_se(coefficients(fit), ref["coef"], ref["se"], "coefficients")
    np.testing.assert_allclose(coefficients(fit, bse=True), ref["se"], rtol=SE_RTOL)
    sigma = float(np.ravel(fit.params["sigma"])[0])
    within_se([np.log(sigma)], [np.log(ref["sigma"])], [ref["se_log_sigma"]], "log sigma")
    np.testing.assert_allclose(loglik(fit, X, y, w), ref["loglik"], rtol=LOGLIK_RTOL)


# ------------------------------------------------------------------ every method: weights = repeats


@pytest.fixture(scope="module")
def counts():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((60, 2))
    y = rng.poisson(np.exp(0.3 + X @ np.array([0.5, -0.4]))).astype(float)
    w = rng.integers(1, 4, 60).astype(float)
    repeat = np.repeat(np.arange(60), w.astype(int))
    return X, y, w, repeat


def test_integer_weights_equal_repeated_rows(counts):
    X, y, w, repeat = counts
    model = br.RGLM("poisson")
    weighted = model.fit(X, y, method="map", weights=w)
    repeated = model.fit(X[repeat], y[repeat], method="map")
    np.testing.assert_allclose(coefficients(weighted), coefficients(repeated), rtol=1e-7)
    np.testing.assert_allclose(coefficients(weighted, bse=True), coefficients(repeated, bse=True), rtol=1e-6)


def test_laplace_with_integer_weights_is_laplace_of_repeated_rows(counts):
    X, y, w, repeat = counts
    model = br.RGLM("poisson")
    weighted = model.fit(X, y, method="laplace", weights=w)
    repeated = model.fit(X[repeat], y[repeat], method="laplace")
    # Its mode and evidence (the draws differ: they are made in each fit's standardised coordinates).
    for site in ("b0", "w0"):
        np.testing.assert_allclose(weighted.info["map"][site], repeated.info["map"][site], rtol=1e-7)
    np.testing.assert_allclose(weighted.info["log_evidence"], repeated.info["log_evidence"], rtol=1e-9)


def test_integer_weights_equal_repeated_rows_in_a_net(counts):
    X, y, w, repeat = counts
    model = br.RGLM("poisson", hidden=(3,), activation="tanh")
    weighted = model.fit(X, y, method="map", weights=w)
    repeated = model.fit(X[repeat], y[repeat], method="map")
    np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), rtol=1e-5)


@pytest.mark.parametrize("method", ["nuts", "svi"])
def test_weighted_posteriors_agree_with_repeated_rows(counts, method):
    X, y, w, repeat = counts
    model = br.RGLM("poisson")
    exact = model.fit(X[repeat], y[repeat], method="laplace")
    options = {"num_warmup": 300, "num_samples": 500, "num_chains": 2} if method == "nuts" else {"num_steps": 3000}
    fit = model.fit(X, y, method=method, weights=w, progress=False, **options)

    def moments(f):
        draws = np.concatenate([f.samples["b0"].reshape(-1, 1), f.samples["w0"].reshape(-1, X.shape[1])], axis=1)
        return draws.mean(axis=0), draws.std(axis=0)

    mean, _ = moments(fit)
    reference, sd = moments(exact)
    # Within 0.25 posterior sd of the repeated rows' Laplace mean (the posterior is near-Gaussian here; an
    # unweighted fit is more than a posterior sd away from it).
    assert np.all(np.abs(mean - reference) <= 0.25 * sd), (mean, reference, sd)


def test_weights_enter_the_pointwise_log_likelihood(counts):
    X, y, w, _ = counts
    fit = br.RGLM("poisson").fit(X, y, method="laplace", weights=w)
    idata = fit.to_arviz()
    pointwise = idata.log_likelihood["y"].values
    unweighted = fit.log_likelihood(X, y)
    np.testing.assert_allclose(pointwise, unweighted * w, rtol=1e-12)


def test_sklearn_sample_weight_is_weights(counts):
    X, y, w, _ = counts
    est = RGLMRegressor(family="poisson", method="mle").fit(X, y, sample_weight=w)
    fit = br.RGLM("poisson").fit(X, y, method="mle", weights=w)
    np.testing.assert_allclose(est.predict(X), fit.predict(X), rtol=1e-10)


def test_sklearn_sample_weight_repeats_gaussian_rows(counts):
    # scikit-learn's sample_weight repeats rows, also where R's prior weights would divide the variance.
    X, _, w, repeat = counts
    y = X @ np.array([1.0, -0.5]) + np.random.default_rng(4).standard_normal(len(X))
    weighted = RGLMRegressor(prior_scale=1.0).fit(X, y, sample_weight=w)
    repeated = RGLMRegressor(prior_scale=1.0).fit(X[repeat], y[repeat])
    np.testing.assert_allclose(weighted.fit_.params["sigma"], repeated.fit_.params["sigma"], rtol=1e-7)
    np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), rtol=1e-7)
    # R's prior weights give another sigma (sqrt(sum w r^2 / n), not / sum w).
    prior = br.RGLM("gaussian", prior=br.GaussianPrior(scale=1.0)).fit(X, y, method="map", weights=w)
    assert abs(float(prior.params["sigma"]) / float(weighted.fit_.params["sigma"]) - 1.0) > 0.05


# -------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (-np.ones(60), "weights must be non-negative"),
        (np.r_[np.nan, np.ones(59)], "weights has a non-finite value"),
        (np.ones(59), "weights has length 59"),
        (np.zeros(60), "weights are all zero"),
        ("heavy", "weights must be numeric"),
    ],
)
def test_bad_weights_are_named(counts, weights, message):
    X, y, _, _ = counts
    with pytest.raises((ValueError, TypeError), match=message):
        br.RGLM("poisson").fit(X, y, method="mle", weights=weights)


@pytest.mark.parametrize(
    ("family", "exposure", "message"),
    [
        ("poisson", np.r_[0.0, np.ones(59)], "exposure must be positive"),
        ("poisson", np.ones(59), "exposure has length 59"),
        ("bernoulli", np.ones(60), "exposure= needs a log link"),
    ],
)
def test_bad_exposure_is_named(counts, family, exposure, message):
    X, y, _, _ = counts
    y = np.minimum(y, 1.0) if family == "bernoulli" else y
    with pytest.raises(ValueError, match=message):
        br.RGLM(family).fit(X, y, method="mle", exposure=exposure)
