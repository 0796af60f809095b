"""Tests between nested maximum-likelihood fits, as R's ``anova(fit_small, fit_big, ..., test=)``.

The fits are ordered from the most to the fewest residual degrees of freedom.  Each row after the
first compares a model with the one before it:

- ``test="Chisq"`` (the default without an estimated dispersion): the deviance difference
  ``D`` on ``Df`` degrees of freedom against chi-squared, after dividing by the dispersion of the
  largest model where R's summary estimates one (gaussian, gamma);
- ``test="F"`` (the default for gaussian and gamma): ``F = (D / Df) / phi`` with ``phi`` the largest
  model's Pearson dispersion, on ``(Df, df_residual of the largest model)`` degrees of freedom;
- families whose fits estimate other nuisance parameters (negative binomial's theta, tobit's sigma,
  ordinal cutpoints) and categorical use the likelihood-ratio statistic ``2 (loglik_b - loglik_a)``
  as the deviance difference, as R's ``anova.negbin`` and ``anova.polr`` do.

Fits nest when they share the family, link, response, weights and offset, and each model's inputs lie
in the span of the next one's (checked at depth 0 by least squares; a net is compared with a model
of the same inputs).  Anything else is a ``ValueError`` that says why.

Examples
--------
>>> import numpy as np, bayes_rglm as br
>>> rng = np.random.default_rng(0); X = rng.normal(size=(60, 2)); y = rng.poisson(np.exp(0.3 * X[:, 0]))
>>> small = br.RGLM("poisson").fit(X[:, :1], y, method="mle"); big = br.RGLM("poisson").fit(X, y, method="mle")
>>> list(anova(small, big).columns)
['Resid. Df', 'Resid. Dev', 'Df', 'Deviance', 'Pr(>Chi)']
"""

from __future__ import annotations

import numpy as np

from .precision import scoped
from .results import Fit

TESTS = ("Chisq", "F", None)


def _check_nested(fits) -> None:
    for i, fit in enumerate(fits):
        if not isinstance(fit, Fit):
            raise TypeError(
                f"anova compares fits (bayes_rglm.Fit, from model.fit(..., method='mle')); fit {i} is "
                f"{type(fit).__name__} {fit!r:.60}"
            )
    first = fits[0]
    for fit in fits:
        if fit.method != "mle":
            raise ValueError(f"anova compares maximum-likelihood fits (method='mle'), not method={fit.method!r}")
        if fit.data is None:
            raise ValueError("anova needs each fit's training data (a fit loaded without data has none)")
    for fit in fits[1:]:
        a, b = first.data, fit.data
        if (fit.model.family.name, fit.model.link.name) != (first.model.family.name, first.model.link.name):
            raise ValueError(
                f"anova needs fits of one family and link; got {first.model.family.name}/{first.model.link.name} "
                f"and {fit.model.family.name}/{fit.model.link.name}"
            )
        same_rows = len(a.y) == len(b.y) and np.array_equal(a.y, b.y)
        same_rows = same_rows and np.allclose(a.offset, b.offset) and np.array_equal(a.trials, b.trials)
        wa = np.ones(len(a.y)) if a.weights is None else a.weights
        wb = np.ones(len(b.y)) if b.weights is None else b.weights
        if not (same_rows and np.array_equal(wa, wb)):
            raise ValueError("anova needs fits of the same data: the response, offset, trials and weights differ")


def _spans(small, big) -> bool:
    """Whether ``small``'s inputs lie in the span of ``big``'s (with the intercept), by least squares."""
    xs, xb = small.data.X, big.data.X
    if small.model.depth > 0 or big.model.depth > 0:
        return xs.shape == xb.shape and np.allclose(xs, xb)
    design = np.c_[np.ones(len(xb)), xb]
    coef = np.linalg.lstsq(design, xs, rcond=None)[0]
    residual = np.linalg.norm(xs - design @ coef, axis=0)
    return bool(np.all(residual <= 1e-7 * np.maximum(np.linalg.norm(xs, axis=0), 1.0)))


@scoped
def anova(*fits, test: str | None = "default"):
    """Analysis of deviance of nested maximum-likelihood fits (see the module text); a DataFrame, one row per fit."""
    import pandas as pd  # noqa: PLC0415 -- here: importing bayes_rglm pays for neither pandas nor scipy.stats
    from scipy import stats as distributions  # noqa: PLC0415

    if len(fits) < 2:
        raise ValueError(f"anova needs at least two fits to compare, got {len(fits)}")
    _check_nested(fits)
    family = fits[0].model.family
    dispersion_family = family.glm_dispersion is not None
    likelihood_ratio = family.unit_deviance is None or (len(family.nuisance) > 0 and not dispersion_family)
    if test == "default":
        test = "F" if dispersion_family else "Chisq"
    if test not in TESTS:
        raise ValueError(f"test={test!r} is not known; use 'Chisq', 'F' or None")
    if test == "F" and not dispersion_family:
        raise ValueError(f"the F test needs an estimated dispersion (gaussian, gamma), not family {family.name!r}")
    stats = [fit.stats for fit in fits]
    order = sorted(range(len(fits)), key=lambda i: -stats[i]["df_residual"])
    fits, stats = [fits[i] for i in order], [stats[i] for i in order]
    for small, big, s_small, s_big in zip(fits, fits[1:], stats, stats[1:], strict=False):
        if s_small["df_residual"] == s_big["df_residual"] or not _spans(small, big):
            raise ValueError(
                "anova needs nested fits: the inputs of each model must lie in the span of the next larger one's "
                f"(residual df {s_small['df_residual']} and {s_big['df_residual']})"
            )
    deviances = [-2.0 * s["loglik"] if likelihood_ratio else s["deviance"] for s in stats]
    resid_df = [s["df_residual"] for s in stats]
    table = {
        "Resid. Df": resid_df,
        "Resid. Dev": deviances,
        "Df": [np.nan] + [a - b for a, b in zip(resid_df, resid_df[1:], strict=False)],
        "Deviance": [np.nan] + [a - b for a, b in zip(deviances, deviances[1:], strict=False)],
    }
    phi = stats[-1]["dispersion"]
    df, change = np.asarray(table["Df"][1:]), np.asarray(table["Deviance"][1:])
    if test == "Chisq":
        table["Pr(>Chi)"] = [np.nan, *distributions.chi2.sf(change / phi, df)]
    elif test == "F":
        f = change / df / phi
        table["F"] = [np.nan, *f]
        table["Pr(>F)"] = [np.nan, *distributions.f.sf(f, df, resid_df[-1])]
    labels = [fit.formula.formula if fit.formula is not None else f"model {i + 1}" for i, fit in enumerate(fits)]
    return pd.DataFrame(table, index=pd.Index(labels, name="model"))
