"""ArviZ conversion and posterior diagnostics for :class:`~bayes_rglm.results.Fit` (the one ArviZ owner).

Dims are named by what they index: ``feature`` (the input columns, named
from a DataFrame), ``hidden{l}`` (units of hidden layer ``l``), ``class``
(categorical output columns, classes 1..K-1; class 0 is the reference),
``output`` (a single output column), ``cutpoint`` and ``obs`` (rows).

With hidden layers the weights are not identified (units can be permuted
and, for odd activations, sign-flipped), so chains may agree on the
function while disagreeing on the weights: convergence is judged on
``E[y | x]`` at probe rows (:func:`function_summary`).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from typing import TYPE_CHECKING

import jax
import numpy as np

from .exceptions import DiagnosticsWarning, user_stacklevel
from .labels import display_order, parameter_labels
from .precision import scoped
from .predictive import evaluate
from .runtime import arviz

if TYPE_CHECKING:
    import arviz as az
    import pandas as pd
    import xarray as xr

N_PROBES = 20
RHAT_MAX = 1.01
ESS_MIN = 100


def _dims(fit) -> tuple[dict, dict]:
    model = fit.model
    depth = model.depth
    output = "class" if model.family.reference_class else "output"
    dims, coords = {}, {"feature": list(fit.feature_names)}
    for layer in range(depth + 1):
        inputs = "feature" if layer == 0 else f"hidden{layer - 1}"
        outputs = output if layer == depth else f"hidden{layer}"
        dims[f"w{layer}"] = [inputs, outputs]
        dims[f"b{layer}"] = [outputs]
    for layer, width in enumerate(model.hidden):
        coords[f"hidden{layer}"] = list(range(width))
    coords[output] = list(range(1, fit.data_summary.n_classes)) if output == "class" else [0]
    if "cutpoints" in fit.params:
        dims["cutpoints"] = ["cutpoint"]
        coords["cutpoint"] = list(range(fit.data_summary.n_classes - 1))
    return dims, coords


def _require_data(fit, what: str):
    if fit.data is None:
        raise ValueError(
            f"{what} needs the training data, which this fit does not hold (a point estimate, or "
            "loaded from a file saved without data)"
        )
    return fit.data


@scoped
def to_arviz(fit, posterior_predictive: bool = False, seed: int = 0) -> az.InferenceData:
    """The fit as ``arviz.InferenceData`` (posterior methods only)."""
    az = arviz()
    if fit.samples is None:
        raise ValueError(f"to_arviz needs posterior draws; method {fit.method!r} has none (use laplace, svi or nuts)")
    if fit.data is None:  # out of core, or loaded without data: the draws only
        if posterior_predictive:
            _require_data(fit, "to_arviz(posterior_predictive=True)")
        dims, coords = _dims(fit)
        stats = fit.info.get("sample_stats")
        groups = {"posterior": {k: np.asarray(v) for k, v in fit.samples.items()}}
        if stats:
            groups["sample_stats"] = {k: np.asarray(v) for k, v in stats.items()}
        with one_chain_is_expected():
            return az.from_dict(**groups, coords=coords, dims=dims)
    data = _require_data(fit, "to_arviz")
    dims, coords = _dims(fit)
    dims = {**dims, "y": ["obs"], "X": ["obs", "feature"], "offset": ["obs"], "trials": ["obs"], "weights": ["obs"]}
    weights = np.ones(len(data.y)) if data.weights is None else data.weights
    coords["obs"] = list(range(len(data.y)))
    groups = {
        "posterior": {k: np.asarray(v) for k, v in fit.samples.items()},
        "log_likelihood": {
            "y": fit.log_likelihood(data.X, data.y, offset=data.offset, trials=data.trials, weights=weights)
        },
        "observed_data": {"y": data.y},
        "constant_data": {"X": data.X, "offset": data.offset, "trials": data.trials, "weights": weights},
    }
    stats = fit.info.get("sample_stats")
    if stats:
        groups["sample_stats"] = {k: np.asarray(v) for k, v in stats.items()}
    if posterior_predictive:
        draws = fit._draws()
        y_rep = evaluate(
            fit.model,
            "sample",
            draws,
            data.X,
            None,
            data.offset,
            data.trials,
            key=jax.random.PRNGKey(seed),
            weights=weights,
            anchor=fit.anchor,
        )
        chains, n_draws = np.shape(next(iter(fit.samples.values())))[:2]
        groups["posterior_predictive"] = {"y": y_rep.reshape(chains, n_draws, -1)}
    with one_chain_is_expected():
        return az.from_dict(**groups, coords=coords, dims=dims)


@contextlib.contextmanager
def one_chain_is_expected():
    """ArviZ logs "Shape validation failed" for a posterior of one chain; Laplace and SVI draws are one chain
    by design (their r-hat is NaN), so that message is expected here and kept out of the user's output."""
    # ArviZ logs through its own Logger("arviz") instance, not the one logging.getLogger("arviz") returns.
    logger = getattr(arviz(), "_log", None) or logging.getLogger("arviz")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _summary(data, prob: float) -> pd.DataFrame:
    """``az.summary``, quiet about single-chain posteriors (Laplace, SVI), whose r-hat is NaN by design."""
    az = arviz()
    with one_chain_is_expected():
        return az.summary(data, hdi_prob=prob)


