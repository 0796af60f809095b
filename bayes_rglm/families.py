"""Exponential-family likelihoods for the output layer, and the registry of every family.

A :class:`Family` is a likelihood of ``y`` given the output linear predictor
``eta`` (shape ``(n, columns)``), a :class:`~bayes_rglm.links.Link` and the
family's nuisance parameters, plus its canonical and allowed links, default
priors for the nuisance parameters, and a check of ``y`` run before any
tracing.  Families are built by small factories (``Gaussian(...)``,
``Ordinal(...)``); the registry :data:`FAMILIES` maps names to factories.  The censored normal
(``Tobit``) and the cumulative-link model (``Ordinal``) live in :mod:`bayes_rglm.latent_families`
and are re-exported here.

Examples
--------
>>> import numpyro.distributions as dist
>>> from bayes_rglm import families
>>> fam = families.Gaussian(sigma_prior=dist.HalfCauchy(2.5))
>>> fam.canonical_link, [n.name for n in fam.nuisance]
('identity', ['sigma'])
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jax.scipy.special import gammaln
from scipy.special import xlogy

from .family import Family
from .latent_families import Ordinal, Tobit
from .likelihoods import categorical_logits
from .links import Link, get_link
from .nuisance import Nuisance, concentration_parameter, sigma_parameter
from .responses import (
    DataSummary,
    validate_bernoulli,
    validate_binomial,
    validate_counts,
    validate_labels,
    validate_positive,
    validate_real,
)

# --- the families --------------------------------------------------------------------------------

_BINARY_LINKS = ("logit", "probit", "cloglog", "tanh")


def _probability(link, eta):
    return jnp.exp(link.log_cdf(eta))


def _check_weights_kind(weights: str) -> bool:
    if weights not in ("prior", "frequency"):
        raise ValueError(f"weights={weights!r} is not known; use 'prior' (R's glm: dispersion / w) or 'frequency'")
    return weights == "prior"


def Gaussian(
    sigma_prior: dist.Distribution | None = None, sigma: float | None = None, weights: str = "prior"
) -> Family:
    """Normal likelihood ``y ~ N(f(eta), sigma^2)``; default ``sigma ~ HalfNormal(2.5 sd(y))``.

    ``sigma=`` fixes the noise scale (a known-variance model): no ``sigma``
    parameter is then estimated.  ``weights="prior"``: a row of weight ``w``
    has variance ``sigma^2 / w`` (R's ``glm``); ``"frequency"``: its
    log-likelihood counts ``w`` times (a repeated row; scikit-learn's
    ``sample_weight``).
    """
    prior_weights = _check_weights_kind(weights)
    if sigma is not None:
        if isinstance(sigma, bool) or not isinstance(sigma, int | float) or not 0 < sigma < np.inf:
            raise ValueError(f"sigma must be a positive finite number (a fixed noise scale), got {sigma!r}")
        if sigma_prior is not None:
            raise ValueError("give sigma (fixed) or sigma_prior (estimated), not both")
    fixed = None if sigma is None else float(sigma)

    def scale(nu):
        return nu["sigma"] if "sigma" in nu else fixed  # a fixed sigma is in nu only as a row's sigma / sqrt(w)

    return Family(
        "gaussian",
        "identity",
        ("identity", "log", "inverse", "sqrt", "tobit"),
        lambda eta, y, link, nu, trials: dist.Normal(link.inverse(eta[:, 0]), scale(nu)).log_prob(y),
        lambda eta, link, nu, trials: link.inverse(eta[:, 0]),
        lambda key, eta, link, nu, trials: link.inverse(eta[:, 0]) + scale(nu) * jax.random.normal(key, eta.shape[:1]),
        validate_real("gaussian"),
        (sigma_parameter(sigma_prior),) if fixed is None else (),
        description="real y: linear regression" + ("" if fixed is None else f" (sigma fixed at {fixed:g})"),
        options=(() if fixed is None else (("sigma", fixed),)) + (() if prior_weights else (("weights", weights),)),
        y_scaled=True,
        dispersion=(lambda nu, w: {**nu, "sigma": scale(nu) / jnp.sqrt(w)}) if prior_weights else None,
        unit_deviance=lambda y, mu, nu: np.square(y - mu),
        variance=lambda mu, nu: np.ones_like(mu),
        glm_dispersion=lambda nu: float(np.square(scale(nu))),
    )


def Bernoulli() -> Family:
    """``y ~ Bernoulli(F(eta))`` with ``log F`` and ``log(1-F)`` in stable form."""

    def log_likelihood(eta, y, link, nu, trials):
        e = eta[:, 0]
        if link.name == "logit":  # the canonical form y eta - log(1 + e^eta): one softplus instead of two
            return y * e - jax.nn.softplus(e)
        return y * link.log_cdf(e) + (1.0 - y) * link.log_sf(e)

    def proba(eta, link, nu):
        p = _probability(link, eta[:, 0])
        return jnp.stack([jnp.exp(link.log_sf(eta[:, 0])), p], axis=-1)

    return Family(
        "bernoulli",
        "logit",
        _BINARY_LINKS,
        log_likelihood,
        lambda eta, link, nu, trials: _probability(link, eta[:, 0]),
        lambda key, eta, link, nu, trials: (
            jax.random.uniform(key, eta.shape[:1]) < _probability(link, eta[:, 0])
        ).astype(eta.dtype),
        validate_bernoulli,
        proba=proba,
        description="binary y in {0, 1}",
        unit_deviance=_binomial_deviance,
        variance=lambda mu, nu: mu * (1.0 - mu),
        discrete=True,
        can_separate=True,
    )


def Binomial() -> Family:
    """``y ~ Binomial(trials, F(eta))``: ``y`` successes out of ``trials``."""

    def log_choose(y, trials):
        return gammaln(trials + 1.0) - gammaln(y + 1.0) - gammaln(trials - y + 1.0)

    def kernel(eta, y, link, nu, trials):
        e = eta[:, 0]
        if link.name == "logit":  # canonical form, as for Bernoulli
            return y * e - trials * jax.nn.softplus(e)
        return y * link.log_cdf(e) + (trials - y) * link.log_sf(e)

    def log_likelihood(eta, y, link, nu, trials):
        return log_choose(y, trials) + kernel(eta, y, link, nu, trials)

    def sample(key, eta, link, nu, trials):
        return jax.random.binomial(key, trials, _probability(link, eta[:, 0])).astype(eta.dtype)

    return Family(
        "binomial",
        "logit",
        _BINARY_LINKS,
        log_likelihood,
        lambda eta, link, nu, trials: trials * _probability(link, eta[:, 0]),
        sample,
        validate_binomial,
        uses_trials=True,
        description="successes out of trials (trials=)",
        unit_deviance=_binomial_deviance,
        variance=lambda mu, nu: mu * (1.0 - mu),
        kernel=kernel,
        log_base=log_choose,
        discrete=True,
        can_separate=True,
    )


def Categorical() -> Family:
    """Multinomial logit: K-1 output columns, class 0 the reference (its logit is 0)."""

    def log_likelihood(eta, y, link, nu, trials):
        logits = categorical_logits(eta)
        chosen = jnp.take_along_axis(logits, y.astype(jnp.int32)[:, None], axis=-1)[:, 0]
        return chosen - jax.nn.logsumexp(logits, axis=-1)

    def proba(eta, link, nu):
        return jax.nn.softmax(categorical_logits(eta), axis=-1)

    return Family(
        "categorical",
        "softmax",
        ("softmax",),
        log_likelihood,
        lambda eta, link, nu, trials: jnp.argmax(categorical_logits(eta), axis=-1).astype(eta.dtype),
        lambda key, eta, link, nu, trials: jax.random.categorical(key, categorical_logits(eta)).astype(eta.dtype),
        validate_labels("categorical"),
        proba=proba,
        description="labels 0..K-1 (predict gives the most probable class)",
        reference_class=True,
        discrete=True,
        can_separate=True,
    )


def _mean_family(
    name, canonical, allowed, log_density, sample, validate, nuisance, description, log_base=None, **attributes
):
    """A family by its mean: ``log_density(y, log_mu, nu)`` (+ ``log_base(y)`` when given).

    A mean outside the family's support (``mu <= 0`` from an identity or inverse link, the pole of the
    inverse link at ``eta = 0``, ``mu = 0`` from the sqrt link at ``eta = 0``) has log-likelihood ``-inf``
    and gradient 0, never NaN: the parameters are impossible, and the optimisers and samplers reject
    such a step.  Where the log link's ``exp(eta)`` overflows (``eta > 709``) the value is ``-inf``, its
    limit, and the gradient ``-inf``.
    """

    def kernel(eta, y, link, nu, trials):
        eta = eta[:, 0]
        inside = jnp.isfinite(link.log_mean(eta))  # log mu is NaN or infinite outside the support
        # Both sides of the where are finite at eta = 1 (mu = 1 for every such link), so no NaN gradient
        # leaks from the branch that is not taken.
        value = log_density(y, link.log_mean(jnp.where(inside, eta, 1.0)), nu)
        return jnp.where(inside, value, -jnp.inf)

    def log_likelihood(eta, y, link, nu, trials):
        value = kernel(eta, y, link, nu, trials)
        return value if log_base is None else value + log_base(y)

    return Family(
        name,
        canonical,
        allowed,
        log_likelihood,
        lambda eta, link, nu, trials: link.inverse(eta[:, 0]),
        lambda key, eta, link, nu, trials: sample(key, link.inverse(eta[:, 0]), nu).astype(eta.dtype),
        validate,
        nuisance,
        description=description,
        kernel=None if log_base is None else kernel,
        log_base=None if log_base is None else (lambda y, trials: log_base(y)),
        **attributes,
    )


# --- R's unit deviances (numpy, on the GLM scale: binomial y and mu are proportions) ---------------


def _binomial_deviance(y, mu, nu):
    return 2.0 * (xlogy(y, y / mu) + xlogy(1.0 - y, (1.0 - y) / (1.0 - mu)))


def _poisson_deviance(y, mu, nu):
    return 2.0 * (xlogy(y, y / mu) - (y - mu))


def _gamma_deviance(y, mu, nu):
    return -2.0 * (np.log(y / mu) - (y - mu) / mu)


def _negative_binomial_deviance(y, mu, nu):
    theta = np.asarray(nu["concentration"])
    return 2.0 * (xlogy(y, y / mu) - (y + theta) * np.log((y + theta) / (mu + theta)))


def _minus_log_factorial(y):
    return -gammaln(y + 1.0)


def Poisson() -> Family:
    """``y ~ Poisson(f(eta))``; ``log mu`` taken from the link in stable form."""

    def log_density(y, log_mu, nu):
        return jnp.where(y > 0, y * log_mu, 0.0) - jnp.exp(log_mu)  # - log y! is the base term

    return _mean_family(
        "poisson",
        "log",
        ("log", "sqrt", "identity"),
        log_density,
        lambda key, mu, nu: jax.random.poisson(key, mu),
        validate_counts("poisson"),
        (),
        "counts 0, 1, 2, ...",
        log_base=_minus_log_factorial,
        discrete=True,
        can_separate=True,
        unit_deviance=_poisson_deviance,
        variance=lambda mu, nu: mu,
    )


def Gamma(concentration_prior: dist.Distribution | None = None, weights: str = "prior") -> Family:
    """``y ~ Gamma(shape=a, rate=a/mu)`` with ``mu = f(eta)``; ``a`` is ``concentration``.

    ``weights="prior"``: a row of weight ``w`` has shape ``a w`` (dispersion ``1 / (a w)``, R's
    ``glm``); ``"frequency"``: its log-likelihood counts ``w`` times.
    """
    prior_weights = _check_weights_kind(weights)

    def log_density(y, log_mu, nu):
        a = nu["concentration"]
        return a * jnp.log(a) - a * log_mu + (a - 1.0) * jnp.log(y) - a * y * jnp.exp(-log_mu) - gammaln(a)

    return _mean_family(
        "gamma",
        "inverse",
        ("inverse", "log", "identity"),
        log_density,
        lambda key, mu, nu: jax.random.gamma(key, nu["concentration"], mu.shape) * mu / nu["concentration"],
        validate_positive("gamma"),
        (concentration_parameter(concentration_prior),),
        "positive real y",
        dispersion=(lambda nu, w: {**nu, "concentration": nu["concentration"] * w}) if prior_weights else None,
        options=() if prior_weights else (("weights", weights),),
        unit_deviance=_gamma_deviance,
        variance=lambda mu, nu: np.square(mu),
        glm_dispersion=lambda nu: float(1.0 / np.asarray(nu["concentration"])),
    )


def NegativeBinomial(concentration_prior: dist.Distribution | None = None) -> Family:
    """NB2: mean ``mu = f(eta)``, variance ``mu + mu^2 / concentration``."""

    def log_density(y, log_mu, nu):
        r = nu["concentration"]
        log_r_mu = jnp.logaddexp(jnp.log(r), log_mu)
        return (
            gammaln(y + r) - gammaln(r) + r * (jnp.log(r) - log_r_mu) + jnp.where(y > 0, y * (log_mu - log_r_mu), 0.0)
        )

    def sample(key, mu, nu):
        k1, k2 = jax.random.split(key)
        r = nu["concentration"]
        return jax.random.poisson(k2, jax.random.gamma(k1, r, mu.shape) * mu / r)

    return _mean_family(
        "negative_binomial",
        "log",
        ("log", "sqrt", "identity"),
        log_density,
        sample,
        validate_counts("negative_binomial"),
        (concentration_parameter(concentration_prior),),
        "over-dispersed counts",
        log_base=_minus_log_factorial,
        discrete=True,
        unit_deviance=_negative_binomial_deviance,
        variance=lambda mu, nu: mu + np.square(mu) / np.asarray(nu["concentration"]),
    )


FAMILIES: dict[str, Callable[[], Family]] = {
    "gaussian": Gaussian,
    "normal": Gaussian,
    "bernoulli": Bernoulli,
    "binomial": Binomial,
    "categorical": Categorical,
    "multinomial": Categorical,
    "poisson": Poisson,
    "gamma": Gamma,
    "tobit": Tobit,
    "ordinal": Ordinal,
    "negative_binomial": NegativeBinomial,
    "negbin": NegativeBinomial,
}


def get_family(family: str | Family) -> Family:
    """A family from its name or itself; unknown names get a ValueError listing the valid ones."""
    if isinstance(family, Family):
        return family
    if not isinstance(family, str):
        raise TypeError(f"family must be a name such as 'bernoulli' or a Family, got {type(family).__name__}")
    key = family.strip().lower()
    if key not in FAMILIES:
        raise ValueError(f"family={family!r} is not a known family; valid names: {', '.join(sorted(FAMILIES))}")
    return _named_family(key)


@functools.cache
def _named_family(key: str) -> Family:
    # One object per name, so equal specs hash equal and compiled solvers are reused.
    return FAMILIES[key]()


@functools.cache
def frequency_weighted(family: Family) -> Family:
    """``family`` with frequency weights: each row's log-likelihood counts ``w_i`` times (one object per family).

    The same family where weights already multiply the log-likelihood; for gaussian and gamma, whose prior
    weights divide the dispersion, the variant whose weights repeat rows (scikit-learn's ``sample_weight``).
    """
    if family.dispersion is None:
        return family
    return dataclasses.replace(family, dispersion=None, options=(*family.options, ("weights", "frequency")))


def resolve_link(family: Family, link: str | Link | None) -> Link:
    """The family's canonical link when ``link`` is None; otherwise the named link, if the family allows it."""
    return family.check_link(get_link(family.canonical_link if link is None else link))


__all__ = [
    "Bernoulli",
    "Binomial",
    "Categorical",
    "DataSummary",
    "FAMILIES",
    "Family",
    "Gamma",
    "Gaussian",
    "NegativeBinomial",
    "Nuisance",
    "Ordinal",
    "Poisson",
    "Tobit",
    "get_family",
]
