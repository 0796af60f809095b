"""``RGLM.numpyro_model`` agrees with the model's own log-likelihood and log-prior.

For small RGLMs (depth 0 and ``hidden=(3,)``; families gaussian, poisson,
ordinal, categorical) and parameters drawn at random, numpyro's log joint

    log_density(model.numpyro_model, (X,), dict(y=y, n_classes=K, y_scale=s), params)

must equal ``model.log_likelihood(params, X, y).sum() + model.log_prior(params, summary, P)``
with ``summary = DataSummary(K, 0.0, s)`` (``y_scale`` passed explicitly to both: without it
the numpyro model uses ``jnp.std(y)``).  With ``batch_size=b`` the observed site sits in a
subsampling plate whose ``scale`` is ``N / b``, so the likelihood term is an unbiased
estimate of the full one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from numpyro import handlers
from numpyro.infer.util import log_density

import bayes_rglm as br
from bayes_rglm.families import DataSummary

pytestmark = pytest.mark.x64  # calls internals directly (see conftest)

N, P = 12, 2
Y_SCALE = 1.7
_rng = np.random.default_rng(11)
# Made with x64 on (float64 device arrays): at import the tests' x64 marker is not yet active.
with jax.enable_x64(True):
    X = jnp.asarray(_rng.normal(size=(N, P)))
    Y = {
        "gaussian": jnp.asarray(_rng.normal(loc=1.0, scale=2.0, size=N)),
        "poisson": jnp.asarray(_rng.poisson(2.0, size=N).astype(float)),
        "ordinal": jnp.asarray(np.arange(N) % 3, dtype=jnp.float64),
        "categorical": jnp.asarray((np.arange(N) * 7) % 3, dtype=jnp.float64),
    }

HIDDEN = {"depth0": (), "hidden3": (3,)}
CASES = [pytest.param(fam, hid, id=f"{fam}-{name}") for fam in Y for name, hid in HIDDEN.items()]


def _setup(family: str, hidden, seed: int = 0):
    """The model, its data, K and a random parameter draw (nuisance parameters within their support)."""
    model = br.RGLM(family=family, hidden=hidden)
    y = Y[family]
    K = model.family.validate(np.asarray(y), None).n_classes
    rng = np.random.default_rng(seed)
    params = {}
    constraints = {n.name: n.constraint for n in model.family.nuisance}
    for name, shape in model.parameter_shapes(P, K).items():
        raw = jnp.asarray(rng.normal(scale=0.7, size=shape))
        params[name] = dist.biject_to(constraints[name])(raw) if name in constraints else raw
    return model, y, K, params


def _direct(model, params, y, K, *, use_prior=True) -> float:
    total = model.log_likelihood(params, X, y).sum()
    if use_prior:
        total = total + model.log_prior(params, DataSummary(K, 0.0, Y_SCALE), P)
    return float(total)


def test_cases_cover_families_with_and_without_classes():
    assert {br.RGLM(family=f).family.has_classes for f in Y} == {True, False}


@pytest.mark.parametrize("family, hidden", CASES)
def test_log_joint_equals_log_likelihood_plus_log_prior(family, hidden):
    model, y, K, params = _setup(family, hidden)
    log_joint, trace = log_density(model.numpyro_model, (X,), dict(y=y, n_classes=K, y_scale=Y_SCALE), params)
    # every latent sample site is a parameter, and every parameter is a site
    latent = {name for name, site in trace.items() if site["type"] == "sample" and not site["is_observed"]}
    assert latent == set(params)
    assert trace["y"]["is_observed"] and trace["y"]["value"].shape == (N,)
    np.testing.assert_allclose(float(log_joint), _direct(model, params, y, K), rtol=1e-10)


@pytest.mark.parametrize("family, hidden", CASES)
def test_log_joint_without_prior_is_log_likelihood(family, hidden):
    model, y, K, params = _setup(family, hidden, seed=1)
    kwargs = dict(y=y, n_classes=K, y_scale=Y_SCALE, use_prior=False)
    log_joint, _ = log_density(model.numpyro_model, (X,), kwargs, params)
    np.testing.assert_allclose(float(log_joint), _direct(model, params, y, K, use_prior=False), rtol=1e-10)


def test_default_y_scale_is_std_of_y():
    """Without ``y_scale=`` the numpyro model's summary (the gaussian sigma prior) uses ``jnp.std(y)``."""
    model, y, K, params = _setup("gaussian", ())
    implicit, _ = log_density(model.numpyro_model, (X,), dict(y=y, n_classes=K), params)
    explicit, _ = log_density(model.numpyro_model, (X,), dict(y=y, n_classes=K, y_scale=jnp.std(y)), params)
    np.testing.assert_allclose(float(implicit), float(explicit), rtol=1e-12)
    direct = model.log_likelihood(params, X, y).sum() + model.log_prior(params, DataSummary(K, 0.0, jnp.std(y)), P)
    np.testing.assert_allclose(float(implicit), float(direct), rtol=1e-10)


