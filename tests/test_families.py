"""Table-driven tests of every family in :data:`bayes_rglm.families.FAMILIES`.

- pointwise log-likelihoods against scipy.stats reference densities, for every allowed link;
- ``sample`` against ``mean`` (and against ``proba`` for families with classes) by Monte Carlo;
- ordinal and categorical ``proba`` normalised and finite;
- ``validate``, ``get_family``, ``resolve_link`` and the link check.

Call signature (see ``families.py``): ``family.log_likelihood(eta, y, link, nuisance, trials)`` with
``eta`` of shape ``(n, output columns)``.  Everything is float64 (``tests/conftest.py``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from bayes_rglm import families
from bayes_rglm.families import FAMILIES, DataSummary, Family, get_family, resolve_link
from bayes_rglm.links import LINKS, get_link

pytestmark = pytest.mark.x64  # calls internals directly (see conftest)

# --------------------------------------------------------------------------- the families

UNIQUE_FACTORIES = list(dict.fromkeys(FAMILIES.values()))  # one per family, registry order
FAMILY_NAMES = [factory().name for factory in UNIQUE_FACTORIES]


def family_params():
    return [pytest.param(factory(), id=factory().name) for factory in UNIQUE_FACTORIES]


# numpy references of the probability links' CDFs and of the mean links' inverses
CDF = {
    "logit": special.expit,
    "probit": special.ndtr,
    "cloglog": lambda e: -np.expm1(-np.exp(e)),
    "tanh": lambda e: 0.5 * (1.0 + np.tanh(e)),
}
INVERSE = {
    "identity": lambda e: e,
    "log": np.exp,
    "sqrt": np.square,
    "inverse": lambda e: 1.0 / e,
    "tobit": lambda e: np.maximum(e, 0.0),
}

POSITIVE_ETA = np.array([0.3, 0.9, 1.6, 2.5, 4.0])  # valid for every mean link (sqrt/inverse/identity need > 0)
REAL_ETA = np.array([-2.0, -0.4, 0.3, 1.2, 2.7])


class Case(NamedTuple):
    """One row of the log-likelihood table."""

    id: str
    family: Family
    link: str
    eta: np.ndarray  # (n, columns)
    y: np.ndarray
    nuisance: dict
    trials: np.ndarray | None
    reference: np.ndarray  # expected pointwise log-likelihood, (n,)


def _col(eta) -> np.ndarray:
    return np.asarray(eta, dtype=np.float64)[:, None]


def _gaussian_cases():
    family = families.Gaussian()
    y = np.array([0.4, -1.1, 2.3, 1.7, 3.9])
    sigma = 0.7
    for link in family.allowed_links:
        eta = POSITIVE_ETA if link != "identity" else REAL_ETA
        ref = stats.norm.logpdf(y, loc=INVERSE[link](eta), scale=sigma)
        yield Case(f"gaussian-{link}", family, link, _col(eta), y, {"sigma": sigma}, None, ref)
    # a fixed noise scale: no sigma parameter
    fixed = families.Gaussian(sigma=sigma)
    assert fixed.nuisance == ()
    ref = stats.norm.logpdf(y, loc=REAL_ETA, scale=sigma)
    yield Case("gaussian(sigma=0.7)-identity", fixed, "identity", _col(REAL_ETA), y, {}, None, ref)


def _bernoulli_cases():
    family = families.Bernoulli()
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    for link in family.allowed_links:
        ref = stats.bernoulli.logpmf(y, CDF[link](REAL_ETA))
        yield Case(f"bernoulli-{link}", family, link, _col(REAL_ETA), y, {}, None, ref)


def _binomial_cases():
    family = families.Binomial()
    trials = np.array([1.0, 5.0, 10.0, 3.0, 20.0])
    y = np.array([0.0, 2.0, 10.0, 1.0, 7.0])
    for link in family.allowed_links:
        ref = stats.binom.logpmf(y, trials.astype(int), CDF[link](REAL_ETA))
        yield Case(f"binomial-{link}", family, link, _col(REAL_ETA), y, {}, trials, ref)


def _categorical_cases():
    family = families.Categorical()
    eta = np.random.default_rng(4).normal(scale=2.0, size=(6, 3))  # K = 4 classes
    y = np.array([0.0, 1.0, 2.0, 3.0, 3.0, 0.0])
    logits = np.concatenate([np.zeros((6, 1)), eta], axis=1)  # class 0 the reference
    ref = special.log_softmax(logits, axis=1)[np.arange(6), y.astype(int)]
    for link in family.allowed_links:
        yield Case(f"categorical-{link}", family, link, eta, y, {}, None, ref)


def _poisson_cases():
    family = families.Poisson()
    y = np.array([0.0, 1.0, 3.0, 0.0, 7.0])
    for link in family.allowed_links:
        eta = REAL_ETA if link == "log" else POSITIVE_ETA
        ref = stats.poisson.logpmf(y, INVERSE[link](eta))
        yield Case(f"poisson-{link}", family, link, _col(eta), y, {}, None, ref)


def _gamma_cases():
    family = families.Gamma()
    y = np.array([0.2, 1.3, 0.7, 4.1, 2.2])
    a = 2.5
    for link in family.allowed_links:
        eta = REAL_ETA if link == "log" else POSITIVE_ETA
        mu = INVERSE[link](eta)
        ref = stats.gamma.logpdf(y, a, scale=mu / a)
        yield Case(f"gamma-{link}", family, link, _col(eta), y, {"concentration": a}, None, ref)


def _negative_binomial_cases():
    family = families.NegativeBinomial()
    y = np.array([0.0, 1.0, 4.0, 0.0, 12.0])
    r = 1.7
    for link in family.allowed_links:
        eta = REAL_ETA if link == "log" else POSITIVE_ETA
        mu = INVERSE[link](eta)
        ref = stats.nbinom.logpmf(y, r, r / (r + mu))
        yield Case(f"negative_binomial-{link}", family, link, _col(eta), y, {"concentration": r}, None, ref)


def _tobit_reference(y, eta, sigma, lower, upper):
    dens = stats.norm.logpdf(y, loc=eta, scale=sigma)
    at_lower = stats.norm.logcdf((lower - eta) / sigma)  # P(y* <= lower)
    at_upper = stats.norm.logsf((upper - eta) / sigma)  # P(y* >= upper)
    return np.where(y <= lower, at_lower, np.where(y >= upper, at_upper, dens))


def _tobit_cases():
    sigma = 1.1
    eta = np.array([-1.0, 0.5, 2.0, 0.3, -0.2, 6.0])
    tables = [
        ("tobit", families.Tobit(), np.array([0.0, 1.3, 2.2, 0.0, 0.7, 4.0]), 0.0, np.inf),
        ("tobit[0,5]", families.Tobit(lower=0.0, upper=5.0), np.array([0.0, 1.3, 5.0, 0.0, 0.7, 5.0]), 0.0, 5.0),
        (
            "tobit[-inf,2]",
            families.Tobit(lower=-np.inf, upper=2.0),
            np.array([-3.0, 1.3, 2.0, 0.0, 0.7, 2.0]),
            -np.inf,
            2.0,
        ),
    ]
    for name, family, y, lower, upper in tables:
        ref = _tobit_reference(y, eta, sigma, lower, upper)
        # both links mean "the latent mean is eta" (families.Tobit docstring)
        for link in family.allowed_links:
            yield Case(f"{name}-{link}", family, link, _col(eta), y, {"sigma": sigma}, None, ref)


def _ordinal_reference(y, eta, cutpoints, link):
    cum = CDF[link](cutpoints[None, :] - eta[:, None])  # P(y <= k), k = 0..K-2
    cum = np.concatenate([np.zeros((len(eta), 1)), cum, np.ones((len(eta), 1))], axis=1)
    probs = np.diff(cum, axis=1)
    return np.log(probs[np.arange(len(eta)), y.astype(int)])


def _ordinal_cases():
    family = families.Ordinal()
    cutpoints = np.array([-1.0, 0.3, 1.5])
    eta = np.array([-2.0, 0.0, 0.5, 1.0, 3.0, -0.7])
    y = np.array([0.0, 1.0, 2.0, 3.0, 1.0, 3.0])
    for link in family.allowed_links:
        ref = _ordinal_reference(y, eta, cutpoints, link)
        yield Case(f"ordinal-{link}", family, link, _col(eta), y, {"cutpoints": cutpoints}, None, ref)


LOGLIK_CASES = [
    case
    for cases in (
        _gaussian_cases,
        _bernoulli_cases,
        _binomial_cases,
        _categorical_cases,
        _poisson_cases,
        _gamma_cases,
        _negative_binomial_cases,
        _tobit_cases,
        _ordinal_cases,
    )
    for case in cases()
]


def test_every_family_and_allowed_link_has_reference_cases():
    covered = {(case.family.name, case.link) for case in LOGLIK_CASES}
    for factory in UNIQUE_FACTORIES:
        family = factory()
        for link in family.allowed_links:
            assert (family.name, link) in covered, f"add a scipy reference case for {family.name!r} / {link!r}"


def _jnp_nuisance(nu: dict) -> dict:
    return {k: jnp.asarray(v) for k, v in nu.items()}


@pytest.mark.parametrize("case", LOGLIK_CASES, ids=[case.id for case in LOGLIK_CASES])
def test_log_likelihood_matches_scipy(case: Case):
    link = get_link(case.link)
    trials = None if case.trials is None else jnp.asarray(case.trials)
    out = case.family.log_likelihood(
        jnp.asarray(case.eta), jnp.asarray(case.y), link, _jnp_nuisance(case.nuisance), trials
    )
    assert out.shape == case.y.shape
    np.testing.assert_allclose(np.asarray(out, dtype=np.float64), case.reference, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- Monte Carlo: sample vs mean

N_DRAWS = 20_000
N_SE = 5.0


class McCase(NamedTuple):
    id: str
    family: Family
    link: str
    eta: np.ndarray
    nuisance: dict = {}
    trials: np.ndarray | None = None


ORD_CUTS = {"cutpoints": np.array([-1.0, 0.3, 1.5])}
MC_CASES = [
    McCase("gaussian-identity", families.Gaussian(), "identity", _col([-1.0, 0.5, 3.0]), {"sigma": 0.8}),
    McCase("gaussian-log", families.Gaussian(), "log", _col([-1.0, 0.5, 1.5]), {"sigma": 0.8}),
    *[McCase(f"bernoulli-{name}", families.Bernoulli(), name, _col([-1.5, 0.0, 0.8])) for name in CDF],
    *[
        McCase(f"binomial-{name}", families.Binomial(), name, _col([-1.0, 0.2, 1.0]), {}, np.array([1.0, 4.0, 12.0]))
        for name in ("logit", "cloglog")
    ],
    McCase("poisson-log", families.Poisson(), "log", _col([-1.0, 0.5, 2.0]), {}),
    McCase("poisson-sqrt", families.Poisson(), "sqrt", _col([0.5, 1.0, 2.5]), {}),
    McCase("gamma-inverse", families.Gamma(), "inverse", _col([0.5, 1.0, 3.0]), {"concentration": 2.5}),
    McCase("gamma-log", families.Gamma(), "log", _col([-1.0, 0.5, 2.0]), {"concentration": 0.7}),
    McCase("negative_binomial-log", families.NegativeBinomial(), "log", _col([-1.0, 0.5, 2.0]), {"concentration": 1.7}),
    McCase("tobit", families.Tobit(), "identity", _col([-1.0, 0.3, 1.5]), {"sigma": 1.2}),
    McCase("tobit[0,5]", families.Tobit(lower=0.0, upper=5.0), "identity", _col([-0.5, 2.5, 5.5]), {"sigma": 1.5}),
    McCase("tobit[-inf,2]", families.Tobit(lower=-np.inf, upper=2.0), "tobit", _col([0.5, 2.0, 3.0]), {"sigma": 1.0}),
    *[
        McCase(f"ordinal-{name}", families.Ordinal(), name, _col([-1.5, 0.2, 2.0]), ORD_CUTS)
        for name in ("logit", "probit", "cloglog")
    ],
]


def test_every_family_has_monte_carlo_case():
    covered = {case.family.name for case in MC_CASES} | {"categorical"}  # categorical: test_categorical_*
    assert set(FAMILY_NAMES) <= covered, f"missing Monte-Carlo cases for {set(FAMILY_NAMES) - covered}"


def _draws(family: Family, link, eta, nu, trials, seed=0) -> np.ndarray:
    """``N_DRAWS`` independent draws of ``y`` (one key each), shape ``(N_DRAWS, n)``.

    One jit per case (the samplers' while-loops compile far faster jitted than op by op,
    and the persistent compilation cache of ``conftest.py`` makes re-runs cheap).
    """
    keys = jax.random.split(jax.random.PRNGKey(seed), N_DRAWS)
    draw = jax.jit(
        jax.vmap(lambda key, eta, nu, trials: family.sample(key, eta, link, nu, trials), in_axes=(0, None, None, None))
    )
    return np.asarray(draw(keys, eta, nu, trials), dtype=np.float64)


def _assert_within_se(draws: np.ndarray, expected: np.ndarray, what: str):
    mc_mean = draws.mean(axis=0)
    se = draws.std(axis=0, ddof=1) / np.sqrt(draws.shape[0])
    z = np.abs(mc_mean - expected) / np.maximum(se, 1e-12)
    assert np.all(z <= N_SE), f"{what}: Monte-Carlo mean {mc_mean} vs {expected}, |diff|/se = {z} (limit {N_SE})"


@pytest.mark.slow
@pytest.mark.parametrize("case", MC_CASES, ids=[case.id for case in MC_CASES])
def test_sample_mean_matches_mean(case: McCase):
    link = get_link(case.link)
    eta, nu = jnp.asarray(case.eta), _jnp_nuisance(case.nuisance)
    trials = None if case.trials is None else jnp.asarray(case.trials)
    mean = np.asarray(case.family.mean(eta, link, nu, trials), dtype=np.float64)
    assert mean.shape == (case.eta.shape[0],)
    draws = _draws(case.family, link, eta, nu, trials)
    assert draws.shape == (N_DRAWS, case.eta.shape[0])
    _assert_within_se(draws, mean, f"{case.id} mean")


CLASS_CASES = [
    McCase("bernoulli-probit", families.Bernoulli(), "probit", _col([-1.5, 0.0, 0.8]), {}),
    McCase("categorical", families.Categorical(), "softmax", np.array([[0.5, -1.0, 1.2], [-2.0, 0.0, 0.3]]), {}),
    McCase("ordinal-logit", families.Ordinal(), "logit", _col([-1.5, 0.2, 2.0]), ORD_CUTS),
]


@pytest.mark.slow
@pytest.mark.parametrize("case", CLASS_CASES, ids=[case.id for case in CLASS_CASES])
def test_sample_frequencies_match_proba(case: McCase):
    """For families with classes (categorical's ``mean`` is the modal class, so its ``proba`` is the check)."""
    link = get_link(case.link)
    eta, nu = jnp.asarray(case.eta), _jnp_nuisance(case.nuisance)
    proba = np.asarray(case.family.proba(eta, link, nu), dtype=np.float64)  # (n, K)
    draws = _draws(case.family, link, eta, nu, None, seed=1).astype(int)
    k = proba.shape[1]
    assert draws.min() >= 0 and draws.max() < k
    for cls in range(k):
        _assert_within_se((draws == cls).astype(np.float64), proba[:, cls], f"{case.id} P(y={cls})")


def test_categorical_mean_is_modal_class():
    eta = jnp.asarray([[0.5, -1.0, 1.2], [-2.0, -1.0, -0.3], [3.0, 0.0, 0.0]])
    family, link = families.Categorical(), get_link("softmax")
    mean = np.asarray(family.mean(eta, link, {}, None))
    np.testing.assert_array_equal(mean, np.argmax(np.asarray(family.proba(eta, link, {})), axis=1))
    np.testing.assert_array_equal(mean, [3, 0, 1])


# --------------------------------------------------------------------------- proba normalisation

EXTREME_ETA = np.array([-1000.0, -300.0, -40.0, -5.0, 0.0, 5.0, 40.0, 300.0, 1000.0])


@pytest.mark.parametrize(
    "link",
    [pytest.param(name, marks=[] if name == "cloglog" else []) for name in families.Ordinal().allowed_links],
)
def test_ordinal_proba_sums_to_one_and_is_finite_up_to_1e3(link):
    family = families.Ordinal()
    nu = {"cutpoints": jnp.asarray([-1.0, 0.3, 1.5])}
    proba = np.asarray(family.proba(jnp.asarray(_col(EXTREME_ETA)), get_link(link), nu), dtype=np.float64)
    assert proba.shape == (len(EXTREME_ETA), 4)
    bad = EXTREME_ETA[~np.isfinite(proba).all(axis=1)]
    assert bad.size == 0, f"ordinal/{link}: non-finite proba at eta={bad}: {proba}"
    assert (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    mean = np.asarray(family.mean(jnp.asarray(_col(EXTREME_ETA)), get_link(link), nu, None))
    assert np.isfinite(mean).all() and (mean >= 0).all() and (mean <= 3).all()


@pytest.mark.parametrize("link", families.Ordinal().allowed_links)
def test_ordinal_proba_is_monotone_in_eta(link):
    """Larger eta moves mass to higher classes: P(y <= k) = F(c_k - eta) decreases."""
    family = families.Ordinal()
    nu = {"cutpoints": jnp.asarray([-1.0, 0.3, 1.5])}
    eta = np.linspace(-4.0, 4.0, 17)
    proba = np.asarray(family.proba(jnp.asarray(_col(eta)), get_link(link), nu))
    cum = np.cumsum(proba, axis=1)[:, :-1]
    assert np.all(np.diff(cum, axis=0) <= 1e-12)
    np.testing.assert_allclose(cum, CDF[link](np.array([-1.0, 0.3, 1.5])[None, :] - eta[:, None]), atol=1e-12)


def test_categorical_proba_sums_to_one():
    rng = np.random.default_rng(5)
    eta = np.concatenate([rng.normal(scale=3.0, size=(6, 4)), [[1000.0, -1000.0, 0.0, 3.0]], [[-1000.0] * 4]])
    family = families.Categorical()
    proba = np.asarray(family.proba(jnp.asarray(eta), get_link("softmax"), {}), dtype=np.float64)
    assert proba.shape == (8, 5)
    assert np.isfinite(proba).all() and (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    expected = special.softmax(np.concatenate([np.zeros((8, 1)), eta], axis=1), axis=1)
    np.testing.assert_allclose(proba, expected, atol=1e-12)


def test_bernoulli_proba_columns():
    family, eta = families.Bernoulli(), _col(REAL_ETA)
    for name in family.allowed_links:
        proba = np.asarray(family.proba(jnp.asarray(eta), get_link(name), {}))
        np.testing.assert_allclose(proba, np.stack([1 - CDF[name](REAL_ETA), CDF[name](REAL_ETA)], axis=1), atol=1e-12)


# --------------------------------------------------------------------------- validate / registry / links

VALIDATE_CASES = [
    ("gaussian", np.array([0.3, -1.2, 2.0, 0.1]), None, 1),
    ("bernoulli", np.array([0.0, 1.0, 1.0, 0.0]), None, 2),
    ("binomial", np.array([0.0, 2.0, 3.0]), np.array([3.0, 3.0, 5.0]), 2),
    ("categorical", np.array([0.0, 1.0, 2.0, 3.0, 1.0]), None, 4),
    ("ordinal", np.array([0.0, 2.0, 1.0, 2.0]), None, 3),
    ("poisson", np.array([0.0, 1.0, 5.0]), None, 1),
    ("gamma", np.array([0.5, 2.0, 1.1]), None, 1),
    ("negative_binomial", np.array([0.0, 3.0, 9.0]), None, 1),
    ("tobit", np.array([0.0, 1.2, 3.0]), None, 1),
]


def test_every_family_has_validate_case():
    assert {case[0] for case in VALIDATE_CASES} == set(FAMILY_NAMES)


@pytest.mark.parametrize("name, y, trials, n_classes", VALIDATE_CASES, ids=[c[0] for c in VALIDATE_CASES])
def test_validate_returns_n_classes(name, y, trials, n_classes):
    summary = get_family(name).validate(y, trials)
    assert isinstance(summary, DataSummary)
    assert summary.n_classes == n_classes
    if name in ("bernoulli", "binomial", "categorical", "ordinal"):  # class frequencies (ordinal cutpoint starts)
        assert len(summary.class_freq) == n_classes
        np.testing.assert_allclose(sum(summary.class_freq), 1.0)
    assert summary.y_scale > 0


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_get_family_resolves_every_name(name):
    family = get_family(name)
    assert isinstance(family, Family)
    assert family.name == FAMILIES[name]().name
    assert get_family(f" {name.upper()} ") is family
    assert get_family(family) is family


@pytest.mark.parametrize("name", ["weibull", "", "gausian"])
def test_get_family_unknown_name_lists_valid_names(name):
    with pytest.raises(ValueError) as info:
        get_family(name)
    message = str(info.value)
    missing = [valid for valid in FAMILIES if valid not in message]
    assert not missing, f"message does not list {missing}: {message}"


@pytest.mark.parametrize("family", family_params())
def test_resolve_link_none_gives_canonical_link(family: Family):
    assert family.canonical_link in family.allowed_links
    link = resolve_link(family, None)
    assert link is get_link(family.canonical_link)
    for name in family.allowed_links:
        assert resolve_link(family, name) is get_link(name)  # every allowed link is a registered one


@pytest.mark.parametrize("family", family_params())
def test_disallowed_link_raises_naming_allowed_links(family: Family):
    disallowed = [link for link in LINKS if link.name not in family.allowed_links]
    assert disallowed
    for link in disallowed:
        for name in (link.name, *link.aliases):
            with pytest.raises(ValueError) as info:
                resolve_link(family, name)
            message = str(info.value)
            assert family.name in message and link.name in message
            missing = [allowed for allowed in family.allowed_links if allowed not in message]
            assert not missing, f"message does not name allowed links {missing}: {message}"


@pytest.mark.parametrize("family", ["bernoulli", "binomial"])
def test_logit_canonical_form_is_stable_at_extreme_eta(family):
    """The canonical logit form ``y eta - t log(1 + e^eta)`` equals scipy's log-pmf, finite at |eta| up to 800."""
    from scipy.special import expit
    from scipy.stats import binom

    eta = np.array([-800.0, -40.0, -3.0, 0.0, 2.5, 40.0, 800.0])
    trials = np.full(eta.size, 1.0 if family == "bernoulli" else 7.0)
    fam, link = get_family(family), get_link("logit")
    for y in (np.zeros(eta.size), trials.copy(), np.minimum(trials, 3.0)):
        got = np.asarray(fam.log_likelihood(jnp.asarray(eta[:, None]), jnp.asarray(y), link, {}, jnp.asarray(trials)))
        assert np.all(np.isfinite(got)) and np.all(got <= 0.0)
        # log p = y log F + (t - y) log(1 - F) in log-sigmoid form, the exact reference at any eta
        log_f, log_sf = -np.logaddexp(0.0, -eta), -np.logaddexp(0.0, eta)
        log_choose = binom.logpmf(y, trials, 0.5) - trials * np.log(0.5)
        expected = log_choose + y * log_f + (trials - y) * log_sf
        # absolute error of order eps * |eta| is all a sum of log-likelihoods can resolve
        assert np.all(np.abs(got - expected) <= 1e-13 * (np.maximum(1.0, np.abs(eta)) + np.abs(expected)))
        moderate = np.abs(eta) < 30  # expit rounds to 1 beyond that
        np.testing.assert_allclose(got[moderate], binom.logpmf(y, trials, expit(eta))[moderate], rtol=1e-12, atol=1e-14)
