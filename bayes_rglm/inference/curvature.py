"""Hessians of objectives that sum over rows, accumulated block by block so memory does not grow with N.

The exact Hessian of ``f(theta) = sum_i l_i(theta) + r(theta)`` is summed over
blocks of rows: ``H = sum_blocks d^2/dtheta^2 sum_{i in block} l_i + d^2 r``.
Autodiff builds the Hessian of a block from ``P`` tangent directions at once,
so a block of ``B`` rows in a network whose layers have ``W`` units in all
keeps about ``B * W * P`` numbers alive; the block size is chosen to keep
that near :data:`BLOCK_ELEMENTS`, whatever ``N``.  Peak memory is then the
data, ``O(P^2)`` for the result and one fixed block: never ``N * P^2``.

Depth-0 models do not need this: their Hessian is one weighted cross-product
(:func:`~bayes_rglm.inference.objective.depth0_derivatives`).

Examples
--------
>>> import jax.numpy as jnp
>>> rows = jnp.arange(12.0).reshape(6, 2)
>>> f = lambda t, r: jnp.sum((r @ t) ** 2)
>>> H = blocked_hessian(f, jnp.ones(2), (rows,), chunk=2)
>>> bool(jnp.allclose(H, 2 * rows.T @ rows))
True
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np

from .blocks import over_shards, scan_sum, split_rows

# About 256 MiB of float64 per intermediate of one block's Hessian. Larger blocks make fewer, larger
# products: for the 20-50-1 net at 10,240 rows one Hessian took 8.4 s in blocks of 32 rows (2**22
# elements), 5.8 s in blocks of 128 and 4.7 s in blocks of 256 (this budget; 0.7 GB peak for the process),
# with no gain beyond (512 rows: 4.8 s, 1.0 GB).
BLOCK_ELEMENTS = 1 << 25


def hessian_chunk(n_rows: int, n_params: int, units: int) -> int:
    """Rows per block for :func:`blocked_hessian`: a power of two dividing ``n_rows``, ``rows * units * n_params``
    near :data:`BLOCK_ELEMENTS` (at least 8 rows, at most all of them)."""
    target = max(BLOCK_ELEMENTS // max(units * n_params, 1), 8)
    chunk = min(n_rows & -n_rows, 1 << int(np.floor(np.log2(target))))
    return max(min(chunk, n_rows), 1)


def blocked_derivatives(block_objective: Callable, theta: jax.Array, arrays: tuple, chunk: int) -> tuple:
    """``(value, gradient, Hessian)`` of ``block_objective`` summed over row blocks, in one pass (a ``lax.scan``).

    The Hessian is the forward-mode Jacobian of the gradient, which carries the
    value and the gradient along at no extra cost.
    """

    def block_derivatives(t, *block):
        def gradient(tt):
            value, grad = jax.value_and_grad(block_objective)(tt, *block)
            return grad, (value, grad)

        hessian, (value, grad) = jax.jacfwd(gradient, has_aux=True)(t)
        return value, grad, hessian

    def local(*rows):
        # Over several devices each has n / devices rows: the block is the largest power of two dividing both.
        n = rows[0].shape[0]
        blocks = split_rows(rows, min(chunk, n & -n))
        if blocks is None:
            return block_derivatives(theta, *rows)
        return scan_sum(lambda *block: block_derivatives(theta, *block), blocks)

    return over_shards(local, *arrays)


def blocked_hessian(block_objective: Callable, theta: jax.Array, arrays: tuple, chunk: int) -> jax.Array:
    """``sum over row blocks of hessian(block_objective)(theta, *block)``, one block at a time (a ``lax.scan``).

    ``block_objective(theta, *arrays)`` must sum over the leading (row) axis of
    each array; ``chunk`` divides that axis.  The Hessian of
    :func:`blocked_derivatives`.
    """
    return blocked_derivatives(block_objective, theta, arrays, chunk)[2]
