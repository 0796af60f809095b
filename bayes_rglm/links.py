"""Links and their inverses (activations): one registry entry per row of the seed's table.

A link ``g`` maps a mean to the linear predictor, ``eta = g(mu)``; its inverse
``f = g^{-1}`` maps a linear predictor back to a mean and is, in a deep net,
the activation of a hidden layer.  Every link here is known by its
statistical name and by its deep-learning name (``logit``/``sigmoid``,
``tobit``/``relu``, ...).

Binary and ordinal families need more than ``f``: they need the log of a CDF
``F`` and of its complement, evaluated stably for ``|eta|`` up to 1e3.  For
the links that define a probability (logit, probit, cloglog, tanh) ``log_cdf``
and ``log_sf`` give ``log F(eta)`` and ``log(1 - F(eta))``.

Examples
--------
>>> from bayes_rglm.links import get_link
>>> get_link("relu").name
'tobit'
>>> float(get_link("sigmoid").inverse(0.0))
0.5
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
from jax.scipy.special import log_ndtr, ndtr, ndtri

Array = jax.Array


def log1mexp(x: Array) -> Array:
    """``log(1 - exp(x))`` for ``x <= 0``, accurate near 0 and for large ``-x`` (Maechler 2012).

    Each branch gets only inputs it is finite on, so gradients stay finite too.
    """
    x = jnp.minimum(x, -1e-300)
    near_zero = x > -0.6931471805599453
    small = jnp.where(near_zero, x, -1.0)
    large = jnp.where(near_zero, -1.0, x)
    return jnp.where(near_zero, jnp.log(-jnp.expm1(small)), jnp.log1p(-jnp.exp(large)))


def _cloglog_log_cdf(eta: Array) -> Array:
    """``log(1 - exp(-exp(eta)))``: ``eta - exp(eta)/2`` far left, ``log1p(-exp(-exp(eta)))`` right."""
    left = eta < -30.0
    right = eta > 0.0
    # Safe inputs per branch by where, not clip: clip halves the gradient at its bounds.
    e_left = jnp.where(left, eta, -31.0)
    e_mid = jnp.where(left | right, -1.0, eta)
    e_right = jnp.where(right, jnp.minimum(eta, 700.0), 1.0)
    return jnp.where(
        left,
        e_left - 0.5 * jnp.exp(e_left),
        jnp.where(right, jnp.log1p(-jnp.exp(-jnp.exp(e_right))), jnp.log(-jnp.expm1(-jnp.exp(e_mid)))),
    )


def _cloglog_log_sf(eta: Array) -> Array:
    """``log(exp(-exp(eta))) = -exp(eta)``, clamped at ``eta = 500`` (a survival probability of
    ``exp(-1.4e217)``, zero in any float), so that it stays finite times a binomial's trials (up to
    1e90) and its gradient is never ``inf * 0``."""
    return -jnp.exp(jnp.minimum(eta, 500.0))


@dataclass(frozen=True)
class Link:
    """A link function ``g`` with its inverse ``f`` (the activation).

    Parameters
    ----------
    name : str
        Statistical name (``"logit"``).
    aliases : tuple of str
        Other accepted names, deep-learning names included (``"sigmoid"``).
    link : callable
        ``eta = g(mu)``.
    inverse : callable
        ``mu = f(eta)``; used as the hidden-layer activation.
    log_cdf, log_sf : callable or None
        ``log F(eta)`` and ``log(1 - F(eta))`` for links that define a
        probability ``F`` (binary and ordinal families), in stable form.
    log_inverse : callable or None
        ``log f(eta)`` in stable form, for positive means (count and gamma
        families); ``None`` means ``log(f(eta))``.
    description : str
        One line for tables and error messages.
    """

    name: str
    aliases: tuple[str, ...]
    link: Callable[[Array], Array]
    inverse: Callable[[Array], Array]
    log_cdf: Callable[[Array], Array] | None = None
    log_sf: Callable[[Array], Array] | None = None
    log_inverse: Callable[[Array], Array] | None = field(default=None)
    description: str = ""

    @property
    def is_probability(self) -> bool:
        """Whether the link defines a CDF, so it can serve binary and ordinal families."""
        return self.log_cdf is not None

    def log_mean(self, eta: Array) -> Array:
        """``log f(eta)``, stably where a closed form is known."""
        if self.log_inverse is not None:
            return self.log_inverse(eta)
        return jnp.log(self.inverse(eta))

    def logit_probability(self, eta: Array) -> Array:
        """``log F(eta) - log(1 - F(eta))``: the log-odds of the probability the link defines."""
        return self.log_cdf(eta) - self.log_sf(eta)


def _softmax_link(p: Array) -> Array:
    logp = jnp.log(p)
    return logp - logp[..., :1]


LINKS: tuple[Link, ...] = (
    Link("identity", ("linear", "none"), lambda mu: mu, lambda eta: eta, description="real: linear regression"),
    Link(
        "logit",
        ("sigmoid", "logistic", "cumulative_logit", "cumlogit"),
        lambda mu: jnp.log(mu) - jnp.log1p(-mu),
        jax.nn.sigmoid,
        log_cdf=jax.nn.log_sigmoid,
        log_sf=lambda eta: jax.nn.log_sigmoid(-eta),
        log_inverse=jax.nn.log_sigmoid,
        description="binary / ordinal: logistic CDF 1/(1+exp(-eta))",
    ),
    Link(
        "probit",
        ("normal_cdf", "gauss_cdf", "phi", "cumulative_probit"),
        ndtri,
        ndtr,
        log_cdf=log_ndtr,
        log_sf=lambda eta: log_ndtr(-eta),
        log_inverse=log_ndtr,
        description="binary / ordinal: Gauss CDF Phi(eta)",
    ),
    Link(
        "cloglog",
        ("gumbel", "complementary_log_log", "cumulative_cloglog"),
        lambda mu: jnp.log(-jnp.log1p(-mu)),
        lambda eta: -jnp.expm1(-jnp.exp(eta)),
        log_cdf=_cloglog_log_cdf,
        log_sf=_cloglog_log_sf,
        log_inverse=_cloglog_log_cdf,
        description="binary: Gumbel CDF 1-exp(-exp(eta))",
    ),
    Link(
        "tanh",
        ("hyperbolic_tangent",),
        # As a mean of a binary outcome tanh enters as (1 + tanh(eta)) / 2 = sigmoid(2 eta).
        lambda mu: jnp.arctanh(mu),
        jnp.tanh,
        log_cdf=lambda eta: jax.nn.log_sigmoid(2.0 * eta),
        log_sf=lambda eta: jax.nn.log_sigmoid(-2.0 * eta),
        description="binary: (1+tanh(eta))/2; activation tanh(eta)",
    ),
    Link(
        "softmax",
        ("multinomial_logit", "mlogit"),
        _softmax_link,
        lambda eta: jax.nn.softmax(eta, axis=-1),
        description="categorical: softmax over classes (class 0 the reference)",
    ),
    Link(
        "log",
        ("exp", "exponential"),
        jnp.log,
        jnp.exp,
        log_inverse=lambda eta: eta,
        description="counts: exp(eta)",
    ),
    Link(
        "sqrt",
        ("square", "square_root"),
        jnp.sqrt,
        jnp.square,
        log_inverse=lambda eta: 2.0 * jnp.log(jnp.abs(eta)),
        description="counts: eta**2",
    ),
    Link(
        "inverse",
        ("reciprocal", "inverse_power"),
        lambda mu: 1.0 / mu,
        lambda eta: 1.0 / eta,
        log_inverse=lambda eta: -jnp.log(eta),
        description="non-negative: 1/eta (pole at 0: fragile as an activation)",
    ),
    Link(
        "tobit",
        ("relu", "max"),
        lambda mu: mu,
        jax.nn.relu,
        description="sparse: max(0, eta)",
    ),
)

_REGISTRY: dict[str, Link] = {}
for _link in LINKS:
    for _key in (_link.name, *_link.aliases):
        _REGISTRY[_key] = _link


def link_names() -> list[str]:
    """Every accepted name (statistical and deep-learning), sorted."""
    return sorted(_REGISTRY)


def get_link(name: str | Link, argument: str = "link") -> Link:
    """Look a link up by any of its names.

    Raises
    ------
    TypeError
        If ``name`` is not a string or a :class:`Link`.
    ValueError
        If the name is unknown; the message lists the valid names.
    """
    if isinstance(name, Link):
        return name
    if not isinstance(name, str):
        raise TypeError(f"{argument} must be a link name such as 'logit' or 'relu', got {type(name).__name__}")
    key = name.strip().lower()
    if key not in _REGISTRY:
        raise ValueError(f"{argument}={name!r} is not a known {argument}; valid names: {', '.join(link_names())}")
    return _REGISTRY[key]
