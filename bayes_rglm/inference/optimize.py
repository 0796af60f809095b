"""Full-batch optimisers that run entirely inside ``jit``: damped Newton and L-BFGS.

Both are ``lax.while_loop`` programs (no per-iteration Python) returning an
:class:`Solution`.

``newton`` takes the exact Hessian.  Each step solves ``H p = g`` after a
symmetric Jacobi scaling by Cholesky; where ``H`` is not positive definite
(non-convex deep nets, saddle points) it uses the eigen-decomposition with
eigenvalues replaced by their absolute values (a "saddle-free" Newton step),
so the step is always a descent direction.  A backtracking Armijo line search
rejects non-finite or non-decreasing trial points.  It stops when half the
Newton decrement ``g' H^{-1} g / 2`` falls below ``tol * max(1, |f|)``.

Examples
--------
>>> import jax, jax.numpy as jnp
>>> f = lambda x: jnp.sum((x - 3.0) ** 2) + jnp.sum(x ** 4)
>>> sol = jax.jit(lambda x0: newton(f, jax.hessian(f), x0))(jnp.zeros(2))
>>> bool(sol.converged)
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
import optax.tree_utils as otu


class Solution(NamedTuple):
    """Result of an optimiser: the point, its objective, gradient norm, iterations and convergence."""

    x: jax.Array
    value: jax.Array
    grad_norm: jax.Array
    iterations: jax.Array
    converged: jax.Array


def newton_direction(hessian: jax.Array, grad: jax.Array) -> jax.Array:
    """``H^{-1} g`` with Jacobi scaling; the absolute-eigenvalue inverse where ``H`` is indefinite."""
    h = 0.5 * (hessian + hessian.T)
    d = 1.0 / jnp.sqrt(jnp.maximum(jnp.abs(jnp.diag(h)), 1e-300))
    scaled = h * d[:, None] * d[None, :]
    g = grad * d
    chol = jnp.linalg.cholesky(scaled)
    chol_ok = jnp.all(jnp.isfinite(chol))

    def by_cholesky(_):
        return jax.scipy.linalg.cho_solve((chol, True), g)

    def by_eigen(_):
        evals, evecs = jnp.linalg.eigh(scaled)
        floor = 1e-10 * jnp.maximum(jnp.max(jnp.abs(evals)), 1e-300)
        return evecs @ ((evecs.T @ g) / jnp.maximum(jnp.abs(evals), floor))

    step = jax.lax.cond(chol_ok, by_cholesky, by_eigen, None)
    return step * d


def _line_search(objective, x, value, step, slope, max_halvings=50):
    """Largest ``t`` in 1, 1/2, 1/4, ... with ``f(x - t p) <= f(x) - 1e-4 t g'p`` and finite."""

    def accept(t_value):
        t, trial = t_value
        return jnp.isfinite(trial) & (trial <= value - 1e-4 * t * slope)

    def cond(carry):
        t, trial, k = carry
        return (~accept((t, trial))) & (k < max_halvings)

    def body(carry):
        t, _, k = carry
        t = 0.5 * t
        return t, objective(x - t * step), k + 1

    t0 = jnp.asarray(1.0, x.dtype)
    t, trial, _ = jax.lax.while_loop(cond, body, (t0, objective(x - step), 0))
    return t, trial, accept((t, trial))


def newton(objective: Callable, hessian: Callable, x0: jax.Array, tol: float = 1e-10, max_iter: int = 100):
    """Minimise ``objective`` from ``x0`` by damped Newton with the given Hessian function."""
    value_and_grad = jax.value_and_grad(objective)

    def cond(state):
        x, value, grad, it, done, ok = state
        return (~done) & (it < max_iter)

    def body(state):
        x, value, grad, it, _, _ = state
        step = newton_direction(hessian(x), grad)
        slope = jnp.vdot(grad, step)
        step, slope = jax.lax.cond(
            jnp.isfinite(slope) & (slope > 0), lambda: (step, slope), lambda: (grad, jnp.vdot(grad, grad))
        )
        small = 0.5 * slope <= tol * jnp.maximum(1.0, jnp.abs(value))
        t, trial, accepted = _line_search(objective, x, value, step, slope)
        x_new = jnp.where(accepted, x - t * step, x)
        value_new, grad_new = value_and_grad(x_new)
        # Converged: the decrement was already negligible, or no further decrease is representable.
        done = small | ~accepted
        stalled = ~accepted & (0.5 * slope <= 1e-6 * jnp.maximum(1.0, jnp.abs(value)))
        return x_new, value_new, grad_new, it + 1, done, small | stalled

    value, grad = value_and_grad(x0)
    start = (x0, value, grad, jnp.asarray(0), jnp.asarray(False), jnp.asarray(False))
    x, value, grad, it, done, small = jax.lax.while_loop(cond, body, start)
    finite = jnp.isfinite(value) & jnp.all(jnp.isfinite(grad))
    return Solution(x, value, jnp.linalg.norm(grad), it, small & finite)


def lbfgs(objective: Callable, x0: jax.Array, gtol: float = 1e-6, max_iter: int = 2000, memory: int = 20):
    """Minimise ``objective`` by L-BFGS (optax, zoom line search) until ``|g| <= gtol * max(1, |f|)``."""
    optimizer = optax.lbfgs(memory_size=memory)
    value_and_grad = optax.value_and_grad_from_state(objective)

    def step(carry):
        x, state = carry
        value, grad = value_and_grad(x, state=state)
        updates, state = optimizer.update(grad, state, x, value=value, grad=grad, value_fn=objective)
        return optax.apply_updates(x, updates), state

    def keep_going(carry):
        _, state = carry
        count = otu.tree_get(state, "count")
        grad_norm = otu.tree_norm(otu.tree_get(state, "grad"))
        value = otu.tree_get(state, "value")
        return (count == 0) | ((count < max_iter) & (grad_norm >= gtol * jnp.maximum(1.0, jnp.abs(value))))

    x, state = jax.lax.while_loop(keep_going, step, (x0, optimizer.init(x0)))
    value, grad = jax.value_and_grad(objective)(x)
    grad_norm = jnp.linalg.norm(grad)
    converged = jnp.isfinite(value) & (grad_norm < gtol * jnp.maximum(1.0, jnp.abs(value)))
    return Solution(x, value, grad_norm, otu.tree_get(state, "count"), converged)
