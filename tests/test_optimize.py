"""The compiled Newton solvers: ``newton_fused`` (and its approximate-Hessian phase) and ``newton_cg``.

The approximate Hessian here is the exact one scaled by 1.3 (far worse than the float32
cross-product the GLM fit uses), so a test fails if it leaks into the result or the returned Hessian.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayes_rglm.inference.optimize import newton_cg, newton_fused

pytestmark = pytest.mark.x64  # calls internals directly (see conftest)

with jax.enable_x64(True):  # float64 device arrays: at import the tests' x64 marker is not yet active
    A = jnp.asarray(np.random.default_rng(3).normal(size=(200, 4)))
    Y = jnp.asarray((np.random.default_rng(4).random(200) < 0.4).astype(float))


def objective(x):
    eta = A @ x
    return jnp.sum(jax.nn.softplus(eta) - Y * eta) + 0.5 * jnp.sum(x**2)


def derivatives(x, fast=False):
    value, grad = jax.value_and_grad(objective)(x)
    hess = jax.hessian(objective)(x)
    return value, grad, jnp.where(fast, 1.3 * hess, hess)


def solve(x0, fast_hessian):
    run = jax.jit(lambda x: newton_fused(derivatives, objective, x, 1e-10, 100, fast_hessian=fast_hessian))
    return run(x0)


@pytest.mark.parametrize("start", [np.full(4, 3.0), None])  # far away; at the optimum
def test_approximate_phase_leaves_the_solution_and_hessian_exact(start):
    exact, exact_hess = solve(jnp.zeros(4), fast_hessian=False)
    x0 = exact.x if start is None else jnp.asarray(start)
    sol, hess = solve(x0, fast_hessian=True)
    assert bool(sol.converged) and bool(exact.converged)
    np.testing.assert_allclose(sol.x, exact.x, rtol=0, atol=1e-10)
    # The returned Hessian is the exact one at the last iterate (within about 1e-4 standard errors of
    # the returned point, which takes one more Newton step), never the approximation 30% off.
    np.testing.assert_allclose(hess, jax.hessian(objective)(sol.x), rtol=1e-3)
    np.testing.assert_allclose(hess, exact_hess, rtol=1e-3)
    if start is not None:
        assert int(sol.iterations) >= int(exact.iterations)  # the approximate steps were taken


def test_newton_fused_at_the_optimum_evaluates_one_hessian():
    # Started at the optimum, one evaluation (value, gradient, exact Hessian) shows convergence: a net's
    # Laplace after a good approach then pays for one Hessian, not two.
    calls = []

    def f(x):
        return jnp.sum((x - 3.0) ** 2) + jnp.sum((x - 3.0) ** 4)

    def derivatives(x):
        jax.debug.callback(lambda: calls.append(1))
        return f(x), jax.grad(f)(x), jax.hessian(f)(x)

    solution, hessian = jax.jit(lambda x0: newton_fused(derivatives, f, x0))(jnp.full(2, 3.0))
    jax.effects_barrier()
    assert bool(solution.converged)
    assert len(calls) == 1
    np.testing.assert_allclose(hessian, 2.0 * np.eye(2))


def test_newton_cg_reaches_the_minimum_of_a_nonconvex_function():
    # Rosenbrock: negative curvature away from the valley; truncated Newton with Hessian-vector products.
    def f(x):
        return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

    def hvp(x, v):
        return jax.jvp(jax.grad(f), (x,), (v,))[1]

    x0 = jnp.array([-1.2, 1.0, -0.5, 0.8])
    solution = jax.jit(lambda x: newton_cg(f, jax.value_and_grad(f), hvp, x, tol=1e-14, max_iter=200))(x0)
    assert bool(solution.converged)
    np.testing.assert_allclose(solution.x, np.ones(4), atol=1e-6)
