"""The families with a latent continuous response: the censored normal (``Tobit``) and the cumulative-link
model (``Ordinal``), whose observed ``y`` is a censored or cut-up latent ``y* = eta + noise``.

Registered by name in :data:`bayes_rglm.families.FAMILIES` (``"tobit"``, ``"ordinal"``), like the
exponential families.

Examples
--------
>>> from bayes_rglm.latent_families import Ordinal, Tobit
>>> Tobit(lower=0.0).canonical_link, Ordinal().has_output_bias
('identity', False)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

from .family import Family
from .likelihoods import ordinal_log_probs, tobit_log_likelihood, tobit_mean
from .nuisance import cutpoints_parameter, sigma_parameter
from .responses import validate_labels, validate_tobit


def Tobit(lower: float = 0.0, upper: float = np.inf, sigma_prior: dist.Distribution | None = None) -> Family:
    """Censored normal: latent ``y* ~ N(eta, sigma^2)``, observed ``y = min(max(y*, lower), upper)``.

    ``predict`` gives the censored mean ``E[y]``; the link ``tobit`` (``max``)
    and ``identity`` both mean the latent mean is ``eta``.
    """
    lower, upper = float(lower), float(upper)
    if not lower < upper:
        raise ValueError(f"Tobit needs lower < upper, got lower={lower}, upper={upper}")

    def sample(key, eta, link, nu, trials):
        latent = eta[:, 0] + nu["sigma"] * jax.random.normal(key, eta.shape[:1])
        return jnp.clip(latent, lower, upper)

    return Family(
        "tobit",
        "identity",
        ("identity", "tobit"),
        lambda eta, y, link, nu, trials: tobit_log_likelihood(y, eta[:, 0], nu["sigma"], lower, upper),
        lambda eta, link, nu, trials: tobit_mean(eta[:, 0], nu["sigma"], lower, upper),
        sample,
        validate_tobit(lower, upper),
        (sigma_parameter(sigma_prior),),
        description=f"real y censored to [{lower:g}, {upper:g}]",
        options=(("lower", lower), ("upper", upper)),
        y_scaled=True,
        latent_mean=True,
    )


def Ordinal(cutpoints_prior: dist.Distribution | None = None) -> Family:
    """Cumulative-link model: ``P(y <= k) = F(cutpoints[k] - eta)``; no output bias.

    Default prior: each cutpoint ``N(0, 10^2)``, restricted to increasing vectors.
    """

    def log_likelihood(eta, y, link, nu, trials):
        log_probs = ordinal_log_probs(eta[:, 0], nu["cutpoints"], link)
        return jnp.take_along_axis(log_probs, y.astype(jnp.int32)[:, None], axis=-1)[:, 0]

    def proba(eta, link, nu):
        return jnp.exp(ordinal_log_probs(eta[:, 0], nu["cutpoints"], link))

    def mean(eta, link, nu, trials):
        p = proba(eta, link, nu)
        return p @ jnp.arange(p.shape[-1], dtype=p.dtype)

    def sample(key, eta, link, nu, trials):
        log_probs = ordinal_log_probs(eta[:, 0], nu["cutpoints"], link)
        return jax.random.categorical(key, log_probs).astype(eta.dtype)

    return Family(
        "ordinal",
        "logit",
        ("logit", "probit", "cloglog"),
        log_likelihood,
        mean,
        sample,
        validate_labels("ordinal"),
        (cutpoints_parameter(cutpoints_prior),),
        proba=proba,
        has_output_bias=False,
        description="ordered labels 0..K-1 (predict gives the mean score)",
        discrete=True,
        can_separate=True,
    )


__all__ = ["Ordinal", "Tobit"]
