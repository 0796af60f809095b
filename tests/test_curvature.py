"""Hessians summed over row blocks: exact, and with memory that does not grow with the number of rows."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import bayes_rglm as br
from bayes_rglm.inference import curvature, point
from bayes_rglm.inference.curvature import blocked_hessian, hessian_chunk
from bayes_rglm.inference.target import build

pytestmark = pytest.mark.x64  # calls internals directly (see conftest)

MODEL = br.RGLM("bernoulli", hidden=(4,), activation="tanh", prior=br.GaussianPrior(scale=1.0, bias_scale=5.0))


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * [1.0, 5.0, 0.2] + [0.0, 3.0, 1.0]
    y = (np.tanh(X[:, 0]) + 0.3 * X[:, 1] - 1 + rng.normal(size=n) > 0).astype(float)
    return X, y


@pytest.fixture(scope="module")
def map_fit():
    X, y = _data(300)
    return MODEL.fit(X, y, method="map", seed=1), X, y


def test_blocked_hessian_equals_the_dense_one():
    rng = np.random.default_rng(1)
    rows = jnp.asarray(rng.normal(size=(64, 3)))
    y = jnp.asarray(rng.random(64) < 0.4, dtype=jnp.float64)
    theta = jnp.asarray(rng.normal(size=3))

    def nll(t, r, yy):
        eta = jnp.tanh(r @ t) * 2.0
        return jnp.sum(jax.nn.softplus(eta) - yy * eta)

    dense = jax.hessian(nll)(theta, rows, y)
    for chunk in (8, 16, 64):
        np.testing.assert_allclose(blocked_hessian(nll, theta, (rows, y), chunk), dense, rtol=1e-12, atol=1e-12)


def test_hessian_chunk_divides_and_bounds_the_block():
    assert hessian_chunk(53248, 1101, 71) == 256  # the 20-50-1 net at 50,000 rows
    assert 53248 % hessian_chunk(53248, 1101, 71) == 0
    assert hessian_chunk(16, 10, 3) == 16


def test_map_covariance_of_a_net_is_the_inverse_hessian_of_the_log_posterior(map_fit):
    fit, X, y = map_fit
    # A cheap Hessian: the information is computed at the optimum itself, when first asked for.
    assert fit.info["optimizer"] == "lbfgs + newton"
    assert fit.info["covariance"].endswith("(computed when first used)")
    params = {k: jnp.asarray(v) for k, v in fit.params.items()}
    flat, unravel = ravel_pytree(params)

    def negative_log_posterior(f):
        p = unravel(f)
        return -(
            jnp.sum(MODEL.log_likelihood(p, jnp.asarray(X), jnp.asarray(y))) + MODEL.log_prior(p, fit.data_summary, 3)
        )

    assert float(jnp.linalg.norm(jax.grad(negative_log_posterior)(flat))) < 1e-6
    reference = np.linalg.inv(np.asarray(jax.hessian(negative_log_posterior)(flat)))
    np.testing.assert_allclose(fit.covariance, reference, rtol=1e-8, atol=1e-10 * np.abs(reference).max())
    assert fit.info["covariance"] == "inverse observed information"


def test_memory_of_the_information_does_not_grow_with_rows(monkeypatch):
    # A small block budget, so that this small net is summed over several blocks at both sizes.
    monkeypatch.setattr(curvature, "BLOCK_ELEMENTS", 1 << 14)
    temp = []
    for n in (2048, 16384):
        X, y = _data(n)
        target = build(MODEL, MODEL.prepare(X, y), scales=False)
        theta = jnp.zeros(target.layout.size)
        compiled = point._compiled_information(target.layout, True).lower(theta, target.problem).compile()
        temp.append(compiled.memory_analysis().temp_size_in_bytes)
    # A Hessian over all rows at once would hold n x units x P numbers: 8x more at 8x the rows.
    assert temp[1] <= 1.05 * temp[0]


def test_map_skips_the_polish_when_a_hessian_costs_too_much(monkeypatch):
    X, y = _data(200, seed=2)
    monkeypatch.setattr(point, "POLISH_COST", 1.0)
    fit = MODEL.fit(X, y, method="map", seed=0)
    assert fit.info["optimizer"] == "lbfgs"
    assert fit.info["covariance"].endswith("(computed when first used)")
    assert np.all(np.isfinite(fit.covariance)) and fit.info["covariance"] == "inverse observed information"
    # Laplace still polishes, after truncated Newton steps from Hessian-vector products (newton_cg) where
    # a Hessian costs more than POLISH_COST; it reaches the mode the exact-Hessian polish alone reaches.
    lap = MODEL.fit(X, y, method="laplace", seed=0, num_samples=50)
    assert lap.info["optimizer"] == "lbfgs + newton"
    monkeypatch.setattr(point, "POLISH_COST", 2e9)
    exact = MODEL.fit(X, y, method="laplace", seed=0, num_samples=50)
    for name, value in exact.info["map"].items():
        np.testing.assert_allclose(lap.info["map"][name], value, rtol=1e-6, atol=1e-7)
    assert lap.info["log_det_precision"] == pytest.approx(exact.info["log_det_precision"], rel=1e-6)


def test_laplace_of_a_polished_net_reuses_the_polish_hessian(monkeypatch):
    # Where a Hessian is costly (here: always), the precision is the Newton polish's last Hessian: no second
    # pass computes another one.
    def refuse(*args, **kwargs):
        raise AssertionError("the observed information was computed again")

    X, y = _data(200, seed=3)
    monkeypatch.setattr(point, "POLISH_COST", 1.0)
    monkeypatch.setattr(point, "_compiled_information", refuse)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", br.DiagnosticsWarning)  # weight-space Laplace of a net: k-hat may exceed 0.7
        lap = MODEL.fit(X, y, method="laplace", seed=0, num_samples=2000, curvature="hessian")
    assert lap.info["optimizer"] == "lbfgs + newton"
    # It is the Hessian at the mode: the draws' covariance matches its inverse to Monte Carlo error.
    mode = {k: jnp.asarray(v) for k, v in lap.info["map"].items()}
    flat_mode, unravel = ravel_pytree(mode)

    def negative_log_posterior(f):
        p = unravel(f)
        log_lik = jnp.sum(MODEL.log_likelihood(p, jnp.asarray(X), jnp.asarray(y)))
        return -(log_lik + MODEL.log_prior(p, lap.data_summary, 3))

    reference = np.sqrt(np.diag(np.linalg.inv(np.asarray(jax.hessian(negative_log_posterior)(flat_mode)))))
    draws = np.concatenate([np.asarray(lap.samples[k]).reshape(2000, -1) for k in sorted(mode)], axis=1)
    # Relative Monte Carlo error of a standard deviation from 2000 draws: about 1/sqrt(2 * 2000) = 1.6%.
    np.testing.assert_allclose(draws.std(axis=0), reference, rtol=0.08)


def test_ggn_is_the_jacobian_cross_product_not_the_hessian():
    """The GGN of a bernoulli tanh net, ``J' diag(p (1 - p)) J + I``, with ``J`` the Jacobian of a forward pass
    written here and the prior N(0, 1) on every parameter; the exact Hessian differs from it (the network's
    curvature term), so a GGN that silently fell back to the Hessian would fail."""
    from bayes_rglm.inference.laplace import _compiled_ggn
    from bayes_rglm.inference.point import _compiled_information

    rng = np.random.default_rng(2)
    Z = rng.normal(size=(64, 3))
    X = (Z - Z.mean(axis=0)) / Z.std(axis=0)  # the fit's standardised coordinates are X's own
    y = (rng.random(64) < 0.5).astype(float)
    model = br.RGLM("bernoulli", hidden=(4,), activation="tanh", prior=br.GaussianPrior(scale=1.0, bias_scale=1.0))
    target = build(model, model.prepare(X, y), scales=False)
    params = {
        "b0": rng.normal(size=4),
        "b1": rng.normal(size=1),
        "w0": rng.normal(size=(3, 4)),
        "w1": rng.normal(size=(4, 1)),
    }
    flat, unravel = ravel_pytree(params)  # sorted keys: the layout's order

    def eta(t):
        p = unravel(t)
        return (jnp.tanh(X @ p["w0"] + p["b0"]) @ p["w1"] + p["b1"])[:, 0]

    J = np.asarray(jax.jacfwd(eta)(flat))
    prob = 1 / (1 + np.exp(-np.asarray(eta(flat))))
    expected = J.T @ (J * (prob * (1 - prob))[:, None]) + np.eye(flat.size)
    ggn = np.asarray(_compiled_ggn(target.layout)(jnp.asarray(flat), target.problem))
    np.testing.assert_allclose(ggn, expected, rtol=1e-10, atol=1e-10)
    hessian = np.asarray(_compiled_information(target.layout, True)(jnp.asarray(flat), target.problem))
    assert np.abs(hessian - expected).max() > 1e-2


def test_last_layer_hessian_is_the_block_of_the_full_one_and_its_memory_does_not_grow(monkeypatch):
    from bayes_rglm.inference import blocks, laplace
    from bayes_rglm.inference import objective as obj

    br.clear_caches()
    # Blocks of 512 rows, so that both sizes below are summed over several blocks.
    monkeypatch.setattr(blocks, "row_chunk", lambda n, p: 512 if n > 512 and n % 512 == 0 else n)
    temp = []
    for n in (2048, 16384):
        X, y = _data(n)
        target = build(MODEL, MODEL.prepare(X, y), scales=False)
        layout, problem = target.layout, target.problem
        theta = jnp.asarray(np.random.default_rng(3).normal(size=layout.size) * 0.5)
        indices = laplace._last_layer_indices(layout)
        run = laplace._compiled_sub_hessian(layout, tuple(int(i) for i in indices))
        if n == 2048:
            objective = obj.negative_log_density(layout, True, unconstrained=True)
            full = jax.hessian(objective)(theta, problem)
            expected = np.asarray(full)[np.ix_(indices, indices)]
            np.testing.assert_allclose(np.asarray(run(theta, problem)), expected, rtol=1e-10, atol=1e-10)
        temp.append(run.lower(theta, problem).compile().memory_analysis().temp_size_in_bytes)
    # Differentiating the blocked sum keeps every block's activations per coordinate: 8x at 8x the rows.
    assert temp[1] <= 1.05 * temp[0]
