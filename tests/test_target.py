"""The target is the single source of every objective: the optimisers' objectives, the depth-0 Newton
derivatives and the flat layout all agree with the network's own density in the original coordinates."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayes_rglm as br
from bayes_rglm.inference import objective as obj
from bayes_rglm.inference.problem import to_original
from bayes_rglm.inference.target import build

pytestmark = pytest.mark.x64  # calls internals directly (see conftest)

RNG = np.random.default_rng(11)
N = 40
X = RNG.normal(size=(N, 2)) * np.array([3.0, 0.5]) + np.array([2.0, -1.0])  # off-centre, unequal scales
Y = {
    "gaussian": X[:, 0] - X[:, 1] + RNG.normal(size=N),
    "poisson": RNG.poisson(np.exp(0.2 * X[:, 0])).astype(float),
    "ordinal": np.digitize(X[:, 0] + RNG.normal(size=N), [1.0, 3.0]).astype(float),
    "binomial": RNG.binomial(5, 0.4, size=N).astype(float),
}


def _case(family, hidden):
    model = br.RGLM(family, hidden=hidden, prior=br.GaussianPrior(scale=0.7, bias_scale=3.0))
    trials = np.full(N, 5.0) if family == "binomial" else None
    target = build(model, model.prepare(X, Y[family], trials=trials), scales=False)
    theta = RNG.normal(scale=0.3, size=target.layout.size)
    return model, target, jnp.asarray(theta)


@pytest.mark.parametrize("family", sorted(Y))
@pytest.mark.parametrize("hidden", [(), (3,)], ids=["depth0", "hidden3"])
@pytest.mark.parametrize("use_prior", [False, True], ids=["mle", "map"])
def test_objective_is_the_networks_density_in_original_coordinates(family, hidden, use_prior):
    """``-log p(y | theta) [- log p(theta)]`` from the flat standardised vector equals the network's
    log-likelihood and prior evaluated directly at the parameters mapped back to the original inputs."""
    model, target, theta = _case(family, hidden)
    layout, problem, data = target
    value = obj.negative_log_density(layout, use_prior, unconstrained=True)(theta, problem)
    params = to_original(layout.constrain(layout.unravel(theta))[0], problem.shift, problem.scale)
    direct = -jnp.sum(model.log_likelihood(params, jnp.asarray(X), jnp.asarray(data.y), None, jnp.asarray(data.trials)))
    if use_prior:
        direct = direct - model.log_prior(params, data.summary, X.shape[1])
    np.testing.assert_allclose(float(value), float(direct), rtol=1e-12)


@pytest.mark.parametrize("family", sorted(Y))
@pytest.mark.parametrize("unconstrained", [True, False], ids=["unconstrained", "natural"])
def test_depth0_derivatives_are_those_of_the_objective(family, unconstrained):
    """The structured (IRLS-like) value, gradient and Hessian of depth 0 equal autodiff of the objective."""
    model, target, theta = _case(family, ())
    layout, problem, _ = target
    if not unconstrained:  # a valid point on the natural scale
        theta = layout.ravel(layout.constrain(layout.unravel(theta))[0])
    f = obj.negative_log_density(layout, True, unconstrained)
    value, grad, hess = jax.jit(obj.depth0_derivatives(layout, True, unconstrained))(theta, problem)
    autodiff = jax.jit(lambda t, p: (f(t, p), jax.grad(f)(t, p), jax.hessian(f)(t, p)))(theta, problem)
    np.testing.assert_allclose(float(value), float(autodiff[0]), rtol=1e-12)
    np.testing.assert_allclose(grad, autodiff[1], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(hess, autodiff[2], rtol=1e-9, atol=1e-9)


def test_flat_layout_round_trips_and_orders_sites_by_name():
    _, target, theta = _case("ordinal", (3,))
    layout = target.layout
    assert layout.names == tuple(sorted(layout.shapes))
    np.testing.assert_array_equal(layout.ravel(layout.unravel(theta)), theta)
    sizes = {k: int(np.prod(s, dtype=int)) for k, s in layout.shapes.items()}
    assert layout.size == sum(sizes.values()) == theta.size


def test_optimiser_layouts_leave_out_hierarchical_scales():
    model = br.RGLM("gaussian", hidden=(2,), prior=br.GaussianPrior(hierarchical=True))
    data = model.prepare(X, Y["gaussian"])
    assert "prior_scale0" in build(model, data).layout.shapes
    assert "prior_scale0" not in build(model, data, scales=False).layout.shapes
