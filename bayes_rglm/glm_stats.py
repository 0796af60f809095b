"""R's summary quantities of a point fit: log-likelihood, deviance, degrees of freedom, AIC, BIC, dispersion,
and residuals.

Definitions follow R's ``glm`` (``summary.glm``, ``residuals.glm``, ``logLik.glm``) on the GLM scale,
where a binomial response is the proportion ``y / trials`` with prior weight ``w * trials``:

- ``deviance = sum_i w_i d(y_i, mu_i)`` with the family's unit deviance ``d`` (gaussian
  ``(y - mu)^2``; poisson ``2 [y log(y / mu) - (y - mu)]``; binomial, gamma and negative binomial at
  its fitted ``theta``, as ``glm.nb``).  Tobit, categorical and ordinal have no unit deviance in R;
  their deviance is ``-2 loglik``, as ``polr`` reports it.
- ``null_deviance``: the deviance of the intercept-only model with the same offset and weights
  (its mean is the weighted mean of ``y`` without an offset; with one, the intercept is solved
  for).  Categorical and ordinal: ``-2`` times the log-likelihood of the class frequencies (no
  offset).  Tobit: not defined here (None).
- ``df_residual = n - rank``: ``n`` rows of positive weight, ``rank`` the parameters other than a
  scalar dispersion (sigma, gamma's shape, the negative binomial's theta); ``df_null = n - 1``.
- ``loglik``: the log-likelihood at the fitted parameters (weighted as in
  :meth:`~bayes_rglm.families.Family.weighted_log_likelihood`); ``aic = -2 loglik + 2 k`` and
  ``bic = -2 loglik + log(n) k`` with ``k`` every estimated parameter (sigma, shape and theta
  included, as R counts them).  Gamma: R's ``logLik.glm`` plugs in ``deviance / n`` as the
  dispersion, which is not its maximum-likelihood value; ours is at the fitted (ML or MAP) shape.
  ``n`` counts the rows of positive weight (R's ``nobs`` and ``df.residual`` do too; R's ``BIC`` takes
  ``logLik``'s count, which includes rows of weight 0).
- ``dispersion``: R's ``summary.glm``: the Pearson estimate ``sum_i w_i (y_i - mu_i)^2 / V(mu_i) /
  df_residual`` for gaussian and gamma, 1 for every other family.

Residuals (``kind``): ``"response"`` ``y - mu``; ``"pearson"`` ``(y - mu) sqrt(w) / sqrt(V(mu))``;
``"deviance"`` ``sign(y - mu) sqrt(w d(y, mu))``; ``"working"`` ``(y - mu) / (dmu / deta)``.

Examples
--------
>>> import numpy as np, bayes_rglm as br
>>> X = np.arange(8.0)[:, None]; y = np.array([0, 1, 1, 2, 3, 5, 6, 9.0])
>>> fit = br.RGLM("poisson").fit(X, y, method="mle")
>>> round(fit.stats["deviance"], 4) == round(float(np.sum(fit.residuals("deviance") ** 2)), 4)
True
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from scipy import optimize

from .predictive import evaluate

RESIDUAL_KINDS = ("deviance", "pearson", "response", "working")


def _require_point_fit(fit, what: str):
    if fit.method not in ("mle", "map"):
        raise ValueError(
            f"{what} is defined for point fits (method 'mle' or 'map'), not {fit.method!r}; for a posterior "
            "use fit.to_arviz() with arviz.loo, or refit with method='map'"
        )
    if fit.data is None:
        raise ValueError(f"{what} needs the training data, which this fit does not hold (saved without data)")
    return fit.data


def _weights(data) -> np.ndarray:
    return np.ones(len(data.y)) if data.weights is None else np.asarray(data.weights, dtype=float)


def _nuisance(fit) -> dict:
    return {n.name: np.asarray(fit.params[n.name]) for n in fit.model.family.nuisance}


def glm_scale(fit):
    """``(y, mu, w)`` of the training rows on the GLM scale (binomial: proportions, weight ``w * trials``)."""
    data = fit.data
    family = fit.model.family
    mu = evaluate(fit.model, "mean", fit._draws(), data.X, None, data.offset, data.trials)[0]
    return family.glm_scale(np.asarray(data.y, dtype=float), mu, data.trials, _weights(data))


def log_likelihood(fit) -> float:
    data = fit.data
    pointwise = fit.log_likelihood(data.X, data.y, offset=data.offset, trials=data.trials, weights=data.weights)
    return float(np.sum(pointwise))


def _null_deviance(fit, y, w) -> float | None:
    """The deviance of the intercept-only model with the fit's offset and weights (see the module text)."""
    model, data = fit.model, fit.data
    family, link = model.family, model.link
    nu = _nuisance(fit)
    if family.unit_deviance is None:
        if family.has_classes and not np.any(data.offset):
            freq = np.asarray(fit.data_summary.class_freq)
            return float(-2.0 * np.sum(w * np.log(freq[y.astype(int)])))
        return None
    if not np.any(data.offset):
        mu = np.full_like(y, np.sum(w * y) / np.sum(w))
        return float(np.sum(w * family.unit_deviance(y, mu, nu)))

    def deviance(b):
        return float(np.sum(w * family.unit_deviance(y, np.asarray(link.inverse(jnp.asarray(b + data.offset))), nu)))

    start = float(link.link(jnp.asarray(np.sum(w * y) / np.sum(w)))) - float(np.average(data.offset, weights=w))
    b = optimize.minimize_scalar(deviance, bracket=(start - 1.0, start + 1.0), method="brent", tol=1e-12).x
    return deviance(b)