BATCH = 4


@pytest.mark.parametrize("family, hidden", CASES)
def test_subsampled_likelihood_is_scaled_by_n_over_b(family, hidden):
    model, y, K, params = _setup(family, hidden, seed=2)
    kwargs = dict(y=y, n_classes=K, y_scale=Y_SCALE, batch_size=BATCH)
    seeded = handlers.seed(model.numpyro_model, rng_seed=3)
    trace = handlers.trace(handlers.substitute(seeded, data=params)).get_trace(X, **kwargs)
    site = trace["y"]
    assert site["scale"] == pytest.approx(N / BATCH)
    assert site["value"].shape == (BATCH,)
    index = np.asarray(trace["data"]["value"])
    assert index.shape == (BATCH,) and len(set(index.tolist())) == BATCH and index.min() >= 0 and index.max() < N
    # the log joint is the prior plus N/b times the log-likelihood of exactly the subsampled rows
    log_joint, trace = log_density(handlers.seed(model.numpyro_model, rng_seed=3), (X,), kwargs, params)
    index = np.asarray(trace["data"]["value"])
    pointwise = np.asarray(model.log_likelihood(params, X, y))
    prior = float(model.log_prior(params, DataSummary(K, 0.0, Y_SCALE), P))
    np.testing.assert_allclose(float(log_joint), prior + N / BATCH * pointwise[index].sum(), rtol=1e-10)


def test_subsampled_likelihood_is_unbiased():
    """Averaged over subsamples, ``N/b * sum(loglik[batch])`` is the full-data log-likelihood."""
    model, y, K, params = _setup("poisson", (3,), seed=4)
    kwargs = dict(y=y, n_classes=K, y_scale=Y_SCALE, batch_size=BATCH)
    full = model.log_likelihood(params, X, y)
    prior = float(model.log_prior(params, DataSummary(K, 0.0, Y_SCALE), P))

    @jax.jit
    @jax.vmap
    def log_joint(key):
        return log_density(handlers.seed(model.numpyro_model, rng_seed=key), (X,), kwargs, params)[0]

    estimates = np.asarray(log_joint(jax.random.split(jax.random.PRNGKey(0), 400))) - prior
    se = estimates.std(ddof=1) / np.sqrt(estimates.size)
    assert abs(estimates.mean() - float(full.sum())) <= 5 * se, (estimates.mean(), float(full.sum()), se)
    # and the subsamples differ (the estimate is random, not a fixed batch)
    assert estimates.std() > 0


def test_jitted_log_density_matches():
    """The log joint is traceable (as in NUTS/SVI) and gives the same number under jit."""
    model, y, K, params = _setup("ordinal", (3,), seed=5)
    kwargs = dict(y=y, n_classes=K, y_scale=Y_SCALE)

    @jax.jit
    def joint(p):
        return log_density(model.numpyro_model, (X,), kwargs, p)[0]

    np.testing.assert_allclose(float(joint(params)), _direct(model, params, y, K), rtol=1e-10)


