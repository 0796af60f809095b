"""The optimisers' objectives: the negative log density of a :class:`~.target.Layout` on its flat vector.

MLE minimises ``-log p(y | theta)`` and MAP ``-log p(y | theta) - log p(theta)``, both
:meth:`Layout.log_density <bayes_rglm.inference.target.Layout.log_density>` without the Jacobian term
(the mode of the density as stated).  Parameters are the layout's flat vector in the standardised
input coordinates; nuisance parameters are optimised on the unconstrained scale (``log sigma``,
ordered transform of the cutpoints) and, for standard errors, differentiated on their natural
scale (``unconstrained=False``).

Three evaluations of the same density, for three sizes of problem:

- :func:`negative_log_density`: plain autodiff over all rows (small problems, Newton's value);
- :func:`blocked_density`, :func:`density_derivatives`: value, gradient and exact Hessian summed over
  blocks of rows, so memory does not grow with the rows (networks);
- :func:`depth0_derivatives`: the exact derivatives of a GLM from per-row derivatives in the linear
  predictor, IRLS-like (depth 0).  ``tests/test_curvature.py`` keeps it equal to autodiff.

Examples
--------
>>> import numpy as np, bayes_rglm as br
>>> from bayes_rglm.inference.target import build
>>> model = br.RGLM("poisson"); X = np.arange(6.0)[:, None]; y = np.array([0, 1, 1, 2, 3, 5.0])
>>> target = build(model, model.prepare(X, y), scales=False)
>>> f = negative_log_density(target.layout, use_prior=False, unconstrained=True)
>>> round(float(f(np.zeros(2), target.problem)), 4)  # -sum log Poisson(y | 1)
13.2724
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .blocks import sum_over_rows
from .curvature import blocked_derivatives, hessian_chunk
from .problem import Problem
from .target import Layout


def _params(layout: Layout, theta, unconstrained: bool) -> dict:
    params = layout.unravel(theta)
    return layout.constrain(params)[0] if unconstrained else params


def negative_log_prior(layout: Layout, unconstrained: bool):
    """``(theta, problem) -> -log p(theta)`` (no Jacobian: the mode of the stated prior)."""
    return lambda theta, problem: -layout.log_prior(_params(layout, theta, unconstrained), problem)


def negative_log_density(layout: Layout, use_prior: bool, unconstrained: bool):
    """``(theta, problem) -> -(sum_i w_i log p(y_i | theta) + [log p(theta)])``, ``theta`` the flat vector."""

    def objective(theta, problem: Problem):
        params = _params(layout, theta, unconstrained)
        return -layout.log_density(params, problem, prior=use_prior, jacobian=False, constrained=True)

    return objective


def blocked_density(layout: Layout, use_prior: bool, unconstrained: bool):
    """``(value, value_and_grad)`` of :func:`negative_log_density`, each summed over blocks of rows.

    Each block's likelihood (and its gradient, by autodiff within the block) is
    computed and added before the next block is read (:func:`sum_over_rows`),
    so a network's activations never exist for more than one block of about
    2 MiB of inputs: memory does not grow with the rows, and each block stays
    in cache.  The prior is added once.
    """
    likelihood = negative_log_density(layout, False, unconstrained)
    prior = negative_log_prior(layout, unconstrained)

    def value(theta, problem: Problem):
        total = sum_over_rows(lambda *a: likelihood(theta, problem.with_rows(*a)), *problem.rows)
        total = total - problem.base
        return total + prior(theta, problem) if use_prior else total

    def value_and_grad(theta, problem: Problem):
        block = jax.value_and_grad(lambda t, *a: likelihood(t, problem.with_rows(*a)))
        total, grad = sum_over_rows(lambda *a: block(theta, *a), *problem.rows)
        total = total - problem.base
        if use_prior:
            prior_value, prior_grad = jax.value_and_grad(prior)(theta, problem)
            total, grad = total + prior_value, grad + prior_grad
        return total, grad

    return value, value_and_grad


def density_derivatives(layout: Layout, use_prior: bool, unconstrained: bool, ggn: bool = False):
    """``(theta, problem) -> (value, gradient, H)`` of :func:`negative_log_density`, summed over row blocks.

    One pass over the rows gives all three (:func:`~.curvature.blocked_derivatives`).
    Memory is one block's autodiff Hessian plus ``O(P^2)``, whatever the number
    of rows (:mod:`~bayes_rglm.inference.curvature`).

    ``ggn``: ``H`` is the generalised Gauss-Newton matrix instead, the Hessian of the
    likelihood of the network linearised at ``theta``
    (:meth:`~bayes_rglm.network.Network.linearised_predictor`),

        G = sum_i J_i' (d^2 l_i / d eta_i^2) J_i + d^2 r,

    the exact Hessian without the terms in the network's second derivatives (its value and gradient are
    the exact ones).  The linearisation point enters through ``stop_gradient``, so one autodiff pass
    builds it; at depth 0 ``G`` equals the Hessian.
    """
    likelihood = negative_log_density(layout, False, unconstrained)
    prior = negative_log_prior(layout, unconstrained)
    model = layout.model

    def derivatives(theta, problem: Problem):
        def block(t, X, y, offset, trials, weights):
            rows = problem.with_rows(X, y, offset, trials, weights)
            if not ggn:
                return likelihood(t, rows)
            params = _params(layout, t, unconstrained)
            anchor = jax.lax.stop_gradient(params)
            return -layout.log_density(params, rows, prior=False, jacobian=False, constrained=True, anchor=anchor)

        n, p = problem.X.shape
        outputs = layout.shapes[f"w{model.depth}"][-1]
        units = p + sum(model.hidden) + outputs  # values per row that each of the P tangents carries
        chunk = hessian_chunk(n, theta.size, units)
        arrays = problem.rows
        value, grad, hess = blocked_derivatives(block, theta, arrays, chunk)
        value = value - problem.base
        if use_prior:
            value, grad = value + prior(theta, problem), grad + jax.grad(prior)(theta, problem)
            hess = hess + jax.hessian(prior)(theta, problem)
        return value, grad, hess

    return derivatives


def density_hessian(layout: Layout, use_prior: bool, unconstrained: bool):
    """``(theta, problem) -> H``: the exact Hessian of :func:`negative_log_density` (:func:`density_derivatives`)."""
    derivatives = density_derivatives(layout, use_prior, unconstrained)
    return lambda theta, problem: derivatives(theta, problem)[2]


def depth0_hessian(layout: Layout, use_prior: bool, unconstrained: bool):
    """Exact Hessian of the depth-0 objective (see :func:`depth0_derivatives`)."""
    derivatives = depth0_derivatives(layout, use_prior, unconstrained)
    return lambda theta, problem: derivatives(theta, problem)[2]


def depth0_derivatives(layout: Layout, use_prior: bool, unconstrained: bool, hessian: bool = True):
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
    model = layout.model
    family, link = model.family, model.link
    names = [n.name for n in family.nuisance]
    prior = negative_log_prior(layout, unconstrained)
    bias = family.has_output_bias

    def derivatives(theta, problem: Problem, fast=False):
        n, p = problem.X.shape
        params = layout.unravel(theta)
        nuisance = {k: params[k] for k in names}
        v, unravel_v = ravel_pytree(nuisance)
        columns = params["w0"].shape[1]

        # Each row's term is weighted by its prior weight w_i inside (Family.weighted_kernel): w_i times
        # the term, or the term at dispersion phi / w_i (gaussian, gamma); 0 for padding rows.
        def row_nll(eta_i, v_i, y_i, trials_i, w_i):
            nu = unravel_v(v_i)
            nu = layout.constrain({**params, **nu})[0] if unconstrained else {**params, **nu}
            nu = {k: nu[k] for k in names}
            return -family.weighted_kernel(eta_i[None, :], y_i[None], link, nu, trials_i[None], w_i[None])[0]

        def row_derivatives(eta_i, v_i, y_i, trials_i, w_i):
            value, grads = jax.value_and_grad(row_nll, argnums=(0, 1))(eta_i, v_i, y_i, trials_i, w_i)
            if not hessian:
                return value, grads
            return value, grads, jax.hessian(row_nll, argnums=(0, 1))(eta_i, v_i, y_i, trials_i, w_i)

        def scalar_nll(eta_i, y_i, trials_i, w_i):
            return -family.weighted_kernel(eta_i[None, None], y_i[None], link, {}, trials_i[None], w_i[None])[0]

        d1 = jax.grad(scalar_nll)
        d2 = jax.grad(d1)

        def block_sums(X, y, offset, trials, w):
            eta = X @ params["w0"] + offset[:, None]
            if bias:
                eta = eta + params["b0"]
            if columns == 1 and not names:  # elementwise first and second derivatives in eta
                e = eta[:, 0]
                rows = -family.weighted_kernel(eta, y, link, {}, trials, w)
                g_e = jax.vmap(d1)(e, y, trials, w)[:, None]
                h_ee = jax.vmap(d2)(e, y, trials, w)[:, None, None] if hessian else None
            else:
                out = jax.vmap(row_derivatives, in_axes=(0, None, 0, 0, 0))(eta, v, y, trials, w)
                rows, (g_e, g_v) = out[:2]
                if hessian:
                    (h_ee, h_ev), (_, h_vv) = out[2]
            sums = {"value": jnp.sum(rows), "g_b": jnp.sum(g_e, axis=0)}
            if names:
                sums["g_v"] = jnp.sum(g_v, axis=0)
            if hessian:
                sums["h_sum"] = jnp.sum(h_ee, axis=0)
                if names:
                    sums["h_ev"] = jnp.sum(h_ev, axis=0)
                    sums["h_vv"] = jnp.sum(h_vv, axis=0)
            if columns == 1:
                # Every product with X in one matrix product X' [X h, g, h, h_ev] of the materialised right
                # factor: one read of the block, and a plain GEMM (XLA's fused elementwise-then-dot loop is
                # about half as fast on CPU).
                sums.update(
                    _products_one_column(X, g_e, h_ee if hessian else None, h_ev if hessian and names else None, fast)
                )
                return sums
            sums["g_w"] = g_e.T @ X  # (columns, p): X' G computed as G' X (a faster product on CPU)
            if hessian:
                h_ee = jax.lax.optimization_barrier(h_ee)

                def approximate():
                    return _block_cross_product(X.astype(jnp.float32), h_ee.astype(jnp.float32)).astype(X.dtype)

                def exact():
                    return _block_cross_product(X, h_ee)

                if isinstance(fast, bool):  # known when traced: compile one branch only
                    sums["xx"] = approximate() if fast else exact()
                else:
                    sums["xx"] = jax.lax.cond(fast, approximate, exact)
                sums["x1"] = jnp.einsum("ij,iab->jab", X, h_ee)  # sum_i x_ij h_iab
                if names:
                    sums["x_ev"] = jnp.einsum("ij,iam->jam", X, h_ev)
            return sums

        sums = sum_over_rows(block_sums, *problem.rows)
        value = sums["value"] - problem.base  # the kernel's sum, plus the y-only base term
        grad_parts = [sums["g_w"].T.ravel()]
        if bias:
            grad_parts.append(sums["g_b"])
        if names:
            grad_parts.append(sums["g_v"])
        order = _permutation(layout, names, p, columns, bias)
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


def _gram(a, b):
    """``a' b`` contracting the rows, with neither operand transposed in memory."""
    return jax.lax.dot_general(a, b, (((0,), (0,)), ((), ())))


