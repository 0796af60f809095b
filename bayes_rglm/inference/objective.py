"""The negative log-likelihood (MLE) or negative log posterior (MAP) as a function of a flat vector.

Inputs are centred and scaled before optimisation (``x_std = (x - shift) /
scale``), and the first layer's weights and bias are fitted in those
coordinates; :func:`to_original` maps them back exactly
(``w0 = w0' / scale``, ``b0 = b0' - shift @ w0``).  Newton's method is
affine invariant in exact arithmetic, but the standardised coordinates keep
the Hessian well conditioned in floating point (Longley's design has
condition number ~1e9 as given).  Priors are always evaluated on the
original coordinates, so MAP means what :class:`~bayes_rglm.GaussianPrior` says.

Nuisance parameters are optimised on the unconstrained scale
(``log sigma``, ordered transform of the cutpoints) and, for standard
errors, differentiated on their natural scale.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.distributions import biject_to

from ..families import DataSummary
from ..model import RGLM
from ..runtime import bucket, compiled_cache
from .blocks import sum_over_rows
from .curvature import blocked_hessian, hessian_chunk


class Problem(NamedTuple):
    """Traced inputs of one fit: standardised design, response, offsets, trials, row weights
    (0 for padding rows) and the standardisation."""

    X: jax.Array
    y: jax.Array
    offset: jax.Array
    trials: jax.Array
    weights: jax.Array
    y_scale: jax.Array
    shift: jax.Array
    scale: jax.Array
    base: jax.Array  # sum over the data rows of the family's log_base(y, trials), added to the kernel's sum


def padded_size(n: int) -> int:
    """Rows padded to :func:`bayes_rglm.runtime.bucket` (8 sizes per power of two, at most 12.5% padding).

    Fits with row counts in the same bucket share one compiled solver, so
    cross-validation and training-size sweeps do not recompile per fold.
    """
    return bucket(n)


def make_problem(model: RGLM, X, y, offset, trials, y_scale, standardise: bool = True) -> Problem:
    """Standardise the columns and pad the rows to :func:`padded_size` with weight-0 copies of row 0.

    Padded row counts are shared by all fits in a bucket, so they share one compiled solver.
    ``standardise=False`` keeps the columns as they are (``shift = 0``, ``scale = 1``).
    """
    n = X.shape[0]
    n_pad = padded_size(n)
    weights = np.concatenate([np.ones(n), np.zeros(n_pad - n)])
    centre = not (model.depth == 0 and not model.family.has_output_bias)
    if standardise:
        Xs, shift, scale = standardised_rows(X, n_pad, centre)
    else:
        Xs, shift, scale = padded_rows(X, n_pad), np.zeros(X.shape[1]), np.ones(X.shape[1])
    y, trials, weights = padded_rows(y, n_pad), padded_rows(trials, n_pad), jnp.asarray(weights)
    return Problem(
        Xs,
        y,
        padded_rows(offset, n_pad),
        trials,
        weights,
        jnp.asarray(y_scale),
        jnp.asarray(shift),
        jnp.asarray(scale),
        jnp.zeros(()) if model.family.log_base is None else _log_base_sum(model.family)(y, trials, weights),
    )


@compiled_cache(maxsize=64)
def _log_base_sum(family):
    """``(y, trials, weights) -> sum_i w_i log_base(y_i, trials_i)``, compiled once per family and row bucket."""
    return jax.jit(lambda y, trials, weights: jnp.sum(weights * family.log_base_measure(y, trials)))


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
    a = np.asarray(a, dtype=np.float64)
    n = a.shape[0]
    out = _aligned_empty((n_pad,) + a.shape[1:])
    out[:n] = a
    out[n:] = a[:1]
    return jax.device_put(out)


def standardised_rows(X: np.ndarray, n_pad: int, centre: bool) -> tuple[jax.Array, np.ndarray, np.ndarray]:
    """``(X - shift) / scale`` padded to ``n_pad`` rows (copies of row 0), with ``shift`` and ``scale``.

    ``shift`` is the column mean (0 when ``centre`` is false) and ``scale`` the
    column sd about the mean; a constant column (sd at most 1e-12 of its
    mean's size) is left as it is.  Written straight into the padded buffer
    (two passes over ``X``), which the device then uses in place.
    """
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    out = _aligned_empty((n_pad, X.shape[1]))
    mean = X.mean(axis=0)
    rows = out[:n]
    np.subtract(X, mean, out=rows)
    sd = np.sqrt(np.einsum("ij,ij->j", rows, rows) / n)
    constant = sd <= 1e-12 * np.maximum(np.abs(mean), 1.0)
    scale = np.where(constant, 1.0, sd)
    shift = np.where(constant | (not centre), 0.0, mean)
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


def constrain(model: RGLM, params: dict) -> dict:
    out = dict(params)
    for nuisance in model.family.nuisance:
        out[nuisance.name] = biject_to(nuisance.constraint)(params[nuisance.name])
    return out


def unconstrain(model: RGLM, params: dict) -> dict:
    out = dict(params)
    for nuisance in model.family.nuisance:
        out[nuisance.name] = biject_to(nuisance.constraint).inv(params[nuisance.name])
    return out


def flat_layout(model: RGLM, n_features: int, n_classes: int):
    """``unravel`` for the flat parameter vector (ordered as ``ravel_pytree`` orders the dict)."""
    shapes = model.parameter_shapes(n_features, n_classes)
    template = {name: np.zeros(shape) for name, shape in shapes.items()}
    flat, unravel = ravel_pytree(template)
    return flat.size, unravel


def negative_log_prior(model: RGLM, n_classes: int, unconstrained: bool):
    """``theta -> -log p(theta)`` on the original coordinates (no Jacobian: the mode of the stated prior)."""

    def objective(theta, problem: Problem):
        _, unravel = flat_layout(model, problem.X.shape[1], n_classes)
        params = unravel(theta)
        if unconstrained:
            params = constrain(model, params)
        summary = DataSummary(n_classes, 0.0, problem.y_scale)
        original = to_original(params, problem.shift, problem.scale)
        return -model.log_prior(original, summary, problem.X.shape[1])

    return objective


def negative_log_density(model: RGLM, n_classes: int, use_prior: bool, unconstrained: bool):
    """``theta -> -(sum log p(y | theta) + [log p(theta)])`` with ``theta`` flat, standardised coordinates."""
    prior = negative_log_prior(model, n_classes, unconstrained)

    def objective(theta, problem: Problem):
        _, unravel = flat_layout(model, problem.X.shape[1], n_classes)
        params = unravel(theta)
        if unconstrained:
            params = constrain(model, params)
        # The family's kernel per row; its y-only base term is summed once, in make_problem.
        eta = model.linear_predictor(params, problem.X, problem.offset)
        pointwise = model.family.log_kernel(eta, problem.y, model.link, model.nuisance(params), problem.trials)
        total = -(jnp.sum(problem.weights * pointwise) + problem.base)
        return total + prior(theta, problem) if use_prior else total

    return objective


def blocked_density(model: RGLM, n_classes: int, use_prior: bool, unconstrained: bool):
    """``(value, value_and_grad)`` of :func:`negative_log_density`, each summed over blocks of rows.

    Each block's likelihood (and its gradient, by autodiff within the block) is
    computed and added before the next block is read (:func:`sum_over_rows`),
    so a network's activations never exist for more than one block of about
    2 MiB of inputs: memory does not grow with the rows, and each block stays
    in cache.  The prior is added once.
    """
    likelihood = negative_log_density(model, n_classes, False, unconstrained)
    prior = negative_log_prior(model, n_classes, unconstrained)

    def rows_of(problem, X, y, offset, trials, weights):
        return problem._replace(X=X, y=y, offset=offset, trials=trials, weights=weights, base=jnp.zeros(()))

    def arrays(problem):
        return problem.X, problem.y, problem.offset, problem.trials, problem.weights

    def value(theta, problem: Problem):
        total = sum_over_rows(lambda *a: likelihood(theta, rows_of(problem, *a)), *arrays(problem))
        total = total - problem.base
        return total + prior(theta, problem) if use_prior else total

    def value_and_grad(theta, problem: Problem):
        block = jax.value_and_grad(lambda t, *a: likelihood(t, rows_of(problem, *a)))
        total, grad = sum_over_rows(lambda *a: block(theta, *a), *arrays(problem))
        total = total - problem.base
        if use_prior:
            prior_value, prior_grad = jax.value_and_grad(prior)(theta, problem)
            total, grad = total + prior_value, grad + prior_grad
        return total, grad

    return value, value_and_grad


def density_hessian(model: RGLM, n_classes: int, use_prior: bool, unconstrained: bool):
    """``(theta, problem) -> H``: the exact Hessian of :func:`negative_log_density`, summed over row blocks.

    Memory is one block's autodiff Hessian plus ``O(P^2)``, whatever the number
    of rows (:mod:`~bayes_rglm.inference.curvature`).
    """
    likelihood = negative_log_density(model, n_classes, False, unconstrained)
    prior = negative_log_prior(model, n_classes, unconstrained)

    def hessian(theta, problem: Problem):
        def block(t, X, y, offset, trials, weights):
            rows = problem._replace(X=X, y=y, offset=offset, trials=trials, weights=weights, base=jnp.zeros(()))
            return likelihood(t, rows)

        n, p = problem.X.shape
        outputs = model.parameter_shapes(p, n_classes)[f"w{model.depth}"][-1]
        units = p + sum(model.hidden) + outputs  # values per row that each of the P tangents carries
        chunk = hessian_chunk(n, theta.size, units)
        arrays = (problem.X, problem.y, problem.offset, problem.trials, problem.weights)
        total = blocked_hessian(block, theta, arrays, chunk)
        return total + jax.hessian(prior)(theta, problem) if use_prior else total

    return hessian


def depth0_hessian(model: RGLM, n_classes: int, use_prior: bool, unconstrained: bool):
    """Exact Hessian of the depth-0 objective (see :func:`depth0_derivatives`)."""
    derivatives = depth0_derivatives(model, n_classes, use_prior, unconstrained)
    return lambda theta, problem: derivatives(theta, problem)[2]


def depth0_derivatives(model: RGLM, n_classes: int, use_prior: bool, unconstrained: bool, hessian: bool = True):
    """Value, gradient and exact Hessian of the depth-0 objective from per-row derivatives in ``(eta_i, nuisance)``.

    With ``eta = X~ B`` linear in the coefficients ``B``, the gradient is
    ``X~' dl/deta`` and the coefficient block of the Hessian is
    ``X~' diag(d2l/deta2) X~`` (one weighted cross-product, as in IRLS); the
    cross terms with the nuisance parameters are ``X~' d2l/(deta dnu)``.  This
    costs O(n p^2) instead of the O(n p^2 (p + m)) of a dense autodiff Hessian.

    Everything is summed block by block over the rows (:func:`sum_over_rows`):
    each block of ``X`` is read from memory once for ``eta``, the gradient and
    the cross-products, and stays in cache meanwhile.  With ``hessian=False``
    the function returns ``(value, gradient)`` only (one read of ``X``, no
    cross-products).  ``derivatives(theta, problem, fast)``: with ``fast`` true
    (a traced boolean) the coefficient cross-product
    ``X' diag(h) X`` is accumulated from float32 products of each block (about
    1e-7 relative error, 1.6x faster on CPU); value, gradient and every other
    block stay float64.  :func:`~bayes_rglm.inference.optimize.newton_fused`
    uses it only for Newton directions far from the optimum.
    """
    family, link = model.family, model.link
    names = [n.name for n in family.nuisance]
    prior = negative_log_prior(model, n_classes, unconstrained)
    bias = family.has_output_bias

    def derivatives(theta, problem: Problem, fast=False):
        n, p = problem.X.shape
        _, unravel = flat_layout(model, p, n_classes)
        params = unravel(theta)
        nuisance = {k: params[k] for k in names}
        v, unravel_v = ravel_pytree(nuisance)
        columns = params["w0"].shape[1]

        def row_nll(eta_i, v_i, y_i, trials_i):
            nu = unravel_v(v_i)
            nu = constrain(model, {**params, **nu}) if unconstrained else {**params, **nu}
            nu = {k: nu[k] for k in names}
            return -family.log_kernel(eta_i[None, :], y_i[None], link, nu, trials_i[None])[0]

        def row_derivatives(eta_i, v_i, y_i, trials_i):
            value, grads = jax.value_and_grad(row_nll, argnums=(0, 1))(eta_i, v_i, y_i, trials_i)
            if not hessian:
                return value, grads
            return value, grads, jax.hessian(row_nll, argnums=(0, 1))(eta_i, v_i, y_i, trials_i)

        def scalar_nll(eta_i, y_i, trials_i):
            return -family.log_kernel(eta_i[None, None], y_i[None], link, {}, trials_i[None])[0]

        d1 = jax.grad(scalar_nll)
        d2 = jax.grad(d1)

        def block_sums(X, y, offset, trials, w):
            eta = X @ params["w0"] + offset[:, None]
            if bias:
                eta = eta + params["b0"]
            if columns == 1 and not names:  # elementwise first and second derivatives in eta
                e = eta[:, 0]
                rows = -family.log_kernel(eta, y, link, {}, trials)
                g_e = jax.vmap(d1)(e, y, trials)[:, None]
                h_ee = jax.vmap(d2)(e, y, trials)[:, None, None] if hessian else None
            else:
                out = jax.vmap(row_derivatives, in_axes=(0, None, 0, 0))(eta, v, y, trials)
                rows, (g_e, g_v) = out[:2]
                if hessian:
                    (h_ee, h_ev), (_, h_vv) = out[2]
            g_e = w[:, None] * g_e
            sums = {
                "value": jnp.sum(w * rows),
                "g_w": g_e.T @ X,  # (columns, p): X' G computed as G' X (a faster product on CPU)
                "g_b": jnp.sum(g_e, axis=0),
            }
            if names:
                sums["g_v"] = jnp.sum(w[:, None] * g_v, axis=0)
            if hessian:
                h_ee = jax.lax.optimization_barrier(h_ee * w[:, None, None])

                def approximate():
                    return _block_cross_product(X.astype(jnp.float32), h_ee.astype(jnp.float32)).astype(X.dtype)

                def exact():
                    return _block_cross_product(X, h_ee)

                if isinstance(fast, bool):  # known when traced: compile one branch only
                    sums["xx"] = approximate() if fast else exact()
                else:
                    sums["xx"] = jax.lax.cond(fast, approximate, exact)
                sums["x1"] = jnp.einsum("ij,iab->jab", X, h_ee)  # sum_i x_ij h_iab
                sums["h_sum"] = jnp.sum(h_ee, axis=0)
                if names:
                    h_ev = h_ev * w[:, None, None]
                    sums["x_ev"] = jnp.einsum("ij,iam->jam", X, h_ev)
                    sums["h_ev"] = jnp.sum(h_ev, axis=0)
                    sums["h_vv"] = jnp.sum(h_vv * w[:, None, None], axis=0)
            return sums

        sums = sum_over_rows(block_sums, problem.X, problem.y, problem.offset, problem.trials, problem.weights)
        value = sums["value"] - problem.base  # the kernel's sum, plus the y-only base term
        grad_parts = [sums["g_w"].T.ravel()]
        if bias:
            grad_parts.append(sums["g_b"])
        if names:
            grad_parts.append(sums["g_v"])
        order = _permutation(params, names, p, columns, bias)
        grad = jnp.concatenate(grad_parts)[order]
        if use_prior:
            value = value + prior(theta, problem)
            grad = grad + jax.grad(prior)(theta, problem)
        if not hessian:
            return value, grad
        d_coef = (p + bias) * columns
        # The design [X, 1] is never formed: its cross-products are assembled from X's (no n x p copy).
        block_cc = _assemble_cross_products(sums["xx"], sums["x1"], sums["h_sum"], bias).reshape(d_coef, d_coef)
        if names:
            block_cv = sums["x_ev"]
            if bias:
                block_cv = jnp.concatenate([block_cv, sums["h_ev"][None]], axis=0)
            block_cv = block_cv.reshape(d_coef, v.size)
            structured = jnp.block([[block_cc, block_cv], [block_cv.T, sums["h_vv"]]])
        else:
            structured = block_cc
        hess = structured[order][:, order]
        if use_prior:
            hess = hess + jax.hessian(prior)(theta, problem)
        return value, grad, hess

    return derivatives


def _block_cross_product(X, h):
    """``sum_i x_ij h_iab x_ik`` over the rows of one block, shape ``(j, a, k, b)``."""
    p, k = X.shape[1], h.shape[1]
    if k == 1:
        return ((X * h[:, 0, 0][:, None]).T @ X).reshape(p, 1, p, 1)
    return jnp.einsum("ij,iab,ik->jakb", X, h, X)


def _assemble_cross_products(xx, x1, h_sum, bias: bool):
    """Cross-products of the design ``d = [X, 1]`` (or ``X``) from those of ``X``, shape ``(r, a, s, b)``."""
    if not bias:
        return xx
    top = jnp.concatenate([xx, x1[:, :, None, :]], axis=2)  # (j, a, s, b), s = bias in the last slot
    bottom = jnp.concatenate([jnp.einsum("kab->akb", x1)[None], h_sum[None, :, None, :]], axis=2)
    return jnp.concatenate([top, bottom], axis=0)


def _permutation(params, names, p, columns, bias):
    """Index of each flat (ravel_pytree-ordered) parameter in the structured (coefficients, nuisance) layout."""
    index = {"w0": np.arange(p * columns).reshape(p, columns)}
    offset = p * columns
    if bias:
        index["b0"] = offset + np.arange(columns)
        offset += columns
    for name in names:
        size = int(np.prod(params[name].shape))
        index[name] = (offset + np.arange(size)).reshape(params[name].shape)
        offset += size
    # ravel_pytree orders a dict by sorted keys.
    return np.concatenate([np.ravel(index[k]) for k in sorted(index)])
