"""The data of one fit as the compiled programs take it: standardised, padded once, on the device.

Inputs are centred and scaled (``x~ = (x - shift) / scale``) and the first
layer's weights and bias live in those coordinates; :func:`to_original` maps
them back exactly (``w0 = w0~ / scale``, ``b0 = b0~ - shift @ w0``).  Newton's
method is affine invariant in exact arithmetic, but the standardised
coordinates keep the Hessian well conditioned in floating point (Longley's
design has condition number ~1e9 as given), and NUTS samples them as
rstanarm samples centred predictors.

Rows are padded to :func:`padded_size` with weight-0 copies of row 0, so fits
whose row counts share a bucket share every compiled program.

Examples
--------
>>> import numpy as np
>>> from bayes_rglm.families import get_family
>>> problem = make_problem(get_family("poisson"), True, np.arange(10.0)[:, None], np.ones(10), np.zeros(10),
...                        np.ones(10), 1.0)
>>> problem.X.shape, float(problem.weights.sum())
((16, 1), 10.0)
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..families import Family
from ..precision import require
from ..runtime import bucket, compiled_cache


class Problem(NamedTuple):
    """Traced inputs of one fit: standardised design, response, offsets, trials, prior weights of the
    rows (0 for padding rows) and the standardisation."""

    X: jax.Array
    y: jax.Array
    offset: jax.Array
    trials: jax.Array
    weights: jax.Array
    y_scale: jax.Array
    shift: jax.Array
    scale: jax.Array
    base: jax.Array  # sum over the data rows of the family's log_base(y, trials), added to the kernel's sum

    @property
    def rows(self) -> tuple:
        """The per-row arrays ``(X, y, offset, trials, weights)``, as :func:`~.blocks.sum_over_rows` takes them."""
        return self.X, self.y, self.offset, self.trials, self.weights

    def with_rows(self, X, y, offset, trials, weights) -> Problem:
        """This problem restricted to some rows (a block of :func:`~.blocks.sum_over_rows`): the y-only base
        term, a sum over every row, is left out (0)."""
        return self._replace(X=X, y=y, offset=offset, trials=trials, weights=weights, base=jnp.zeros(()))


def padded_size(n: int) -> int:
    """Rows padded to :func:`bayes_rglm.runtime.bucket` (8 sizes per power of two, at most 12.5% padding).

    Fits with row counts in the same bucket share one compiled solver, so
    cross-validation and training-size sweeps do not recompile per fold.
    """
    return bucket(n)


def make_problem(
    family: Family,
    centre: bool,
    X,
    y,
    offset,
    trials,
    y_scale,
    standardise: bool = True,
    weights=None,
    multiple: int = 1,
    n_pad: int | None = None,
    standardisation: tuple | None = None,
) -> Problem:
    """Standardise the columns and pad the rows to :func:`padded_size` with weight-0 copies of row 0.

    ``weights``: the rows' prior weights (default 1), in the problem's ``weights`` with the padding's 0s.

    Padded row counts are shared by all fits in a bucket, so they share one compiled solver.
    ``centre`` false scales the columns without centring them (a model with no intercept to absorb the
    shift); ``standardise=False`` keeps the columns as they are (``shift = 0``, ``scale = 1``).
    ``multiple``: the padded rows are also a multiple of this (the devices the rows are sharded over);
    ``n_pad`` forces the padded size and ``standardisation = (shift, scale)`` the columns' map (several
    processes agree on both, :func:`~.devices.across_processes`).
    """
    n = X.shape[0]
    n_pad = -(-padded_size(n) // multiple) * multiple if n_pad is None else int(n_pad)
    weights = np.concatenate([np.ones(n) if weights is None else np.asarray(weights, float), np.zeros(n_pad - n)])
    if standardise:
        Xs, shift, scale = standardised_rows(X, n_pad, centre, standardisation)
    else:
        Xs, shift, scale = padded_rows(X, n_pad), np.zeros(X.shape[1]), np.ones(X.shape[1])
    y, trials, weights = padded_rows(y, n_pad), padded_rows(trials, n_pad), _device(weights)
    return Problem(
        Xs,
        y,
        padded_rows(offset, n_pad),
        trials,
        weights,
        _device(y_scale),
        _device(shift),
        _device(scale),
        _device(0.0) if family.log_base is None else _log_base_sum(family)(y, trials, weights),
    )


def _device(a) -> jax.Array:
    """``a`` as a float64 device array, without compiling anything (``jnp.asarray`` compiles per shape)."""
    require()
    return jax.device_put(np.asarray(a, dtype=np.float64))


@compiled_cache(maxsize=64)
def _log_base_sum(family):
    """``(y, trials, weights) -> sum_i`` of the rows' weighted ``log_base`` terms, compiled once per family and
    row bucket."""
    return jax.jit(lambda y, trials, weights: jnp.sum(family.weighted_base(y, trials, weights)))


def _aligned_empty(shape) -> np.ndarray:
    """An uninitialised float64 array in a 64-byte aligned buffer of our own.

    The CPU backend uses such a buffer in place (no copy at ``device_put``);
    nothing else holds it, so it is never modified behind JAX's back.
    """
    size = int(np.prod(shape))
    raw = np.empty(size * 8 + 64, dtype=np.uint8)
    start = (-raw.ctypes.data) % 64
    return raw[start : start + size * 8].view(np.float64).reshape(shape)


def padded_rows(a: np.ndarray, n_pad: int) -> jax.Array:
    """``a`` with rows appended (copies of row 0) up to ``n_pad``, as a float64 JAX array (one copy)."""
    require()
    a = np.asarray(a, dtype=np.float64)
    n = a.shape[0]
    out = _aligned_empty((n_pad,) + a.shape[1:])
    out[:n] = a
    out[n:] = a[:1]
    return jax.device_put(out)


def column_map(mean: np.ndarray, sd: np.ndarray, centre: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(shift, scale, constant)`` of the columns from their means and sds: a constant column (sd at most
    1e-12 of its mean's size) keeps shift 0 and scale 1; ``centre`` false leaves every shift at 0."""
    constant = sd <= 1e-12 * np.maximum(np.abs(mean), 1.0)
    return np.where(constant | (not centre), 0.0, mean), np.where(constant, 1.0, sd), constant


