"""Full-batch optimisers that run entirely inside ``jit``: damped Newton and L-BFGS.

Both are ``lax.while_loop`` programs (no per-iteration Python; small graphs that
compile in seconds) returning an
:class:`Solution`.

``newton_fused`` takes the exact Hessian with the value and gradient.  Each step solves ``H p = g`` after a
symmetric Jacobi scaling by Cholesky; where ``H`` is not positive definite
(non-convex regions, saddle points) it inverts the absolute eigenvalues
instead (a "saddle-free" Newton step), so the step is always a descent
direction.  A backtracking Armijo line search
rejects non-finite or non-decreasing trial points.  It stops when half the
Newton decrement ``g' H^{-1} g / 2`` falls below ``tol * max(1, |f|)``.

Examples
--------
>>> import jax, jax.numpy as jnp
>>> f = lambda x: jnp.sum((x - 3.0) ** 2) + jnp.sum(x ** 4)
>>> derivatives = lambda x: (f(x), jax.grad(f)(x), jax.hessian(f)(x))
>>> sol, hessian = jax.jit(lambda x0: newton_fused(derivatives, f, x0))(jnp.zeros(2))
>>> bool(sol.converged)
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp


class Solution(NamedTuple):
    """Result of an optimiser: the point, its objective, gradient norm, iterations and convergence."""

    x: jax.Array
    value: jax.Array
    grad_norm: jax.Array
    iterations: jax.Array
    converged: jax.Array


class Factor(NamedTuple):
    """A Cholesky factor of a Jacobi-scaled symmetric matrix, or of its absolute value where it is not
    positive definite; ``ok`` says which."""

    d: jax.Array
    chol: jax.Array
    ok: jax.Array


def factor(hessian: jax.Array) -> Factor:
    """Symmetrise and Jacobi-scale ``hessian``, then factor it by Cholesky.

    Where it is not positive definite (a saddle or a non-convex region, e.g. ``(beta, log sigma)`` far
    from the optimum) the factor is that of ``|H| = V |Lambda| V'`` (absolute eigenvalues, floored at
    1e-10 of the largest): its "saddle-free" Newton step stays a descent direction.  The one
    eigendecomposition sits here, so every solve with the factor is a pair of triangular solves.
    """
    h = 0.5 * (hessian + hessian.T)
    d = 1.0 / jnp.sqrt(jnp.maximum(jnp.abs(jnp.diag(h)), 1e-300))
    scaled = h * d[:, None] * d[None, :]
    chol = jnp.linalg.cholesky(scaled)
    ok = jnp.all(jnp.isfinite(chol))

    def saddle_free(_):
        evals, evecs = jnp.linalg.eigh(scaled)
        floor = 1e-10 * jnp.maximum(jnp.max(jnp.abs(evals)), 1e-300)
        return jnp.linalg.cholesky((evecs * jnp.maximum(jnp.abs(evals), floor)) @ evecs.T)

    return Factor(d, jax.lax.cond(ok, lambda _: chol, saddle_free, None), ok)


def solve(f: Factor, grad: jax.Array) -> jax.Array:
    """``H^{-1} g`` from the factor (``|H|^{-1} g`` where ``H`` is not positive definite)."""
    return jax.scipy.linalg.cho_solve((f.chol, True), grad * f.d) * f.d


def _line_search(objective, x, value, step, slope, max_halvings=50, first=None):
    """Largest ``t`` in 1, 1/2, 1/4, ... with ``f(x - t p) <= f(x) - 1e-4 t g'p`` and finite.

    ``first``, when given, is ``f(x - p)`` already computed.
    """

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
    first = objective(x - step) if first is None else first
    t, trial, _ = jax.lax.while_loop(cond, body, (t0, first, 0))
    return t, trial, accept((t, trial))


def _descend(objective, value_and_grad, x, value, grad, step):
    """One step along ``-step`` (along ``-grad`` where ``step`` is not a descent direction), shortened by
    :func:`_line_search`; the full step is tried with its gradient, accepted in most iterations, so no
    second pass.  Returns ``(x_new, value_new, grad_new, slope, accepted)``, ``slope = g'step``."""
    slope = jnp.vdot(grad, step)
    step, slope = jax.lax.cond(
        jnp.isfinite(slope) & (slope > 0), lambda: (step, slope), lambda: (grad, jnp.vdot(grad, grad))
    )
    full_value, full_grad = value_and_grad(x - step)
    t, trial, accepted = _line_search(objective, x, value, step, slope, first=full_value)
    x_new = jnp.where(accepted, x - t * step, x)
    value_new, grad_new = jax.lax.cond(
        accepted & (t == 1.0), lambda: (full_value, full_grad), lambda: value_and_grad(x_new)
    )
    return x_new, value_new, grad_new, slope, accepted


