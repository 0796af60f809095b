"""NUTS posteriors of depth-0 GLMs against an independent importance-sampling reference.

The reference uses numpy/scipy only: the log posterior is scipy's
log-likelihood plus the Gaussian log prior; the proposal is a multivariate
t (df = 5) centred at the mode (scipy.optimize) with 1.5 x the inverse of a
numerically differentiated Hessian; 200,000 draws, self-normalised weights.
Its Monte Carlo error (sd / sqrt(ESS of the weights), ESS > 20,000) is a few
hundredths of a posterior sd at most, so NUTS (4 x 1000 draws) must match
posterior means to 0.1 posterior sd and posterior sds to 10%.

Data: statsmodels' ``spector`` (logistic, n = 32, grade on GPA, TUCE, PSI)
and ``cpunish`` (Poisson, n = 17, executions on six covariates), inputs
standardised. Prior: the library's documented depth-0 default, weights
N(0, 2.5^2) and intercept N(0, 5^2), passed explicitly.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import optimize, special, stats

import bayes_rglm as br

pytestmark = pytest.mark.slow

W_SCALE, B_SCALE = 2.5, 5.0
N_IS = 200_000


def standardise(X: np.ndarray) -> np.ndarray:
    return (X - X.mean(axis=0)) / X.std(axis=0)


def spector():
    d = sm.datasets.spector.load_pandas()
    return standardise(d.exog[["GPA", "TUCE", "PSI"]].to_numpy(float)), d.endog.to_numpy(float)


def cpunish():
    d = sm.datasets.cpunish.load_pandas()
    return standardise(d.exog.to_numpy(float)), d.endog.to_numpy(float)


def loglik_bernoulli(theta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``theta``: (S, P + 1), weights then intercept; returns (S,)."""
    eta = theta[:, :-1] @ X.T + theta[:, -1:]
    return (y * special.log_expit(eta) + (1 - y) * special.log_expit(-eta)).sum(axis=1)  # stable Bernoulli logpmf


def loglik_poisson(theta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    eta = theta[:, :-1] @ X.T + theta[:, -1:]
    return stats.poisson.logpmf(y, np.exp(eta)).sum(axis=1)


def log_prior(theta: np.ndarray) -> np.ndarray:
    return stats.norm.logpdf(theta[:, :-1], 0, W_SCALE).sum(axis=1) + stats.norm.logpdf(theta[:, -1], 0, B_SCALE)


def numerical_hessian(f, x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Central second differences of a scalar function."""
    k = len(x)
    H = np.empty((k, k))
    E = np.eye(k) * h
    for i in range(k):
        for j in range(i, k):
            H[i, j] = H[j, i] = (f(x + E[i] + E[j]) - f(x + E[i] - E[j]) - f(x - E[i] + E[j]) + f(x - E[i] - E[j])) / (
                4 * h * h
            )
    return H


def importance_sampling(loglik, X, y, seed=0):
    """Posterior mean, sd and the ESS of the weights, by self-normalised IS with a t proposal."""

    def log_post(theta):
        theta = np.atleast_2d(theta)
        return loglik(theta, X, y) + log_prior(theta)

    k = X.shape[1] + 1
    neg = lambda t: -float(log_post(t)[0])
    mode = optimize.minimize(neg, np.zeros(k), method="BFGS", options={"gtol": 1e-10}).x
    H = numerical_hessian(neg, mode)
    assert np.all(np.linalg.eigvalsh(H) > 0)
    proposal = stats.multivariate_t(loc=mode, shape=1.5 * np.linalg.inv(H), df=5, seed=seed)
    draws = proposal.rvs(N_IS)
    log_w = log_post(draws) - proposal.logpdf(draws)
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    ess = 1.0 / np.sum(w**2)
    mean = w @ draws
    sd = np.sqrt(w @ (draws - mean) ** 2)
    return mean, sd, ess


def nuts(family, X, y):
    model = br.RGLM(family, prior=br.GaussianPrior(scale=W_SCALE, bias_scale=B_SCALE))
    with warnings.catch_warnings():
        warnings.simplefilter("error", br.DiagnosticsWarning)  # a clean run: no divergences, r-hat, ESS
        fit = model.fit(X, y, method="nuts", seed=1, progress=False, num_warmup=1000, num_samples=1000, num_chains=4)
    draws = np.concatenate([fit.samples["w0"][..., 0], fit.samples["b0"]], axis=-1)
    assert draws.shape == (4, 1000, X.shape[1] + 1)
    return fit, draws.reshape(-1, X.shape[1] + 1)


CASES = {
    "spector-logistic": ("bernoulli", spector, loglik_bernoulli),
    "cpunish-poisson": ("poisson", cpunish, loglik_poisson),
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    family, load, loglik = CASES[request.param]
    X, y = load()
    reference = importance_sampling(loglik, X, y)
    fit, draws = nuts(family, X, y)
    return {"X": X, "y": y, "reference": reference, "fit": fit, "draws": draws, "loglik": loglik}


def test_reference_is_reliable(case):
    """The IS weights are well behaved, so the reference's own error is small."""
    mean, sd, ess = case["reference"]
    assert ess > 0.1 * N_IS, f"IS effective sample size {ess:.0f} of {N_IS}"


def test_nuts_diagnostics(case):
    fit = case["fit"]
    assert fit.info["divergences"] == 0
    assert fit.info["max_r_hat"] < 1.01
    assert fit.info["min_ess_bulk"] > 400


def test_nuts_posterior_mean(case):
    mean, sd, ess = case["reference"]
    got = case["draws"].mean(axis=0)
    off = (got - mean) / sd
    assert np.all(np.abs(off) < 0.1), f"NUTS means off by {np.round(off, 3)} posterior sds"
    params = np.r_[case["fit"].params["w0"][:, 0], case["fit"].params["b0"]]
    np.testing.assert_allclose(params, got, rtol=1e-12, atol=1e-12)


def test_nuts_posterior_sd(case):
    mean, sd, ess = case["reference"]
    np.testing.assert_allclose(case["draws"].std(axis=0, ddof=1), sd, rtol=0.10)


def test_log_likelihood_matches_scipy(case):
    """``fit.log_likelihood`` per draw equals the scipy log-likelihood used by the reference."""
    fit, X, y = case["fit"], case["X"], case["y"]
    ll = fit.log_likelihood(X, y)
    assert ll.shape == (4, 1000, len(y))
    theta = case["draws"][:50]
    np.testing.assert_allclose(
        ll.reshape(-1, len(y))[:50].sum(axis=1), case["loglik"](theta, X, y), rtol=1e-9, atol=1e-9
    )