def _products_one_column(X, g_e, h_ee, h_ev, fast):
    """The row sums of one block that involve ``X``, for one output column: ``g_w``, and ``xx``, ``x1``,
    ``x_ev`` where the second derivatives ``h_ee`` (and ``h_ev``) are given.

    ``X' [X h, g, h, h_ev]`` is one product.  With ``fast`` (a traced or static boolean) ``X' diag(h) X``
    comes from a float32 product instead and the rest from a float64 product of ``X`` with ``[g, h, h_ev]``.
    """
    p, hessian = X.shape[1], h_ee is not None
    small = [g_e]
    if hessian:
        small.append(h_ee[:, 0, :])
        if h_ev is not None:
            small.append(h_ev[:, 0, :])
    small = jnp.concatenate(small, axis=1) if len(small) > 1 else small[0]

    def unpack(xx, rest):
        out = {"g_w": rest[:, :1].T}
        if hessian:
            out["xx"] = xx.reshape(p, 1, p, 1)
            out["x1"] = rest[:, 1:2].reshape(p, 1, 1)
            if h_ev is not None:
                out["x_ev"] = rest[:, 2:].reshape(p, 1, -1)
        return out

    if not hessian:
        return unpack(None, _gram(X, small))

    def exact():
        both = _gram(X, jnp.concatenate([X * h_ee[:, 0, :], small], axis=1))
        return both[:, :p], both[:, p:]

    def approximate():
        x32 = X.astype(jnp.float32)
        xx = _gram(x32, x32 * h_ee[:, 0, :].astype(jnp.float32)).astype(X.dtype)
        return xx, _gram(X, small)

    if isinstance(fast, bool):  # known when traced: compile one branch only
        xx, rest = approximate() if fast else exact()
    else:
        xx, rest = jax.lax.cond(fast, approximate, exact)
    return unpack(xx, rest)


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


def _permutation(layout: Layout, names, p, columns, bias):
    """Index of each flat-vector entry (the layout's order) in the structured (coefficients, nuisance) layout."""
    index = {"w0": np.arange(p * columns)}
    offset = p * columns
    if bias:
        index["b0"] = offset + np.arange(columns)
        offset += columns
    for name in names:
        size = int(np.prod(layout.shapes[name], dtype=int))
        index[name] = offset + np.arange(size)
        offset += size
    return np.concatenate([index[k] for k in layout.names])
