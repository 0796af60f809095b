"""Property-based numerics (hypothesis): every family with every allowed link, at |eta| up to 1e3 and extreme y.

The guarantee (families.py, ``_mean_family``): the log-likelihood and its gradient are never NaN.
- Links with a bounded mean (logit, probit, cloglog, tanh, softmax, the ordinal cumulative links) and the
  identity link of the gaussian and tobit families: both are finite everywhere, the tails in log space.
- Links whose mean can overflow or leave the support (log, sqrt, inverse, identity on a positive family):
  finite while the mean lies in [1e-200, 1e200]; beyond, the value is -inf (an impossible or overflowed
  mean) and the gradient is 0 or infinite, never NaN.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayes_rglm.families import Tobit, get_family
from bayes_rglm.links import get_link

pytestmark = pytest.mark.x64  # calls the families directly (see conftest)

ROWS = 6  # fixed shapes: one compiled program per family and link
BOUNDED = {"logit", "probit", "cloglog", "tanh", "softmax"}
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

eta_value = st.one_of(
    st.sampled_from([-1e3, -709.0, -40.0, -1e-300, 0.0, 1e-300, 40.0, 709.0, 1e3]),
    st.floats(-1e3, 1e3, allow_nan=False),
)
count = st.one_of(st.sampled_from([0.0, 1.0, 1e9]), st.integers(0, 10**9).map(float))
Y = {
    "gaussian": st.one_of(st.sampled_from([-1e9, 0.0, 1e9]), st.floats(-1e9, 1e9, allow_nan=False)),
    "bernoulli": st.sampled_from([0.0, 1.0]),
    "poisson": count,
    "negative_binomial": count,
    "gamma": st.one_of(st.sampled_from([1e-300, 1e-9, 1e9]), st.floats(1e-300, 1e9)),
    "tobit": st.one_of(st.sampled_from([0.0, 1e-12, 1e9]), st.floats(0.0, 1e9)),
    "categorical": st.sampled_from([0.0, 1.0, 2.0]),
    "ordinal": st.sampled_from([0.0, 1.0, 2.0]),
}
CASES = [
    (name, link)
    for name in ("gaussian", "bernoulli", "binomial", "poisson", "negative_binomial", "gamma", "tobit", "categorical")
    for link in get_family(name).allowed_links
]


def _nuisance(family, draw_scale: float, gap: float) -> dict:
    values = {
        "sigma": draw_scale,
        "concentration": draw_scale,
        "cutpoints": jnp.array([-gap / 2, gap / 2]),
    }
    return {n.name: values[n.name] for n in family.nuisance}


@functools.cache
def _compiled(family_key, link_name: str):
    """``(eta, y, trials, nu) -> (sum, its gradient, per-row values)``, compiled once per family and link."""
    family = Tobit(lower=0.0, upper=10.0) if family_key == "tobit_two_sided" else get_family(family_key)
    link = get_link(link_name)

    def rows(eta, y, trials, nu):
        return family.log_likelihood(eta, y, link, nu, trials)

    def run(eta, y, trials, nu):
        value, grad = jax.value_and_grad(lambda e: jnp.sum(rows(e, y, trials, nu)))(eta)
        return value, grad, rows(eta, y, trials, nu)

    return jax.jit(run)


def _check(name, link_name, eta, y, trials, nu):
    family, link = get_family(name), get_link(link_name)
    value, grad, rows = (np.asarray(a) for a in _compiled(name, link_name)(eta, y, trials, nu))
    assert not np.isnan(value) and not np.isnan(grad).any() and not np.isnan(rows).any()
    assert value < np.inf and (rows < np.inf).all()
    finite_everywhere = link_name in BOUNDED or (link_name == "identity" and family.name in ("gaussian", "tobit"))
    if finite_everywhere:
        assert np.isfinite(rows).all() and np.isfinite(grad).all(), (rows, grad)
        return
    with np.errstate(all="ignore"):
        mu = np.asarray(link.inverse(eta[:, 0]))
    ordinary = np.isfinite(mu) & (np.abs(mu) <= 1e100)
    if family.name != "gaussian":  # a positive mean
        ordinary &= mu >= 1e-100
    ordinary_grad = grad[:, 0][ordinary]
    assert np.isfinite(rows[ordinary]).all() and np.isfinite(ordinary_grad).all(), (eta, y, rows, grad)
    # Beyond: -inf (impossible or overflowed mean); nothing else.
    assert np.all((rows[~ordinary] == -np.inf) | np.isfinite(rows[~ordinary]))


@pytest.mark.parametrize("name, link", CASES)
@SETTINGS
@given(data=st.data())
def test_log_likelihood_and_gradient_are_never_nan(name, link, data):
    family = get_family(name)
    eta = np.array(data.draw(st.lists(eta_value, min_size=ROWS, max_size=ROWS)))
    if name == "binomial":
        trials = np.array(data.draw(st.lists(st.sampled_from([1.0, 10.0, 1e9]), min_size=ROWS, max_size=ROWS)))
        share = np.array(data.draw(st.lists(st.sampled_from([0.0, 0.5, 1.0]), min_size=ROWS, max_size=ROWS)))
        y = np.floor(share * trials)
    else:
        trials = np.ones(ROWS)
        y = np.array(data.draw(st.lists(Y[name], min_size=ROWS, max_size=ROWS)))
    if name == "categorical":  # K = 3 classes: two output columns
        other = np.array(data.draw(st.lists(eta_value, min_size=ROWS, max_size=ROWS)))
        eta2 = np.stack([eta, other], axis=1)
    else:
        eta2 = eta[:, None]
    scale = data.draw(st.sampled_from([1e-3, 1.0, 1e3]))
    _check(name, link, jnp.asarray(eta2), jnp.asarray(y), jnp.asarray(trials), _nuisance(family, scale, 1.0))


@pytest.mark.parametrize("link", get_family("ordinal").allowed_links)
@SETTINGS
@given(data=st.data())
def test_ordinal_is_finite_for_any_cutpoint_gap(link, data):
    family = get_family("ordinal")
    eta = np.array(data.draw(st.lists(eta_value, min_size=ROWS, max_size=ROWS)))[:, None]
    y = np.array(data.draw(st.lists(Y["ordinal"], min_size=ROWS, max_size=ROWS)))
    gap = data.draw(st.sampled_from([1e-8, 1e-3, 1.0, 50.0, 1e3]))
    nu = _nuisance(family, 1.0, gap)
    value, grad, _ = _compiled("ordinal", link)(jnp.asarray(eta), jnp.asarray(y), jnp.ones(ROWS), nu)
    assert np.isfinite(float(value)) and np.isfinite(np.asarray(grad)).all()


@SETTINGS
@given(data=st.data())
def test_two_sided_tobit_at_both_censoring_bounds(data):
    eta = np.array(data.draw(st.lists(eta_value, min_size=ROWS, max_size=ROWS)))[:, None]
    y = np.array(data.draw(st.lists(st.sampled_from([0.0, 10.0, 5.0]), min_size=ROWS, max_size=ROWS)))
    sigma = data.draw(st.sampled_from([1e-3, 1.0, 1e3]))
    value, grad, _ = _compiled("tobit_two_sided", "identity")(
        jnp.asarray(eta), jnp.asarray(y), jnp.ones(ROWS), {"sigma": sigma}
    )
    assert np.isfinite(float(value)) and np.isfinite(np.asarray(grad)).all()


@pytest.mark.parametrize("name, link", [("poisson", "identity"), ("gamma", "inverse"), ("negative_binomial", "sqrt")])
def test_a_mean_outside_the_support_is_impossible_not_nan(name, link):
    """Identity/inverse links can give mu <= 0: log-likelihood -inf, gradient 0 (the documented clamp)."""
    family = get_family(name)
    nu = _nuisance(family, 2.0, 1.0)
    y = jnp.array([1.0, 1.0])
    eta = jnp.array([[-0.5], [0.0]])
    value, grad, rows = (np.asarray(a) for a in _compiled(name, link)(eta, y, jnp.ones(2), nu))
    if link == "sqrt":  # mu = eta^2 > 0 at -0.5: only eta = 0 is outside
        assert np.isfinite(rows[0]) and rows[1] == -np.inf
    else:
        assert (rows == -np.inf).all()
    assert value == -np.inf and not np.isnan(np.asarray(grad)).any()