def stats(fit) -> dict:
    """R's summary quantities of a point fit (see the module text)."""
    data = _require_point_fit(fit, "fit.stats")
    family = fit.model.family
    y, mu, w = glm_scale(fit)
    n = int(len(data.y))
    scalar_nuisance = sum(1 for nu in family.nuisance if nu.shape(fit.data_summary) == ())
    k = int(sum(np.sum(np.isfinite(v)) for v in fit.params.values()))  # aliased coefficients (NaN) not counted
    rank = k - scalar_nuisance
    loglik = log_likelihood(fit)
    if family.unit_deviance is not None:
        deviance = float(np.sum(w * family.unit_deviance(y, mu, _nuisance(fit))))
    else:
        deviance = -2.0 * loglik
    df_residual = n - rank
    if family.glm_dispersion is not None:
        # gaussian and gamma (no trials): the GLM scale is the data's own
        pearson = family.pearson(data.y, mu, data.trials, _weights(data), _nuisance(fit))
        dispersion, method = pearson / df_residual, "Pearson chi-squared / df_residual (R's summary.glm)"
    else:
        dispersion, method = 1.0, "fixed at 1"
    info = fit.info
    return {
        "loglik": loglik,
        "deviance": deviance,
        "null_deviance": _null_deviance(fit, y, w),
        "df_residual": df_residual,
        "df_null": n - 1,
        "aic": -2.0 * loglik + 2.0 * k,
        "bic": float(-2.0 * loglik + np.log(n) * k),
        "dispersion": dispersion,
        "dispersion_method": method,
        "n": n,
        "n_params": k,
        "converged": bool(info.get("converged", True)),
        "iterations": info.get("iterations"),
    }


def residuals(fit, kind: str = "deviance") -> np.ndarray:
    """Residuals of a point fit at its training rows, as R's ``residuals.glm`` (see the module text)."""
    if kind not in RESIDUAL_KINDS:
        raise ValueError(f"kind={kind!r} is not a residual type; use one of {', '.join(RESIDUAL_KINDS)}")
    data = _require_point_fit(fit, "fit.residuals")
    family = fit.model.family
    if family.has_classes and not family.uses_trials and family.unit_deviance is None:
        raise ValueError(
            f"residuals are not defined for family {family.name!r} (its response is a class label); use "
            "fit.predict_proba and fit.log_likelihood"
        )
    y, mu, w = glm_scale(fit)
    if kind == "response":
        return y - mu
    if kind == "working":
        slope = evaluate(fit.model, "dmu_deta", fit._draws(), data.X, None, data.offset, data.trials)[0]
        return (y - mu) / slope
    if family.unit_deviance is None:
        raise ValueError(
            f"{kind} residuals need a family with a variance function and a unit deviance; family "
            f"{family.name!r} has neither in R: use kind='response' or 'working'"
        )
    nu = _nuisance(fit)
    if kind == "pearson":
        return (y - mu) * np.sqrt(w / family.variance(mu, nu))
    return np.sign(y - mu) * np.sqrt(np.maximum(w * family.unit_deviance(y, mu, nu), 0.0))
