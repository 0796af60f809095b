"""The compiled Newton solver's approximate-Hessian phase (``newton_fused(..., fast_hessian=True)``).

The approximate Hessian here is the exact one scaled by 1.3 (far worse than the float32
cross-product the GLM fit uses), so a test fails if it leaks into the result or the returned Hessian.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayes_rglm.inference.optimize import newton_fused

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
