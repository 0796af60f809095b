"""Stable building blocks of the categorical, ordinal and censored-normal likelihoods.

Everything works on log scale so that it stays finite for ``|eta|`` up to 1e3.

Examples
--------
>>> import jax.numpy as jnp
>>> from bayes_rglm.links import get_link
>>> lp = ordinal_log_probs(jnp.zeros(1), jnp.array([-1.0, 1.0]), get_link("logit"))
>>> round(float(jnp.exp(lp).sum()), 12)
1.0
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import log_ndtr, ndtr

from .links import Link, log1mexp

_LOG_SQRT_2PI = 0.9189385332046727


def categorical_logits(eta: jax.Array) -> jax.Array:
    """Prepend the reference class's logit 0: ``(n, K-1) -> (n, K)``."""
    return jnp.concatenate([jnp.zeros(eta.shape[:-1] + (1,), eta.dtype), eta], axis=-1)


def _log_diff(log_a: jax.Array, log_b: jax.Array) -> jax.Array:
    """``log(exp(log_a) - exp(log_b))`` for ``log_a >= log_b``; ``-inf`` when both are ``-inf``."""
    empty = ~jnp.isfinite(log_a)
    safe_a = jnp.where(empty, 0.0, log_a)
    safe_b = jnp.where(empty, -1.0, log_b)
    return jnp.where(empty, -jnp.inf, safe_a + log1mexp(safe_b - safe_a))


def ordinal_log_probs(eta: jax.Array, cutpoints: jax.Array, link: Link) -> jax.Array:
    """``log P(y = k)``, shape ``(n, K)``, for ``P(y <= k) = F(cutpoints[k] - eta)``.

    The middle classes use ``F(a) - F(b)`` in the lower tail and
    ``S(b) - S(a)`` (``S = 1 - F``) in the upper tail, whichever loses no digits.
    """
    z = cutpoints[None, :] - eta[:, None]  # (n, K-1)
    log_cdf, log_sf = link.log_cdf(z), link.log_sf(z)
    first = log_cdf[:, :1]
    last = log_sf[:, -1:]
    upper_tail = (z[:, 1:] + z[:, :-1]) > 0
    middle = jnp.where(
        upper_tail,
        _log_diff(log_sf[:, :-1], log_sf[:, 1:]),
        _log_diff(log_cdf[:, 1:], log_cdf[:, :-1]),
    )
    return jnp.concatenate([first, middle, last], axis=-1)


def _normal_logpdf(z: jax.Array) -> jax.Array:
    return -0.5 * z * z - _LOG_SQRT_2PI


def tobit_log_likelihood(y, latent_mean, sigma, lower: float, upper: float) -> jax.Array:
    """Censored normal log-likelihood: ``log Phi((lower-mu)/sigma)`` at ``y == lower``,
    ``log Phi((mu-upper)/sigma)`` at ``y == upper``, the normal log-density elsewhere."""
    z = (y - latent_mean) / sigma
    density = _normal_logpdf(z) - jnp.log(sigma)
    at_lower = log_ndtr((lower - latent_mean) / sigma) if math.isfinite(lower) else density
    at_upper = log_ndtr((latent_mean - upper) / sigma) if math.isfinite(upper) else density
    return jnp.where(y <= lower, at_lower, jnp.where(y >= upper, at_upper, density))


def tobit_mean(latent_mean, sigma, lower: float, upper: float) -> jax.Array:
    """``E[min(max(y*, lower), upper)]`` for ``y* ~ N(mu, sigma^2)``."""
    mean = latent_mean
    if math.isfinite(lower):
        a = (lower - latent_mean) / sigma
        mean = mean + (lower - latent_mean) * ndtr(a) + sigma * jnp.exp(_normal_logpdf(a))
    if math.isfinite(upper):
        b = (upper - latent_mean) / sigma
        mean = mean - (latent_mean - upper) * ndtr(-b) - sigma * jnp.exp(_normal_logpdf(b))
    return mean