def newton_fused(
    derivatives: Callable,
    objective: Callable,
    x0: jax.Array,
    tol: float = 1e-10,
    max_iter: int = 100,
    value_and_grad: Callable | None = None,
    fast_hessian: bool = False,
    fast_until: float = 1e-3,
):
    """Damped Newton with ``derivatives(x) -> (f, g, H)`` evaluated together; also returns ``H`` at the result.

    Each iteration evaluates all three at the full Newton step (accepted in
    most iterations), so an iteration costs one pass over the data; only a
    rejected step costs more (``objective`` alone while halving, then one
    more pass).  Convergence is tested with the exact Hessian at each new
    point: half the Newton decrement ``g' H^{-1} g / 2 <= tol * max(1, |f|)``,
    and that Hessian is returned, so standard errors need no further pass.
    A final Newton step with it (kept if the objective does not rise) takes
    the point from about ``sqrt(tol |f|)`` standard errors of the optimum to
    the square of that.  ``value_and_grad`` (default: by autodiff of
    ``objective``) evaluates that last point.

    With ``fast_hessian=True``, ``derivatives(x, fast)`` takes a traced
    boolean asking for the same value and gradient with a cheaper approximate
    Hessian (e.g. a float32 cross-product).  It is asked for at the start and
    at the next point while half the decrement exceeds ``fast_until * max(1,
    |f|)``: far from the optimum a Newton direction needs no more.  The last
    iterations, the convergence test at the solution and the returned Hessian
    are exact (a small decrement measured with an approximate Hessian takes
    one more step).  One function with a flag, not two, so the pass compiles
    once per call site.
    """
    value_and_grad = jax.value_and_grad(objective) if value_and_grad is None else value_and_grad

    def evaluate(x, fast):
        return derivatives(x, fast) if fast_hessian else derivatives(x)

    def decrement(f, value, grad):
        slope = jnp.vdot(grad, solve(f, grad))
        small = (0.5 * slope <= tol * jnp.maximum(1.0, jnp.abs(value))) & jnp.isfinite(slope) & (slope >= 0)
        return slope, small

    # The state's gradient and Hessian belong to x when ``fresh``; a step the line search shortened leaves
    # only the value known there, and the next pass evaluates the derivatives at x itself instead of trying
    # a step. So ``derivatives`` appears once in the program (it is most of the compile time), and a pass
    # over the data is either a trial step or the evaluation at an accepted one, never both.
    def cond(state):
        x, value, grad, hess, f, it, done, ok, fresh, fast = state
        return ((~done) & (it < max_iter)) | ~fresh

    def body(state):
        x, value, grad, hess, f, it, _, _, fresh, fast = state
        step = solve(f, grad)
        slope = jnp.vdot(grad, step)
        step, slope = jax.lax.cond(
            jnp.isfinite(slope) & (slope > 0), lambda: (step, slope), lambda: (grad, jnp.vdot(grad, grad))
        )
        fast = jnp.where(fresh, fast_hessian & (0.5 * slope > fast_until * jnp.maximum(1.0, jnp.abs(value))), fast)
        point = jnp.where(fresh, x - step, x)
        full = evaluate(point, fast)
        armijo = jnp.isfinite(full[0]) & (full[0] <= value - 1e-4 * slope)
        take = ~fresh | armijo  # the evaluation at x itself, or an accepted full step

        def shorten(_):
            t, trial, accepted = _line_search(objective, x, value, step, slope, first=full[0])
            return jnp.where(accepted, x - t * step, x), jnp.where(accepted, trial, value), accepted

        x_short, value_short, accepted = jax.lax.cond(
            take, lambda _: (point, full[0], jnp.asarray(True)), shorten, None
        )
        f_full = factor(full[2])
        _, small = decrement(f_full, full[0], full[1])
        x_new = jnp.where(take, point, x_short)
        value_new = jnp.where(take, full[0], value_short)
        grad_new, hess_new, f_new = jax.tree_util.tree_map(
            lambda a, b: jnp.where(take, a, b), (full[1], full[2], f_full), (grad, hess, f)
        )
        failed = ~take & ~accepted  # no decrease along the step is representable: x stays, still fresh
        stalled = failed & (0.5 * slope <= 1e-6 * jnp.maximum(1.0, jnp.abs(value)))
        # A small decrement measured with an approximate Hessian does not stop the loop: one more
        # (tiny) step evaluates the exact Hessian, which the convergence test and the result then use.
        done = (take & small & ~fast) | failed
        it_new = it + jnp.where(fresh, 1, 0)  # an evaluation at an accepted point is not an iteration
        return x_new, value_new, grad_new, hess_new, f_new, it_new, done, (take & small) | stalled, take | failed, fast

    d = x0.size
    eye = jnp.eye(d, dtype=x0.dtype)
    start = (
        x0,
        jnp.asarray(jnp.inf, x0.dtype),
        jnp.zeros_like(x0),
        eye,
        Factor(jnp.ones_like(x0), eye, jnp.asarray(True)),
        jnp.asarray(0),
        jnp.asarray(False),
        jnp.asarray(False),
        jnp.asarray(False),  # not fresh: the first pass evaluates the derivatives at x0
        jnp.asarray(fast_hessian),  # the first Hessian may be the approximate one (where one is offered)
    )
    x, value, grad, hess, f, it, _, converged, _, _ = jax.lax.while_loop(cond, body, start)
    # One last Newton step with the factored Hessian: inside the quadratic region it squares the error
    # (the test above stops at a decrement of tol * |f|, i.e. about sqrt(tol |f|) standard errors away).
    # Kept only if the objective does not increase; the returned Hessian stays the last one evaluated.
    x_last = x - solve(f, grad)
    value_last, grad_last = value_and_grad(x_last)
    keep = converged & jnp.isfinite(value_last) & (value_last <= value) & jnp.all(jnp.isfinite(grad_last))
    x, value, grad = jax.tree_util.tree_map(
        lambda a, b: jnp.where(keep, a, b), (x_last, value_last, grad_last), (x, value, grad)
    )
    finite = jnp.isfinite(value) & jnp.all(jnp.isfinite(grad))
    return Solution(x, value, jnp.linalg.norm(grad), it, converged & finite), hess