def standardised_rows(
    X: np.ndarray, n_pad: int, centre: bool, given: tuple | None = None
) -> tuple[jax.Array, np.ndarray, np.ndarray]:
    """``(X - shift) / scale`` padded to ``n_pad`` rows (copies of row 0), with ``shift`` and ``scale``.

    ``shift`` is the column mean (0 when ``centre`` is false) and ``scale`` the
    column sd about the mean; a constant column (sd at most 1e-12 of its
    mean's size) is left as it is.  Written straight into the padded buffer
    (two passes over ``X``), which the device then uses in place.  ``given = (shift, scale)`` uses those
    instead (computed over every process's rows).
    """
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    out = _aligned_empty((n_pad, X.shape[1]))
    rows = out[:n]
    if given is None:
        mean = X.mean(axis=0)
        np.subtract(X, mean, out=rows)
        sd = np.sqrt(np.einsum("ij,ij->j", rows, rows) / n)
        shift, scale, constant = column_map(mean, sd, centre)
    else:
        shift, scale = (np.asarray(a, dtype=np.float64) for a in given)
        constant = np.zeros(X.shape[1], dtype=bool)
        np.subtract(X, shift, out=rows)
        centre = True  # rows hold X - shift (shift is 0 where nothing is centred)
    if centre:
        # Constant columns go back to their values (centring would make them 0).
        if constant.any():
            rows[:, constant] = X[:, constant]
        rows *= 1.0 / scale
    else:
        np.multiply(X, 1.0 / scale, out=rows)
    out[n:] = rows[:1]
    return jax.device_put(out), shift, scale


def to_original(params: dict, shift, scale) -> dict:
    """Map first-layer parameters from standardised to original input coordinates."""
    out = dict(params)
    w0 = params["w0"] / scale[:, None]
    out["w0"] = w0
    if "b0" in params:
        out["b0"] = params["b0"] - shift @ w0
    return out


def to_standardised(params: dict, shift, scale) -> dict:
    """Inverse of :func:`to_original`."""
    out = dict(params)
    if "b0" in params:
        out["b0"] = params["b0"] + shift @ params["w0"]
    out["w0"] = params["w0"] * scale[:, None]
    return out