@scoped
def posterior_summary(fit, prob: float = 0.95) -> pd.DataFrame:
    """ArviZ's summary of every scalar parameter; with hidden layers, a note says to read the function summary."""
    az = arviz()
    dims, coords = _dims(fit)
    names = sorted(fit.samples)
    with one_chain_is_expected():
        posterior = az.from_dict(posterior={k: np.asarray(fit.samples[k]) for k in names}, coords=coords, dims=dims)
    table = _summary(posterior, prob)
    # The same row labels as mle/map summaries (w0[age], b0, ...), in layer order.
    labels = [
        label
        for name in names
        for label in parameter_labels(fit.model, name, np.shape(fit.samples[name])[2:], fit.feature_names)
    ]
    if len(labels) == len(table):
        table.index = sys.modules["pandas"].Index(labels, name="parameter")  # ArviZ's table: pandas is loaded
        table = table.loc[display_order(labels)]
    if fit.info.get("pareto_k") is not None:  # laplace and svi: does the approximation work (inference.psis)?
        table.attrs["pareto_k"] = fit.info["pareto_k"]
    if fit.model.depth > 0:
        table.attrs["note"] = (
            "hidden layers: weights are not identified (units permute, odd activations flip sign), so r_hat "
            "and ESS of single weights mislead; judge convergence with fit.summary(kind='function')"
        )
    return table


def probe_rows(n_rows: int) -> np.ndarray:
    """A fixed subset of the training rows (the same for every fit of the same size)."""
    return np.sort(np.random.default_rng(0).choice(n_rows, size=min(n_rows, N_PROBES), replace=False))


@scoped
def function_draws(fit) -> xr.Dataset:
    """``E[y | x]`` (class probabilities for categorical) at the probe rows, per draw."""
    import xarray as xr

    data = _require_data(fit, "kind='function'")
    rows = probe_rows(len(data.y))
    chains, n_draws = np.shape(next(iter(fit.samples.values())))[:2]
    categorical = fit.model.family.reference_class
    quantity = "proba" if categorical else "mean"
    X, offset, trials = data.X[rows], data.offset[rows], data.trials[rows]
    values = evaluate(fit.model, quantity, fit._draws(), X, None, offset, trials, anchor=fit.anchor)
    values = values.reshape((chains, n_draws) + values.shape[1:])
    dims = ["chain", "draw", "probe"] + (["class"] if categorical else [])
    name = "p" if categorical else "mu"
    return xr.Dataset({name: (dims, values)}, coords={"probe": rows})


@scoped
def function_summary(fit, prob: float = 0.95) -> pd.DataFrame:
    """r-hat, ESS and MCSE of ``E[y | x]`` at probe rows (``mu[row]``; ``p[row, class]`` for categorical)."""
    return _summary(function_draws(fit), prob)


def _parameter_draws(fit) -> xr.Dataset:
    """The raw parameter draws as a Dataset (each array its own dims), for r-hat and ESS."""
    import xarray as xr

    return xr.Dataset(
        {
            k: (["chain", "draw", *(f"{k}_{i}" for i in range(np.ndim(v) - 2))], np.asarray(v))
            for k, v in fit.samples.items()
        }
    )


