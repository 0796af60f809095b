"""Marginal effects on the response scale, as R's marginaleffects and bambi's ``interpret``.

- :func:`predictions`: ``E[y | x]`` at each row of the data (or its average);
- :func:`comparisons`: the average change in ``E[y | x]`` when one variable moves from one value to
  another, everything else as in the data (numeric: ``+1`` by default; a formula's factor: each level
  against the first);
- :func:`slopes`: the average derivative ``d E[y | x] / d x_v`` over the rows (central differences,
  step ``1e-4`` of the variable's sd).

The data default to the training data (a formula fit's training DataFrame); pass ``data=`` for other
rows or a grid ("at given values": a one-row DataFrame).  Variables are columns of ``X`` (by name, or
``"x0"``... for arrays), or the raw columns a formula uses.  Intervals come from whichever method
fitted: the delta method with the fit's covariance for ``mle``/``map`` (``cov_type`` respected), and
the posterior draws' quantiles for ``laplace``, ``svi`` and ``nuts``.  With hidden layers the weights
mean nothing on their own, but these effects do.  Averages are unweighted means over the rows.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import ndtri

from .data import is_dataframe
from .formula import factor_column
from .precision import scoped
from .predictive import evaluate

STEP = 1e-4  # slopes: central difference step, relative to the variable's sd


def _require_mean(fit, what: str):
    if fit.model.family.reference_class:
        raise ValueError(
            f"{what} needs a scalar mean E[y | x]; family {fit.model.family.name!r} predicts classes "
            "(use predict_proba)"
        )


def _frame(fit, data):
    """The rows to average over: a DataFrame (formula fits, DataFrame fits) or a float array."""
    if data is not None:
        return data
    if fit.formula is not None:
        return fit.formula.data
    if fit.data is None:
        raise ValueError("this fit holds no training data; pass data= (the rows to average over)")
    if fit.named_columns:
        import pandas as pd  # noqa: PLC0415 -- only DataFrame users reach this

        return pd.DataFrame(fit.data.X, columns=fit.feature_names)
    return np.asarray(fit.data.X)


def _column(frame, fit, variable):
    if is_dataframe(frame):
        if variable not in frame.columns:
            raise ValueError(
                f"variable {variable!r} is not in the model's data (columns: {', '.join(map(str, frame.columns))})"
            )
        return frame[variable]
    if variable not in fit.feature_names:
        raise ValueError(f"variable {variable!r} is not in the model (its columns: {', '.join(fit.feature_names)})")
    return frame[:, fit.feature_names.index(variable)]


def _with(frame, fit, variable, values):
    """A copy of ``frame`` with ``variable`` set to ``values``."""
    if is_dataframe(frame):
        return frame.assign(**{variable: values})
    out = np.array(frame, dtype=np.float64)
    out[:, fit.feature_names.index(variable)] = values
    return out


def _inputs(fit, frame):
    X, offset, trials = fit._inputs(frame, None, None)
    return np.asarray(X), np.asarray(offset), np.asarray(trials)


def _estimate(fit, frames, combine, labels, prob: float):
    """Estimates, standard errors and ``prob`` intervals of ``combine(means per scenario)``.

    ``combine`` maps a list of ``(..., rows)`` mean arrays (one per frame) to ``(..., k)``.
    """
    import pandas as pd  # noqa: PLC0415 -- importing bayes_rglm does not pay for pandas

    inputs = [_inputs(fit, f) for f in frames]
    alpha = (1.0 - prob) / 2.0
    if fit.samples is not None:
        draws = fit._draws()
        anchor = fit.anchor
        means = [evaluate(fit.model, "mean", draws, X, None, o, t, anchor=anchor) for X, o, t in inputs]
        values = np.asarray(combine(means))
        estimate, se = values.mean(axis=0), values.std(axis=0, ddof=1)
        lower, upper = np.quantile(values, [alpha, 1.0 - alpha], axis=0)
        how = f"posterior draws ({fit.method}), central {prob:g} interval"
    else:
        estimate, se = _delta_method(fit, inputs, combine)
        q = ndtri(1.0 - alpha)
        lower, upper = estimate - q * se, estimate + q * se
        how = f"delta method ({fit.info.get('cov_type', 'observed')} covariance), {prob:g} Wald interval"
    table = pd.DataFrame(
        {"estimate": estimate, "std_error": se, f"lower_{prob:g}": lower, f"upper_{prob:g}": upper},
        index=pd.Index(labels, name="term"),
    )
    table.attrs["interval"] = how
    return table


def _delta_method(fit, inputs, combine):
    names = sorted(fit.params)
    shapes = {k: np.shape(fit.params[k]) for k in names}
    sizes = [int(np.prod(shapes[k], dtype=int)) for k in names]
    flat = np.concatenate([np.ravel(fit.params[k]) for k in names])
    flat = np.nan_to_num(flat, nan=0.0)  # aliased coefficients: 0, and no variance
    model = fit.model

    def function(theta):
        params, start = {}, 0
        for name, size in zip(names, sizes, strict=True):
            params[name] = theta[start : start + size].reshape(shapes[name])
            start += size
        means = []
        for X, offset, trials in inputs:
            eta = model.linear_predictor(params, jnp.asarray(X), jnp.asarray(offset))
            means.append(model.family.mean(eta, model.link, model.nuisance(params), jnp.asarray(trials)))
        return combine(means)

    theta = jnp.asarray(flat)
    estimate = np.asarray(function(theta))
    covariance = fit.covariance
    if covariance is None:
        return estimate, np.full(estimate.shape, np.nan)
    jacobian = np.asarray(jax.jacfwd(function)(theta))
    covariance = np.nan_to_num(np.asarray(covariance), nan=0.0)
    return estimate, np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", jacobian, covariance, jacobian), 0.0))


@scoped
def predictions(fit, data=None, *, average: bool = False, prob: float = 0.95, plot: bool = False):
    """``E[y | x]`` at each row of ``data`` (default: the training data), or their average, with intervals."""
    _require_mean(fit, "predictions")
    frame = _frame(fit, data)
    n = len(frame)
    if average:
        table = _estimate(fit, [frame], lambda m: jnp.mean(m[0], axis=-1)[..., None], ["average"], prob)
    else:
        table = _estimate(fit, [frame], lambda m: m[0], [str(i) for i in range(n)], prob)
    if plot:
        _plot(table, "E[y | x]")
    return table


@scoped
def comparisons(fit, variable: str, values=None, *, data=None, prob: float = 0.95, plot: bool = False):
    """The average change in ``E[y | x]`` when ``variable`` moves between ``values`` (see the module text)."""
    _require_mean(fit, "comparisons")
    frame = _frame(fit, data)
    column = _column(frame, fit, variable)
    if values is None:
        if _is_factor(fit, variable, column):
            levels = _levels(fit, variable, column)
            values = [(levels[0], level) for level in levels[1:]]
        else:
            values = [("x", "x + 1")]
    elif isinstance(values, tuple) and len(values) == 2:
        values = [values]
    frames, labels = [], []
    for low, high in values:
        frames += [_shifted(frame, fit, variable, column, low), _shifted(frame, fit, variable, column, high)]
        labels.append(f"{variable}: {high} - {low}")
    k = len(labels)

    def combine(means):
        return jnp.stack([jnp.mean(means[2 * i + 1] - means[2 * i], axis=-1) for i in range(k)], axis=-1)

    table = _estimate(fit, frames, combine, labels, prob)
    if plot:
        _plot(table, f"change in E[y | x] with {variable}")
    return table


@scoped
def slopes(fit, variable: str, *, data=None, prob: float = 0.95, plot: bool = False):
    """The average derivative ``d E[y | x] / d variable`` over the rows of ``data``, with an interval."""
    _require_mean(fit, "slopes")
    frame = _frame(fit, data)
    column = np.asarray(_column(frame, fit, variable))
    if _is_factor(fit, variable, column):
        raise ValueError(f"variable {variable!r} is a factor; use comparisons({variable!r}) for its levels")
    column = column.astype(np.float64)
    sd = float(np.std(column)) if column.size > 1 else 0.0
    h = STEP * (sd if sd > 0 else 1.0)
    frames = [_with(frame, fit, variable, column - h), _with(frame, fit, variable, column + h)]
    table = _estimate(fit, frames, lambda m: jnp.mean((m[1] - m[0]) / (2 * h), axis=-1)[..., None], [variable], prob)
    if plot:
        _plot(table, f"d E[y | x] / d {variable}")
    return table


def _is_factor(fit, variable, column) -> bool:
    if fit.formula is None:
        return False
    return bool(_levels(fit, variable, column)) or not np.issubdtype(np.asarray(column).dtype, np.number)


def _levels(fit, variable, column) -> list:
    for factor, (_, state) in fit.formula.spec.rhs.encoder_state.items():
        if isinstance(state, dict) and "categories" in state and factor_column(factor) == variable:
            return list(state["categories"])
    return sorted(set(np.asarray(column).tolist())) if not np.issubdtype(np.asarray(column).dtype, np.number) else []


def _shifted(frame, fit, variable, column, value):
    if value == "x":
        return frame
    if value == "x + 1":
        return _with(frame, fit, variable, np.asarray(column, dtype=np.float64) + 1.0)
    return _with(frame, fit, variable, np.full(len(column), value, dtype=object if isinstance(value, str) else float))


def _plot(table, label: str):
    import matplotlib.pyplot as plt  # noqa: PLC0415 -- only plots pay for matplotlib

    ax = plt.gca()
    y = np.arange(len(table))
    lower, upper = table.iloc[:, 2].to_numpy(), table.iloc[:, 3].to_numpy()
    estimate = table["estimate"].to_numpy()
    ax.errorbar(estimate, y, xerr=[estimate - lower, upper - estimate], fmt="o", capsize=3)
    ax.set_yticks(y, [str(i) for i in table.index])
    ax.set_xlabel(label)
    ax.axvline(0.0, color="grey", lw=0.5)
    table.attrs["ax"] = ax
    return ax