def newton_cg(
    objective: Callable,
    value_and_grad: Callable,
    hvp: Callable,
    x0: jax.Array,
    tol: float = 1e-10,
    max_iter: int = 100,
    cg_iter: int = 200,
):
    """Truncated Newton: steps ``H p = g`` solved by conjugate gradients from Hessian-vector products.

    No Hessian is formed: a CG iteration costs one ``hvp(x, v)`` (about two
    gradients), so a step costs a fraction of a dense Hessian where the rows
    are many.  CG stops at a relative residual ``min(0.5, sqrt(|g| / max(1,
    |f|)))`` (Eisenstat-Walker forcing: loose far from the optimum, tight near
    it), after ``cg_iter`` iterations, or at a direction of non-positive
    curvature (Steihaug), keeping the step built so far (the gradient when
    there is none), so every step is a descent direction.  Armijo backtracking
    as :func:`newton_fused`.  Stops when half the estimated decrement ``g'p /
    2`` falls below ``tol * max(1, |f|)``, when no decrease is representable,
    or after ``max_iter`` steps.
    """

    def cg(x, grad, forcing):
        def cond(state):
            p, r, d, rr, k, stop = state
            return (~stop) & (k < cg_iter)

        def body(state):
            p, r, d, rr, k, _ = state
            hd = hvp(x, d)
            curvature = jnp.vdot(d, hd)
            negative = ~(curvature > 0)  # also NaN
            alpha = rr / jnp.where(negative, 1.0, curvature)
            p_new = jnp.where(negative, p, p + alpha * d)
            r_new = jnp.where(negative, r, r - alpha * hd)
            rr_new = jnp.vdot(r_new, r_new)
            d_new = r_new + (rr_new / jnp.where(rr > 0, rr, 1.0)) * d
            done = negative | (jnp.sqrt(rr_new) <= forcing * jnp.linalg.norm(grad))
            return p_new, r_new, d_new, rr_new, k + 1, done

        zero = jnp.zeros_like(grad)
        start = (zero, grad, grad, jnp.vdot(grad, grad), jnp.asarray(0), jnp.asarray(False))
        p, *_ = jax.lax.while_loop(cond, body, start)
        return p

    def cond(state):
        x, value, grad, it, done = state
        return (~done) & (it < max_iter)

    def body(state):
        x, value, grad, it, _ = state
        forcing = jnp.minimum(0.5, jnp.sqrt(jnp.linalg.norm(grad) / jnp.maximum(1.0, jnp.abs(value))))
        x_new, value_new, grad_new, slope, accepted = _descend(
            objective, value_and_grad, x, value, grad, cg(x, grad, forcing)
        )
        small = 0.5 * slope <= tol * jnp.maximum(1.0, jnp.abs(value))
        return x_new, value_new, grad_new, it + 1, small | ~accepted

    value, grad = value_and_grad(x0)
    x, value, grad, it, done = jax.lax.while_loop(cond, body, (x0, value, grad, jnp.asarray(0), jnp.asarray(False)))
    finite = jnp.isfinite(value) & jnp.all(jnp.isfinite(grad))
    return Solution(x, value, jnp.linalg.norm(grad), it, done & finite)


