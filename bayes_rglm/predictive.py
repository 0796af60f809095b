"""Vectorised, memory-bounded computations over posterior draws: means, probabilities, log-likelihoods,
predictive draws and intervals.

Rows are processed in fixed-size chunks (padded, so one compiled program
serves every chunk) sized so that draws x rows stays near
:data:`ELEMENTS_PER_CHUNK`: a million rows times a thousand draws never
materialises as one array.

Examples
--------
>>> import numpy as np
>>> rows_per_chunk(n_draws=1000, n_rows=10**6)
4096
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .network import Network
from .precision import require
from .runtime import compiled_cache, guard_mappings

ELEMENTS_PER_CHUNK = 1 << 22  # about 32 MB of float64 per (draws x rows) block


def rows_per_chunk(n_draws: int, n_rows: int) -> int:
    """A power of two near ``ELEMENTS_PER_CHUNK / n_draws``, at most the next power of two above ``n_rows``."""
    target = max(1, ELEMENTS_PER_CHUNK // max(n_draws, 1))
    size = 1 << int(np.floor(np.log2(target)))
    return int(min(size, 1 << int(np.ceil(np.log2(max(n_rows, 1))))))


@compiled_cache(maxsize=128)
def _compiled(model: Network, quantity: str, linearised: bool = False):
    """``(draws, X, y, offset, trials, weights, key, anchor) -> (n_draws, rows[, K])`` for one quantity, jitted.

    ``weights``: prior weights (:meth:`~bayes_rglm.families.Family.weighted_log_likelihood`); they
    weight the log-likelihood and set each row's dispersion for predictive draws.  ``linearised``: every
    draw predicts through the network linearised at ``anchor`` (the linearised Laplace predictive,
    :meth:`~bayes_rglm.network.Network.linearised_predictor`).
    """
    family, link = model.family, model.link

    def one(params, X, y, offset, trials, weights, key, anchor):
        if linearised:
            eta = model.linearised_predictor(params, anchor, X, offset)
        else:
            eta = model.linear_predictor(params, X, offset)
        nuisance = model.nuisance(params)
        if quantity == "mean":
            return family.mean(eta, link, nuisance, trials)
        if quantity == "proba":
            return family.proba(eta, link, nuisance)
        if quantity == "dmu_deta":  # the output link's d mu / d eta (R's working residuals and weights)
            return jax.vmap(jax.grad(link.inverse))(eta[:, 0])
        if quantity == "eta":
            return eta[:, 0]
        if quantity == "log_likelihood":
            return family.weighted_log_likelihood(eta, y, link, nuisance, trials, weights)
        return family.sample(key, eta, link, family.row_nuisance(nuisance, weights), trials)  # "sample"

    def over_draws(draws, X, y, offset, trials, weights, key, anchor):
        n = next(iter(draws.values())).shape[0]
        keys = jax.random.split(key, n)
        axes = (0, None, None, None, None, None, 0, None)
        return jax.vmap(one, in_axes=axes)(draws, X, y, offset, trials, weights, keys, anchor)

    return jax.jit(over_draws)


def evaluate(
    model: Network,
    quantity: str,
    draws: dict,
    X,
    y=None,
    offset=None,
    trials=None,
    key=None,
    reduce=None,
    weights=None,
    anchor=None,
):
    """Compute ``quantity`` for every draw and row, chunked over rows (``weights``: prior weights, default 1).

    ``reduce(block)`` maps each ``(n_draws, rows, ...)`` numpy block to what is
    kept (e.g. the mean over draws); the kept pieces are concatenated along rows.
    ``anchor`` (parameters): predict through the network linearised there (:attr:`Fit.anchor`).
    """
    require()
    guard_mappings()
    n = X.shape[0]
    n_draws = next(iter(draws.values())).shape[0]
    # Draws padded (copies of the first, dropped again below) to the next power of two, so a refit with
    # another number of draws shares the compiled program.
    n_pad = 1 << int(np.ceil(np.log2(max(n_draws, 1))))
    draws = {
        k: jax.device_put(np.concatenate([np.asarray(v), np.repeat(np.asarray(v)[:1], n_pad - n_draws, axis=0)]))
        for k, v in draws.items()
    }
    size = rows_per_chunk(n_pad, n)
    y = np.zeros(n) if y is None else y
    weights = np.ones(n) if weights is None else weights
    key = jax.random.PRNGKey(0) if key is None else key
    fn = _compiled(model, quantity, anchor is not None)
    anchor = {} if anchor is None else {k: jnp.asarray(v) for k, v in anchor.items()}
    pieces = []
    for start in range(0, n, size):
        stop = min(start + size, n)
        pad = size - (stop - start)

        def chunk(a, start=start, stop=stop, pad=pad):
            part = a[start:stop]
            return jnp.asarray(np.concatenate([part, np.repeat(part[-1:], pad, axis=0)]) if pad else part)

        rows = (chunk(X), chunk(y), chunk(offset), chunk(trials), chunk(weights))
        block = fn(draws, *rows, jax.random.fold_in(key, start), anchor)
        # Sliced and reduced by numpy: eager device operations compile a program per shape.
        block = np.asarray(block)[:n_draws, : stop - start]
        pieces.append(block if reduce is None else np.asarray(reduce(block)))
    axis = 0 if reduce is not None else 1
    return np.concatenate(pieces, axis=axis)


def predictive_interval(
    model: Network, draws: dict, X, offset, trials, prob: float, key, min_draws: int = 2000, anchor=None
):
    """Central ``prob`` interval of the posterior predictive of ``y`` at each row, by simulation.

    Each posterior draw contributes ``ceil(min_draws / n_draws)`` replicates
    (a point estimate gets ``min_draws``), so the quantiles rest on at least
    ``min_draws`` predictive draws per row.
    """
    n_draws = next(iter(draws.values())).shape[0]
    replicates = int(np.ceil(min_draws / n_draws))
    if replicates > 1:
        draws = {k: jnp.repeat(v, replicates, axis=0) for k, v in draws.items()}
    alpha = (1.0 - prob) / 2.0

    def reduce(block):
        return np.quantile(block, [alpha, 1.0 - alpha], axis=0).T

    bounds = evaluate(model, "sample", draws, X, None, offset, trials, key=key, reduce=reduce, anchor=anchor)
    return bounds[:, 0], bounds[:, 1]
