"""Family parameters other than the linear predictor: ``sigma``, ``concentration``, ``cutpoints``.

Each :class:`Nuisance` carries its support (a numpyro constraint, so every
method can work on the unconstrained scale), its default prior built from a
:class:`~bayes_rglm.responses.DataSummary`, a starting value, and the user's
prior when one was given.

Examples
--------
>>> import numpyro.distributions as dist
>>> sigma_parameter(dist.HalfCauchy(2.5)).name
'sigma'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from numpyro.distributions import constraints

from .links import Link
from .responses import DataSummary
from .runtime import compiled_cache


@dataclass(frozen=True, eq=False)
class Nuisance:
    """A family parameter other than the linear predictor (``sigma``, ``concentration``, ``cutpoints``).

    ``prior`` is the user's numpyro distribution or ``None`` for the default,
    which :attr:`default_prior` builds from the data summary.
    """

    name: str
    constraint: constraints.Constraint
    default_prior: Callable[[DataSummary], dist.Distribution]
    initial: Callable[[DataSummary, Link], np.ndarray]
    prior: dist.Distribution | None = None

    def shape(self, summary: DataSummary) -> tuple[int, ...]:
        return (summary.n_classes - 1,) if self.name == "cutpoints" else ()

    def prior_for(self, summary: DataSummary) -> dist.Distribution:
        return self.prior if self.prior is not None else self.default_prior(summary)


def sigma_parameter(prior):
    return Nuisance(
        "sigma",
        constraints.positive,
        lambda s: dist.HalfNormal(2.5 * s.y_scale),
        lambda s, link: np.asarray(s.y_scale),
        prior,
    )


def concentration_parameter(prior):
    return Nuisance(
        "concentration", constraints.positive, lambda s: dist.Exponential(0.01), lambda s, link: np.asarray(1.0), prior
    )


def inverse_cdf(link: Link, p: np.ndarray) -> np.ndarray:
    """Solve ``F(eta) = p`` for the CDF a probability link defines (80 bisection steps in one compiled call)."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.asarray(_bisection(link)(jax.device_put(p)))


@compiled_cache(maxsize=None)
def _bisection(link: Link):
    def run(p):
        def body(_, bounds):
            lo, hi = bounds
            mid = 0.5 * (lo + hi)
            below = jnp.exp(link.log_cdf(mid)) < p
            return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

        lo, hi = jax.lax.fori_loop(0, 80, body, (jnp.full_like(p, -40.0), jnp.full_like(p, 40.0)))
        return 0.5 * (lo + hi)

    return jax.jit(run)


def cutpoints_parameter(prior):
    def initial(s, link):
        return inverse_cdf(link, np.cumsum(s.class_freq)[:-1])

    return Nuisance("cutpoints", constraints.ordered_vector, lambda s: dist.Normal(0.0, 10.0), initial, prior)
