"""Depth-0 tobit MLE of bayes_rglm against a censored-normal likelihood written out here.

Data: statsmodels' ``fair`` (Fair 1978; 6,366 women), target ``affairs``,
left-censored at 0 (68% of the rows are 0).  The reference maximises

    sum_{y_i = 0} log Phi(-mu_i / sigma) + sum_{y_i > 0} [log phi((y_i - mu_i) / sigma) - log sigma],
    mu_i = x_i @ beta + b,

over ``(beta, b, log sigma)`` with scipy's BFGS on an analytic gradient,
then polishes with Newton steps on a numerical Hessian of that gradient.
Standard errors: the inverse of that Hessian (observed information); sigma's
by the delta method from log sigma.

Tolerances: parameters within 1% of the reference's standard error; the
standard errors of ``w0``/``b0`` within 2% (both sides are the full MLE, so
the dispersion parameter enters both the same way).
"""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import optimize, special
from statsmodels.tools.numdiff import approx_fprime, approx_hess

import bayes_rglm as br

COLS = ["rate_marriage", "age", "yrs_married", "religious", "educ"]


def assert_within_se(ours, ref, se, frac=0.01, name="param"):
    """Assert ``|ours - ref| <= frac * se`` elementwise, with a readable table of the violations."""
    ours, ref, se = (np.atleast_1d(np.asarray(a, dtype=float)) for a in (ours, ref, se))
    shapes = f"ours {ours.shape}, ref {ref.shape}, se {se.shape}"
    assert ours.shape == ref.shape == se.shape, f"{name}: shapes {shapes}"
    dev = np.abs(ours - ref) / se
    bad = ~(dev <= frac)
    if bad.any():
        rows = [
            f"  {name}[{','.join(map(str, idx))}]: ours={ours[idx]:.10g} ref={ref[idx]:.10g} "
            f"se_ref={se[idx]:.4g} |diff|/se={dev[idx]:.4g}"
            for idx in zip(*np.nonzero(bad), strict=True)
        ]
        raise AssertionError(
            f"{name}: {bad.sum()} of {bad.size} entries differ from the reference by more than "
            f"{frac:g} standard errors (max {np.nanmax(dev):.4g}):\n" + "\n".join(rows)
        )


def censored_normal_nll(theta, X, y, lower=0.0):
    """Negative log-likelihood of the tobit model and its gradient in ``theta = (beta, b, log sigma)``."""
    p = X.shape[1]
    beta, b, log_sigma = theta[:p], theta[p], theta[p + 1]
    sigma = np.exp(log_sigma)
    mu = X @ beta + b
    censored = y <= lower
    z = (y - mu) / sigma
    c = (lower - mu) / sigma
    log_cdf = special.log_ndtr(c)
    ll = np.where(censored, log_cdf, -0.5 * z**2 - log_sigma - 0.5 * np.log(2 * np.pi))
    mills = np.exp(-0.5 * c**2 - 0.5 * np.log(2 * np.pi) - log_cdf)  # phi(c) / Phi(c)
    d_mu = np.where(censored, -mills / sigma, z / sigma)
    d_log_sigma = np.where(censored, -mills * c, z**2 - 1.0)
    grad = np.concatenate([X.T @ d_mu, [d_mu.sum(), d_log_sigma.sum()]])
    return -ll.sum(), -grad


@pytest.fixture(scope="module")
def fair():
    d = sm.datasets.fair.load_pandas().data
    return d[COLS].to_numpy(float), d["affairs"].to_numpy(float)


@pytest.fixture(scope="module")
def reference(fair):
    X, y = fair
    n, p = X.shape
    objective = lambda t: censored_normal_nll(t, X, y)
    start = np.r_[np.linalg.lstsq(np.c_[X, np.ones(n)], y, rcond=None)[0], np.log(y.std())]
    err = optimize.check_grad(lambda t: objective(t)[0], lambda t: objective(t)[1], start)
    assert err < 1e-4 * np.linalg.norm(objective(start)[1]), "analytic gradient is wrong"
    options = {"gtol": 1e-10, "maxiter": 10_000}
    res = optimize.minimize(objective, start, jac=True, method="BFGS", options=options)
    theta = res.x
    for _ in range(10):  # BFGS stops on precision loss near 1e-4; Newton finishes the job
        hess = approx_fprime(theta, lambda t: objective(t)[1], centered=True)
        hess = 0.5 * (hess + hess.T)
        step = np.linalg.solve(hess, objective(theta)[1])
        theta = theta - step
        if np.max(np.abs(step)) < 1e-12:
            break
    grad = objective(theta)[1]
    assert np.max(np.abs(grad)) < 1e-7, f"reference not at an optimum: |grad| = {np.max(np.abs(grad)):.3g}"
    hess = approx_hess(theta, lambda t: objective(t)[0])  # independent second check of the Hessian
    cov = np.linalg.inv(hess)
    se = np.sqrt(np.diag(cov))
    sigma = np.exp(theta[p + 1])
    return {
        "w0": theta[:p, None],
        "w0_se": se[:p, None],
        "b0": theta[p : p + 1],
        "b0_se": se[p : p + 1],
        "sigma": sigma,
        "sigma_se": sigma * se[p + 1],
    }


@pytest.fixture(scope="module")
def ours(fair):
    X, y = fair
    return br.RGLM(family="tobit", hidden=()).fit(X, y, method="mle", progress=False)


def test_tobit_parameters_match_reference(ours, reference):
    assert np.shape(ours.params["w0"]) == reference["w0"].shape
    assert_within_se(ours.params["w0"], reference["w0"], reference["w0_se"], name="tobit w0")
    assert_within_se(ours.params["b0"], reference["b0"], reference["b0_se"], name="tobit b0")
    assert_within_se(ours.params["sigma"], reference["sigma"], reference["sigma_se"], name="tobit sigma")


@pytest.mark.parametrize("name", ["w0", "b0", "sigma"])
def test_tobit_standard_errors_match_reference(ours, reference, name):
    mine, ref = np.asarray(ours.bse[name], dtype=float), np.asarray(reference[f"{name}_se"], dtype=float)
    assert mine.shape == ref.shape, f"bse {name}: shapes ours {mine.shape}, ref {ref.shape}"
    np.testing.assert_allclose(mine, ref, rtol=0.02, err_msg=f"tobit bse {name}")
