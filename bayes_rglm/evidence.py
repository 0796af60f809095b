"""Choosing the prior's weight scale by the Laplace evidence (empirical Bayes, MacKay 1992).

The Laplace approximation estimates the marginal likelihood of the data under a prior,

    log p(y | s) ~ log p(y | theta*) + log p(theta* | s) + D/2 log(2 pi) - 1/2 log det H,

(``fit.info["log_evidence"]``; exact for a Gaussian linear model).  :func:`tune_prior_scale` multiplies
every layer's weight prior scale by a common factor ``c`` (the biases' scales are kept), fits Laplace at
each ``c`` of a grid in powers of two (extended past an edge where the evidence still rises there), refines
the best by a parabola in ``log c`` through it and its two
neighbours, and returns the fit with the largest evidence with the table of all.  ``fit(...,
method="laplace", prior_scale="evidence")`` does the same with the default grid.

Each factor is another model, so each fit compiles its own programs: a depth-0 GLM tunes in seconds, a
net in a few seconds per factor.  A hierarchical prior has no Laplace evidence (its scales are
parameters with no finite MAP): it is refused.

Examples
--------
>>> import numpy as np, bayes_rglm as br
>>> rng = np.random.default_rng(0); X = rng.normal(size=(60, 3)); y = X @ [1.0, 0.5, 0.0] + rng.normal(size=60)
>>> fit, table = br.tune_prior_scale(br.RGLM("gaussian"), X, y, factors=[0.25, 1.0, 4.0])
>>> list(table.columns)
['factor', 'weight_scales', 'log_evidence']
"""

from __future__ import annotations

import numbers

import numpy as np

from .formula import FormulaDesign
from .precision import scoped
from .priors import GaussianPrior
from .serialize import model_arguments, model_to_dict

FACTORS = tuple(2.0**k for k in range(-4, 5))  # 1/16 ... 16 times the model's weight scales
EXTENSIONS = 4  # at most this many steps of 4x beyond the grid's edge where the evidence is still rising


def check_tunable(model, factors) -> tuple[float, ...]:
    """Refuse what has no evidence to tune, before any fitting; the factors as floats."""
    if model.prior.hierarchical:
        raise ValueError(
            "prior_scale='evidence' needs a fixed GaussianPrior: with hierarchical=True the scales are parameters "
            "with no finite MAP, so there is no Laplace evidence; use hierarchical=False, or method='nuts'"
        )
    factors = FACTORS if factors is None else factors
    if isinstance(factors, str) or not hasattr(factors, "__iter__"):
        raise TypeError(f"factors must be a sequence of positive numbers, e.g. [0.25, 1, 4], got {factors!r}")
    factors = tuple(factors)
    if len(factors) < 1 or not all(
        isinstance(f, numbers.Real) and not isinstance(f, bool) and np.isfinite(f) and f > 0 for f in factors
    ):
        raise ValueError(f"factors must be positive finite numbers, e.g. [0.25, 1, 4], got {factors!r}")
    return tuple(sorted(float(f) for f in factors))


def scaled_model(model, n_features: int, factor: float):
    """``model`` with every layer's weight prior scale multiplied by ``factor`` (biases and autoscale kept)."""
    prior = model.prior
    fan_in = (n_features, *model.hidden)
    layers = model.depth + 1
    weights = tuple(factor * s for s in prior.weight_scales(layers, fan_in))
    scaled = GaussianPrior(scale=weights, bias_scale=prior.bias_scales(layers), autoscale=prior.autoscale)
    spec = model_to_dict(model)
    return type(model)(**{**model_arguments(spec), "prior": scaled})


@scoped
def tune_prior_scale(model, X, y=None, *, factors=None, **options):
    """Fit Laplace with the weight prior scales times each factor; keep the largest Laplace evidence.

    Parameters
    ----------
    model : RGLM
        The model whose prior (a fixed GaussianPrior) is scaled.
    X, y, **options
        As for :meth:`RGLM.fit` with ``method="laplace"`` (``data=``, ``weights=``, ``num_samples=``, ...).
    factors : sequence of float, optional
        Multipliers of the weight scales to try; default ``2**-4 ... 2**4``.  The best is refined by one
        more fit at the vertex of a parabola in ``log factor`` through it and its neighbours.

    Returns
    -------
    (Fit, pandas.DataFrame)
        The Laplace fit with the largest evidence (``info["prior_factor"]`` says its factor) and a table of
        ``factor``, ``weight_scales`` and ``log_evidence`` for every fit.
    """
    import pandas as pd

    factors = check_tunable(model, factors)
    if options.pop("method", "laplace") != "laplace":
        raise ValueError("tune_prior_scale fits method='laplace' (the evidence is Laplace's)")
    if "covariance" in options and options["covariance"] not in (None, "full"):
        raise ValueError(f"the Laplace evidence needs covariance='full', got covariance={options['covariance']!r}")
    fits, rows = {}, []

    def one(factor):
        scaled = scaled_model(model, _n_features(model, X, y, options), factor)
        fit = scaled.fit(X, y, method="laplace", **options)
        evidence = fit.info.get("log_evidence")
        fits[factor] = fit
        scales = scaled.prior.scale
        rows.append({"factor": factor, "weight_scales": list(scales), "log_evidence": evidence})
        return -np.inf if evidence is None else evidence

    factors = list(factors)
    values = [one(f) for f in factors]
    best = int(np.argmax(values))
    # The best at an edge of the grid: extend it by factors of 4 there (up to 4**4 beyond), so the evidence's
    # maximum is bracketed.
    for _ in range(EXTENSIONS):
        if best == 0 and len(factors) > 1:
            factors.insert(0, factors[0] / 4.0)
            values.insert(0, one(factors[0]))
        elif best == len(factors) - 1 and len(factors) > 1:
            factors.append(factors[-1] * 4.0)
            values.append(one(factors[-1]))
        else:
            break
        best = int(np.argmax(values))
    if 0 < best < len(factors) - 1 and np.all(np.isfinite(values[best - 1 : best + 2])):
        logs = np.log(factors[best - 1 : best + 2])
        a, b, _ = np.polyfit(logs, values[best - 1 : best + 2], 2)
        if a < 0:
            vertex = float(np.exp(-b / (2 * a)))
            if factors[best - 1] < vertex < factors[best + 1] and vertex not in fits:
                one(vertex)
    table = pd.DataFrame(rows).sort_values("factor").reset_index(drop=True)
    if not np.isfinite(table["log_evidence"].astype(float)).any():
        raise ValueError("no factor gave a Laplace evidence (the Hessian was not positive definite at every MAP)")
    chosen = float(table.loc[table["log_evidence"].astype(float).idxmax(), "factor"])
    fit = fits[chosen]
    fit.info["prior_factor"] = chosen
    fit.info["prior_tuning"] = table.to_dict(orient="list")
    return fit, table


def _n_features(model, X, y, options) -> int:
    """The number of input columns the model sees (a formula's design included)."""
    if isinstance(X, str):
        return FormulaDesign.from_formula(X, options.get("data"))[1].shape[1]
    return int(np.shape(X)[1]) if np.ndim(X) == 2 else 1