def _two_loop(grad, s_hist, y_hist, rho, count, memory):
    """L-BFGS two-loop recursion: approximately ``H^{-1} grad`` from the stored pairs (newest at ``count-1``)."""

    def backward(i, carry):
        q, alphas = carry
        idx = (count - 1 - i) % memory
        use = i < jnp.minimum(count, memory)
        alpha = jnp.where(use, rho[idx] * jnp.vdot(s_hist[idx], q), 0.0)
        return q - alpha * y_hist[idx], alphas.at[idx].set(alpha)

    q, alphas = jax.lax.fori_loop(0, memory, backward, (grad, jnp.zeros(memory, grad.dtype)))
    last = (count - 1) % memory
    gamma = jnp.where(
        count > 0,
        jnp.vdot(s_hist[last], y_hist[last]) / jnp.vdot(y_hist[last], y_hist[last]),
        1.0 / jnp.maximum(jnp.linalg.norm(grad), 1.0),
    )
    r = gamma * q

    def forward(i, r):
        n_used = jnp.minimum(count, memory)
        idx = (count - n_used + i) % memory
        beta = rho[idx] * jnp.vdot(y_hist[idx], r)
        return jnp.where(i < n_used, r + s_hist[idx] * (alphas[idx] - beta), r)

    return jax.lax.fori_loop(0, memory, forward, r)


def lbfgs(
    objective: Callable,
    x0: jax.Array,
    gtol: float = 1e-6,
    max_iter: int = 2000,
    memory: int = 10,
    value_and_grad: Callable | None = None,
):
    """Minimise ``objective`` by L-BFGS with a backtracking Armijo line search.

    Stops when ``|g| <= gtol * max(1, |f|)``, when no decrease is possible,
    or after ``max_iter`` iterations.  Pairs with ``s'y <= 0`` are skipped,
    which keeps the inverse-Hessian approximation positive definite.
    ``value_and_grad`` (default: autodiff of ``objective``) may compute both
    another way, e.g. summed over blocks of rows.
    """
    value_and_grad = jax.value_and_grad(objective) if value_and_grad is None else value_and_grad
    d = x0.size

    def small(value, grad):
        return jnp.linalg.norm(grad) <= gtol * jnp.maximum(1.0, jnp.abs(value))

    def cond(state):
        x, value, grad, s_hist, y_hist, rho, count, it, stalled = state
        return (~stalled) & (it < max_iter) & ~small(value, grad)

    def body(state):
        x, value, grad, s_hist, y_hist, rho, count, it, _ = state
        step = _two_loop(grad, s_hist, y_hist, rho, count, memory)
        x_new, value_new, grad_new, _, accepted = _descend(objective, value_and_grad, x, value, grad, step)
        s_new, y_new = x_new - x, grad_new - grad
        curvature = jnp.vdot(s_new, y_new)
        keep = accepted & (curvature > 1e-12 * jnp.vdot(y_new, y_new))
        slot = count % memory
        s_hist = jnp.where(keep, s_hist.at[slot].set(s_new), s_hist)
        y_hist = jnp.where(keep, y_hist.at[slot].set(y_new), y_hist)
        rho = jnp.where(keep, rho.at[slot].set(1.0 / jnp.where(keep, curvature, 1.0)), rho)
        return x_new, value_new, grad_new, s_hist, y_hist, rho, count + keep, it + 1, ~accepted

    value, grad = value_and_grad(x0)
    zeros = jnp.zeros((memory, d), x0.dtype)
    start = (
        x0,
        value,
        grad,
        zeros,
        zeros,
        jnp.zeros(memory, x0.dtype),
        jnp.asarray(0),
        jnp.asarray(0),
        jnp.asarray(False),
    )
    x, value, grad, *_, it, _ = jax.lax.while_loop(cond, body, start)
    converged = jnp.isfinite(value) & small(value, grad)
    return Solution(x, value, jnp.linalg.norm(grad), it, converged)