@pytest.mark.parametrize("hidden", [(), (3,)], ids=["depth0", "hidden3"])
def test_hierarchical_log_joint_matches(hidden):
    """With ``GaussianPrior(hierarchical=True)`` the per-layer scales are sites too, in both log joints."""
    model = br.RGLM("gaussian", hidden=hidden, prior=br.GaussianPrior(scale=0.8, hierarchical=True))
    y = Y["gaussian"]
    _, _, K, params = _setup("gaussian", hidden)
    for layer in range(len(hidden) + 1):
        params[f"prior_scale{layer}"] = jnp.asarray(0.3 + 0.4 * layer)
    kwargs = dict(y=y, n_classes=K, y_scale=Y_SCALE)
    numpyro_value, _ = log_density(model.numpyro_model, (X,), kwargs, params)
    np.testing.assert_allclose(float(numpyro_value), _direct(model, params, y, K), rtol=1e-12)
    params[f"prior_scale{len(hidden)}"] = jnp.asarray(2.0)  # the joint depends on the scale
    moved, _ = log_density(model.numpyro_model, (X,), kwargs, params)
    np.testing.assert_allclose(float(moved), _direct(model, params, y, K), rtol=1e-12)
    assert abs(float(moved) - float(numpyro_value)) > 1e-3


@pytest.mark.parametrize("family", ["gaussian", "ordinal"])
@pytest.mark.parametrize("hierarchical", [False, True], ids=["fixed", "hierarchical"])
def test_svi_objective_is_numpyro_potential(family, hierarchical):
    """The log joint the SVI step differentiates (unconstrained sites, log-Jacobian included) equals numpyro's
    potential energy of ``RGLM.numpyro_model`` at the same unconstrained point."""
    from numpyro.infer.util import potential_energy

    from bayes_rglm.inference.target import Layout

    model = br.RGLM(family, hidden=(3,), prior=br.GaussianPrior(scale=0.8, hierarchical=hierarchical))
    y = Y[family]
    K = model.family.validate(np.asarray(y), None).n_classes
    layout = Layout(model, P, K, standardised=False)
    rng = np.random.default_rng(5)
    theta = {name: jnp.asarray(rng.normal(scale=0.5, size=shape)) for name, shape in layout.shapes.items()}
    params, log_jacobian = layout.constrain(theta)
    ours = (
        model.log_likelihood(params, X, y).sum()
        + model.log_prior(params, DataSummary(K, 0.0, Y_SCALE), P)
        + log_jacobian
    )
    theirs = -potential_energy(model.numpyro_model, (X,), dict(y=y, n_classes=K, y_scale=Y_SCALE), theta)
    np.testing.assert_allclose(float(ours), float(theirs), rtol=1e-12)


@pytest.mark.parametrize("family", ["gaussian", "ordinal", "poisson"])
@pytest.mark.parametrize("hierarchical", [False, True], ids=["fixed", "hierarchical"])
def test_target_log_joint_is_numpyro_log_density(family, hierarchical):
    """The one log joint that NUTS and SVI use (``Layout.log_joint``, in standardised coordinates) equals
    numpyro's log density of ``RGLM.numpyro_model`` at the same point mapped to the original coordinates."""
    from numpyro.infer.util import potential_energy

    from bayes_rglm.inference.problem import to_original
    from bayes_rglm.inference.target import build

    model = br.RGLM(family, hidden=(3,), prior=br.GaussianPrior(scale=0.8, hierarchical=hierarchical))
    X_off = np.asarray(X) * np.array([2.0, 0.5]) + np.array([1.0, -3.0])  # off-centre, unequal scales
    data = model.prepare(X_off, np.asarray(Y[family]))
    target = build(model, data)
    K = data.summary.n_classes
    rng = np.random.default_rng(6)
    theta = {name: jnp.asarray(rng.normal(scale=0.5, size=shape)) for name, shape in target.layout.shapes.items()}
    shift, scale = np.asarray(target.problem.shift), np.asarray(target.problem.scale)
    assert np.all(np.abs(shift) > 0.1) and np.all(np.abs(scale - 1) > 0.1)  # the map is not the identity
    original = to_original(theta, shift, scale)
    kwargs = dict(y=jnp.asarray(Y[family]), n_classes=K, y_scale=data.summary.y_scale)
    theirs = -potential_energy(model.numpyro_model, (jnp.asarray(X_off),), kwargs, original)
    ours = target.layout.log_joint(theta, target.problem)
    np.testing.assert_allclose(float(ours), float(theirs), rtol=1e-12)