def _extreme(table: xr.Dataset, reduce) -> float:
    """``reduce`` (np.max or np.min) over the finite values of every variable of ``table``; NaN if none."""
    values = np.concatenate([np.ravel(v) for v in table.data_vars.values()])
    finite = values[np.isfinite(values)]
    return float(reduce(finite)) if finite.size else np.nan


@scoped
def check_diagnostics(fit) -> None:
    """Warn on divergences, r-hat above 1.01 or bulk ESS below 100 (function space with hidden layers)."""
    az = arviz()
    divergences = fit.info.get("divergences", 0)
    problems = []
    if divergences:
        problems.append(f"{divergences} divergent transitions (raise target_accept, e.g. 0.95, or reparametrise)")
    if fit.model.depth > 0:
        draws, where = function_draws(fit), "E[y|x] at probe rows"
    else:
        draws, where = _parameter_draws(fit), "parameters"
    chains = np.shape(next(iter(fit.samples.values())))[0]
    # Only the two numbers judged (rank-normalised split r-hat, bulk ESS): az.summary would also
    # compute tail ESS, MCSE and HDIs, several times slower.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant draws (e.g. a fixed class) give NaN r-hat
        r_hat = _extreme(az.rhat(draws), np.max) if chains > 1 else np.nan
        ess = _extreme(az.ess(draws, method="bulk"), np.min)
    fit.info.update({"max_r_hat": float(r_hat), "min_ess_bulk": float(ess), "diagnosed_on": where})
    if np.isfinite(r_hat) and r_hat > RHAT_MAX:
        problems.append(f"max r_hat {r_hat:.3f} > {RHAT_MAX} on {where} (run longer or check for multimodality)")
    if np.isfinite(ess) and ess < ESS_MIN:
        problems.append(f"min bulk ESS {ess:.0f} < {ESS_MIN} on {where} (draw more samples)")
    if problems:
        warnings.warn("NUTS diagnostics: " + "; ".join(problems), DiagnosticsWarning, stacklevel=user_stacklevel())


@scoped
def distance_from(fit, reference) -> dict:
    """How far ``fit``'s posterior is from ``reference``'s (NUTS): ``mean_diff_sd``, the largest difference of
    posterior means in the reference's posterior sds, and ``sd_ratio``, the median ratio of posterior sds.

    Over the scalar parameters at depth 0; over ``E[y | x]`` at the probe rows with hidden layers, whose
    weights are not identified (units permute, odd activations flip sign).  A point fit (mle, map) is its
    estimate, with its standard errors (depth 0) as sds.
    """

    def moments(f):
        if f.model.depth > 0:
            if f.samples is None:
                data = _require_data(f, "the distance from a reference")
                rows = probe_rows(len(data.y))
                quantity = "proba" if f.model.family.reference_class else "mean"
                mean = evaluate(f.model, quantity, f._draws(), data.X[rows], None, data.offset[rows], data.trials[rows])
                return np.ravel(mean[0]), None
            values = next(iter(function_draws(f).data_vars.values())).values
            values = values.reshape(values.shape[0] * values.shape[1], -1)  # (draws, probes[ x classes])
            return values.mean(axis=0), values.std(axis=0)
        names = sorted(f.params)
        if f.samples is None:
            mean = np.concatenate([np.ravel(f.params[k]) for k in names])
            bse = f.bse
            return mean, None if bse is None else np.concatenate([np.ravel(bse[k]) for k in names])
        draws = np.concatenate(
            [np.asarray(f.samples[k]).reshape(-1, int(np.prod(np.shape(f.params[k])))) for k in names], axis=1
        )
        return draws.mean(axis=0), draws.std(axis=0)

    mean, sd = moments(fit)
    ref_mean, ref_sd = moments(reference)
    keep = ref_sd > 0
    out = {"mean_diff_sd": float(np.max(np.abs(mean - ref_mean)[keep] / ref_sd[keep]))}
    out["sd_ratio"] = float(np.median(sd[keep] / ref_sd[keep])) if sd is not None else float("nan")
    return out
