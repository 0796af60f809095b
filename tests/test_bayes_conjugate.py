"""Bayesian linear regression with known noise: the posterior is Gaussian and known in closed form.

    y = X~ theta + N(0, sigma^2),   X~ = [X, 1],   theta = (w0[0], w0[1], b0[0])
    theta ~ N(0, diag(s^2, s^2, sb^2))
    =>  theta | y ~ N(m, C),   C^{-1} = X~'X~ / sigma^2 + diag(1/s^2, 1/s^2, 1/sb^2),
                               m = C X~'y / sigma^2.

Laplace is exact here (up to Monte Carlo error), NUTS is asymptotically exact
(checked to a few Monte Carlo standard errors, with the ESS from ArviZ) and a
full-covariance Gaussian guide (``guide="mvn"``) can represent the posterior
exactly, so SVI must get close (tolerances as fractions of posterior sd).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az

import bayes_rglm as br

N, P = 50, 2
SIGMA = 0.7
SCALE, BIAS_SCALE = 1.0, 2.0
TRUE_W = np.array([0.8, -0.5])
TRUE_B = 0.3


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1234)
    Z = rng.standard_normal((N, P))
    X = np.column_stack([Z[:, 0], 0.6 * Z[:, 0] + 0.8 * Z[:, 1]]) + np.array([0.5, -0.3])  # correlated, off-centre
    y = X @ TRUE_W + TRUE_B + SIGMA * rng.standard_normal(N)
    return X, y


@pytest.fixture(scope="module")
def exact(data):
    """Closed-form posterior mean ``m`` and covariance ``C`` of ``(w0[0], w0[1], b0[0])``."""
    X, y = data
    Xt = np.column_stack([X, np.ones(N)])
    precision = Xt.T @ Xt / SIGMA**2 + np.diag([1 / SCALE**2] * P + [1 / BIAS_SCALE**2])
    C = np.linalg.inv(precision)
    m = C @ Xt.T @ y / SIGMA**2
    return m, C


def model():
    return br.RGLM(br.families.Gaussian(sigma=SIGMA), prior=br.GaussianPrior(scale=SCALE, bias_scale=BIAS_SCALE))


def flat_draws(fit) -> np.ndarray:
    """Draws as ``(chain, draw, 3)`` in the order ``w0[0], w0[1], b0[0]``."""
    w = np.asarray(fit.samples["w0"])
    b = np.asarray(fit.samples["b0"])
    assert w.shape[2:] == (P, 1) and b.shape[2:] == (1,)
    return np.concatenate([w[..., 0], b], axis=-1)


def sd_of(C):
    return np.sqrt(np.diag(C))


def corr_of(C):
    d = sd_of(C)
    return C / np.outer(d, d)


def _fit(data, method, **options):
    X, y = data
    return model().fit(X, y, method=method, seed=0, progress=False, **options)


@pytest.fixture(scope="module")
def laplace_fit(data):
    return _fit(data, "laplace", num_samples=4000)


@pytest.fixture(scope="module")
def svi_fit(data):
    return _fit(data, "svi", guide="mvn", num_steps=4000, learning_rate=0.02, num_samples=4000)


@pytest.fixture(scope="module")
def nuts_fit(data):
    with warnings.catch_warnings():
        warnings.simplefilter("error", br.DiagnosticsWarning)  # a clean Gaussian posterior: no warnings
        return _fit(data, "nuts", num_warmup=500, num_samples=1000, num_chains=4)


def test_closed_form_is_sane(exact):
    """Guard the reference itself: the posterior covariance is positive definite and the mean near the truth."""
    m, C = exact
    assert np.all(np.linalg.eigvalsh(C) > 0)
    assert np.all(np.abs(m - np.r_[TRUE_W, TRUE_B]) < 4 * sd_of(C))


# --- Laplace ---------------------------------------------------------------------------------------


def test_laplace_shapes(laplace_fit):
    assert laplace_fit.method == "laplace"
    assert laplace_fit.samples["w0"].shape == (1, 4000, P, 1)
    assert laplace_fit.samples["b0"].shape == (1, 4000, 1)
    assert set(laplace_fit.samples) == {"w0", "b0"}  # sigma is fixed: not a parameter


def test_laplace_mode_is_exact(laplace_fit, exact):
    """The MAP of a Gaussian posterior is its mean: only optimiser error, no Monte Carlo error."""
    m, C = exact
    mode = np.r_[laplace_fit.info["map"]["w0"][:, 0], laplace_fit.info["map"]["b0"]]
    np.testing.assert_allclose(mode, m, rtol=0, atol=1e-6 * sd_of(C).min())


def test_laplace_log_evidence_is_exact(laplace_fit, data):
    """For a Gaussian posterior the Laplace evidence is exact: ``y ~ N(0, X~ S0 X~' + sigma^2 I)``."""
    X, y = data
    Xt = np.column_stack([X, np.ones(N)])
    prior_cov = np.diag([SCALE**2] * P + [BIAS_SCALE**2])
    marginal = stats.multivariate_normal(np.zeros(N), Xt @ prior_cov @ Xt.T + SIGMA**2 * np.eye(N))
    assert laplace_fit.info["log_evidence"] == pytest.approx(marginal.logpdf(y), abs=1e-6)


def test_laplace_mean(laplace_fit, exact):
    m, C = exact
    draws = flat_draws(laplace_fit).reshape(-1, 3)
    se = sd_of(C) / np.sqrt(len(draws))
    z = (draws.mean(axis=0) - m) / se
    assert np.all(np.abs(z) < 4), f"Laplace mean off by {z} Monte Carlo SEs"
    params = np.r_[laplace_fit.params["w0"][:, 0], laplace_fit.params["b0"]]
    np.testing.assert_allclose(params, draws.mean(axis=0), rtol=1e-12, atol=1e-12)


def test_laplace_covariance(laplace_fit, exact):
    m, C = exact
    draws = flat_draws(laplace_fit).reshape(-1, 3)
    S = np.cov(draws, rowvar=False)
    # Relative MC sd of a sample variance from 4000 draws is sqrt(2/4000) ~ 2.2%; 10% is > 4 of them.
    np.testing.assert_allclose(np.diag(S), np.diag(C), rtol=0.10)
    # MC sd of a correlation is (1 - rho^2)/sqrt(4000) <= 0.016.
    np.testing.assert_allclose(corr_of(S), corr_of(C), rtol=0, atol=0.10)


def test_laplace_diag_covariance(data, exact):
    """``covariance="diag"`` keeps only the diagonal of the precision (a mean-field Laplace).

    The library takes that diagonal in its internal centred-and-scaled
    coordinates, so the intercept picks up correlation with the weights when
    mapped back; what holds in any such coordinates is checked: the weights
    are mutually uncorrelated, the mean is the posterior mean, and each
    weight's variance lies between ``1/A_jj`` and the exact ``C_jj``.
    """
    m, C = exact
    fit = _fit(data, "laplace", num_samples=4000, covariance="diag")
    draws = flat_draws(fit).reshape(-1, 3)
    assert fit.info["laplace_covariance"] == "diag"
    var = draws.var(axis=0, ddof=1)
    lower = 1.0 / np.diag(np.linalg.inv(C))
    assert np.all(var[:P] > 0.9 * lower[:P]) and np.all(var[:P] < 1.1 * np.diag(C)[:P]), (var, lower, np.diag(C))
    assert corr_of(C)[0, 1] < -0.4  # the exact posterior's weights are strongly correlated ...
    assert abs(np.corrcoef(draws[:, 0], draws[:, 1])[0, 1]) < 0.065  # ... the mean-field draws not (4 MC sd of 0)
    z = (draws.mean(axis=0) - m) / (draws.std(axis=0) / np.sqrt(len(draws)))
    assert np.all(np.abs(z) < 4), z


def test_laplace_predict_mean(laplace_fit, exact, data):
    """``predict`` is the posterior mean of ``x~' theta``; exact value ``x~' m``, MC sd ``sqrt(x~'Cx~ / S)``."""
    m, C = exact
    Xnew = np.array([[0.0, 0.0], [1.5, -1.0], [-2.0, 2.0]])
    Xt = np.column_stack([Xnew, np.ones(len(Xnew))])
    se = np.sqrt(np.einsum("ij,jk,ik->i", Xt, C, Xt) / 4000)
    z = (laplace_fit.predict(Xnew) - Xt @ m) / se
    assert np.all(np.abs(z) < 4), z


def test_laplace_predict_interval(laplace_fit, exact):
    """The predictive is ``N(x~'m, x~'Cx~ + sigma^2)``: its 90% bounds are known in closed form."""
    m, C = exact
    Xnew = np.array([[0.0, 0.0], [1.5, -1.0], [-2.0, 2.0], [0.5, 0.5]])
    Xt = np.column_stack([Xnew, np.ones(len(Xnew))])
    sd = np.sqrt(np.einsum("ij,jk,ik->i", Xt, C, Xt) + SIGMA**2)
    q = stats.norm.ppf(0.95)
    lower, upper = laplace_fit.predict_interval(Xnew, prob=0.9)
    assert lower.shape == upper.shape == (len(Xnew),)
    # A 5% quantile from 4000 normal draws has sd sqrt(.05 * .95 / 4000) / phi(1.645) ~ 0.034 sd; 4 of them:
    tol = 0.14 * sd
    assert np.all(np.abs(lower - (Xt @ m - q * sd)) < tol), (lower, Xt @ m - q * sd)
    assert np.all(np.abs(upper - (Xt @ m + q * sd)) < tol), (upper, Xt @ m + q * sd)


def test_laplace_log_likelihood(laplace_fit, exact, data):
    """Pointwise log-likelihood per draw; its posterior mean is known: ``E log N(y | x~'theta, sigma^2)``."""
    m, C = exact
    X, y = data
    ll = laplace_fit.log_likelihood(X, y)
    assert ll.shape == (1, 4000, N)
    Xt = np.column_stack([X, np.ones(N)])
    # Per-draw values are exact: compare with scipy for the first few draws.
    draws = flat_draws(laplace_fit)[0]
    for s in range(3):
        np.testing.assert_allclose(ll[0, s], stats.norm.logpdf(y, Xt @ draws[s], SIGMA), rtol=1e-10, atol=1e-10)
    expected = -0.5 * np.log(2 * np.pi * SIGMA**2) - ((y - Xt @ m) ** 2 + np.einsum("ij,jk,ik->i", Xt, C, Xt)) / (
        2 * SIGMA**2
    )
    se = ll[0].std(axis=0) / np.sqrt(4000)
    z = (ll[0].mean(axis=0) - expected) / se
    assert np.all(np.abs(z) < 4.5), np.abs(z).max()  # 50 rows: allow the max of 50 |z|'s


# --- SVI with a full-covariance guide ----------------------------------------------------------------


@pytest.mark.slow  # the svi_fit fixture: ~40 s of Adam steps on 2 cores
def test_svi_mvn_mean(svi_fit, exact):
    m, C = exact
    draws = flat_draws(svi_fit).reshape(-1, 3)
    assert flat_draws(svi_fit).shape == (1, 4000, 3)
    off = (draws.mean(axis=0) - m) / sd_of(C)
    assert np.all(np.abs(off) < 0.25), f"SVI mean off by {off} posterior sds"


@pytest.mark.slow  # the svi_fit fixture: ~40 s of Adam steps on 2 cores
def test_svi_mvn_sd(svi_fit, exact):
    m, C = exact
    draws = flat_draws(svi_fit).reshape(-1, 3)
    np.testing.assert_allclose(draws.std(axis=0, ddof=1), sd_of(C), rtol=0.15)


@pytest.mark.slow  # the svi_fit fixture: ~40 s of Adam steps on 2 cores
def test_svi_mvn_correlation(svi_fit, exact):
    """A full-covariance guide must capture the strong posterior correlations (|rho| up to ~0.57)."""
    m, C = exact
    draws = flat_draws(svi_fit).reshape(-1, 3)
    np.testing.assert_allclose(np.corrcoef(draws, rowvar=False), corr_of(C), rtol=0, atol=0.15)


@pytest.mark.slow  # the svi_fit fixture: ~40 s of Adam steps on 2 cores
def test_svi_elbo_trace(svi_fit):
    elbo = np.asarray(svi_fit.info["elbo"])
    # The stopping rule ends the run early once the smoothed ELBO is flat (from step 2,000 of 4,000 on).
    stop = svi_fit.info["stopping_step"]
    assert elbo.shape == (4000 if stop is None else int(np.ceil(stop / 0.75)),)
    assert np.all(np.isfinite(elbo))
    assert elbo[-400:].mean() > elbo[:400].mean()
    assert svi_fit.info["converged"] and not svi_fit.info["stopped_on_nan"]


@pytest.mark.slow  # the svi_fit fixture: ~40 s of Adam steps on 2 cores
def test_svi_mvn_pareto_k(svi_fit):
    """A full-covariance guide of a Gaussian posterior: PSIS finds no heavy tail (measured k-hat ~0.1-0.3)."""
    assert svi_fit.info["pareto_k"] <= 0.5


# --- NUTS --------------------------------------------------------------------------------------------


def test_nuts_shapes_and_diagnostics(nuts_fit):
    assert nuts_fit.samples["w0"].shape == (4, 1000, P, 1)
    assert nuts_fit.samples["b0"].shape == (4, 1000, 1)
    assert nuts_fit.info["divergences"] == 0
    assert nuts_fit.info["max_r_hat"] < 1.01
    table = nuts_fit.summary()
    assert len(table) == 3  # one row per scalar parameter
    assert (table["r_hat"] < 1.01).all()
    assert (table["ess_bulk"] > 400).all()


def test_nuts_mean(nuts_fit, exact):
    m, C = exact
    draws = flat_draws(nuts_fit)
    ess = np.array([az.ess(draws[:, :, j], method="mean") for j in range(3)])
    assert np.all(ess > 400), ess
    se = sd_of(C) / np.sqrt(ess)
    z = (draws.reshape(-1, 3).mean(axis=0) - m) / se
    assert np.all(np.abs(z) < 4), f"NUTS mean off by {z} Monte Carlo SEs (ESS {ess})"


def test_nuts_sd(nuts_fit, exact):
    m, C = exact
    draws = flat_draws(nuts_fit).reshape(-1, 3)
    np.testing.assert_allclose(draws.std(axis=0, ddof=1), sd_of(C), rtol=0.10)
    np.testing.assert_allclose(np.corrcoef(draws, rowvar=False), corr_of(C), rtol=0, atol=0.10)


def _row(table, *parts):
    """The one summary row whose label mentions every part (labels are e.g. ``w0[x1, 0]``, ``b0[0]``)."""
    rows = [label for label in table.index if all(p in label for p in parts)]
    assert len(rows) == 1, (parts, list(table.index))
    return table.loc[rows[0]]


def test_nuts_summary_matches_draws(nuts_fit):
    """``summary()`` mean/sd are those of the draws (ArviZ rounds to 3 decimals)."""
    draws = flat_draws(nuts_fit).reshape(-1, 3)
    table = nuts_fit.summary()
    rows = [_row(table, "w0", "x0"), _row(table, "w0", "x1"), _row(table, "b0")]
    np.testing.assert_allclose([r["mean"] for r in rows], draws.mean(axis=0), atol=1e-3)
    np.testing.assert_allclose([r["sd"] for r in rows], draws.std(axis=0), atol=1.5e-3)
