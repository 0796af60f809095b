"""The :class:`Family` type: a likelihood of ``y`` given the output linear predictor, with its links,
nuisance parameters, default priors and the check of ``y`` run before any tracing.

The families themselves (``Gaussian(...)``, ``Ordinal(...)``, the registry ``FAMILIES``) are built in
:mod:`bayes_rglm.families`.

Examples
--------
>>> from bayes_rglm.families import Poisson
>>> isinstance(Poisson(), Family), Poisson().canonical_link
(True, 'log')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from .links import Link
from .nuisance import Nuisance
from .responses import (
    DataSummary,
)


@dataclass(frozen=True)
class Family:
    """A likelihood for the output layer.

    ``log_likelihood(eta, y, link, nuisance, trials)`` returns the pointwise
    log-likelihood, shape ``(n,)``; ``mean`` returns ``E[y | eta]``;
    ``sample`` draws ``y``; ``proba`` gives class probabilities ``(n, K)``
    for families with classes; ``validate(y, trials, fitting=True)`` checks ``y`` (and ``trials``)
    and returns a :class:`DataSummary`; ``fitting=False`` checks only the
    support (new data may lack some classes).
    """

    name: str
    canonical_link: str
    allowed_links: tuple[str, ...]
    log_likelihood: Callable
    mean: Callable
    sample: Callable
    validate: Callable[..., DataSummary]
    nuisance: tuple[Nuisance, ...] = ()
    proba: Callable | None = None
    has_output_bias: bool = True
    uses_trials: bool = False
    description: str = ""
    options: tuple = ()  # constructor arguments other than priors, for saving the spec
    # ``log_base(y, trials)``: the part of ``log_likelihood`` that depends on neither eta nor the
    # nuisance parameters (``-log y!`` for counts, ``log C(t, y)`` for binomial), and ``kernel``, the rest:
    # ``log_likelihood = kernel + log_base``.  Optimisers evaluate the kernel and add the base once.
    kernel: Callable | None = None
    log_base: Callable | None = None
    # What callers need to know about the family, so that none of them branches on its name:
    reference_class: bool = False  # K-1 output columns; class 0 is the reference (its logit is 0)
    discrete: bool = False  # y takes integer values (classes or counts)
    can_separate: bool = False  # the MLE fails to exist when some rows are predicted with certainty
    y_scaled: bool = False  # eta is on the scale of y (gaussian, tobit): priors autoscale by sd(y)
    latent_mean: bool = False  # eta is the mean of a latent y whatever the link (tobit): start at mean(y)
    # Prior weights (R's ``glm(weights=)``).  ``dispersion(nuisance, w)``: the nuisance of a row of weight
    # ``w`` for families whose dispersion is divided by it (gaussian: sigma / sqrt(w); gamma: shape * w).
    # None: the row's log-likelihood is multiplied by ``w`` (frequency weights for counts and classes).
    dispersion: Callable | None = None
    # R's GLM quantities, in numpy on the GLM scale (binomial: proportions y / trials with weight w trials):
    # ``unit_deviance(y, mu, nu)`` (deviance = sum_i w_i d_i) and ``variance(mu, nu)`` (Pearson residuals);
    # None where R's family has none (tobit, categorical, ordinal: the deviance is -2 log-likelihood).
    # ``glm_dispersion(nu)``: phi at the fitted nuisance (gaussian sigma^2, gamma 1 / shape) for the families
    # whose dispersion R's summary.glm estimates (by Pearson's statistic); None: phi = 1.
    unit_deviance: Callable | None = None
    variance: Callable | None = None
    glm_dispersion: Callable | None = None

    def row_nuisance(self, nuisance, weights):
        """The nuisance parameters of rows with prior ``weights`` (unchanged without a dispersion)."""
        return nuisance if self.dispersion is None or weights is None else self.dispersion(nuisance, weights)

    def _weighted(self, fn, eta, y, link, nuisance, trials, weights):
        if weights is None:
            return fn(eta, y, link, nuisance, trials)
        if self.dispersion is None:
            return weights * fn(eta, y, link, nuisance, trials)
        used = weights > 0  # weight-0 rows (padding) count 0; a safe weight keeps their terms finite
        safe = jnp.where(used, weights, 1.0)
        return jnp.where(used, fn(eta, y, link, self.dispersion(nuisance, safe), trials), 0.0)

    def weighted_log_likelihood(self, eta, y, link, nuisance, trials, weights):
        """Row ``i``'s contribution to the log-likelihood under prior weight ``w_i``.

        ``w_i log p(y_i)`` for families without a dispersion (frequency weights: a weight of 2
        is a repeated row); ``log p(y_i | dispersion phi / w_i)`` for gaussian and gamma, as
        R's ``glm`` and statsmodels' ``var_weights``; 0 where ``w_i = 0``.
        """
        return self._weighted(self.log_likelihood, eta, y, link, nuisance, trials, weights)

    def weighted_kernel(self, eta, y, link, nuisance, trials, weights):
        """:meth:`weighted_log_likelihood` without the ``log_base`` term (:meth:`weighted_base`)."""
        return self._weighted(self.kernel or self.log_likelihood, eta, y, link, nuisance, trials, weights)

    def glm_scale(self, y, mean, trials, weights):
        """``(y, mu, w)`` on R's GLM scale: binomial proportions ``y / trials`` with weight ``w * trials``."""
        if self.uses_trials:
            return y / trials, mean / trials, weights * trials
        return y, mean, weights

    def pearson(self, y, mean, trials, weights, nuisance) -> float:
        """Pearson's statistic ``sum_i w_i (y_i - mu_i)^2 / V(mu_i)`` on the GLM scale."""
        y, mu, w = self.glm_scale(y, mean, trials, weights)
        return float(np.sum(w * np.square(y - mu) / self.variance(mu, nuisance)))

    def weighted_base(self, y, trials, weights):
        """The ``log_base`` term per row, weighted as :meth:`weighted_log_likelihood` weights its row."""
        base = self.log_base_measure(y, trials)
        return weights * base if self.dispersion is None else jnp.where(weights > 0, base, 0.0)

    def log_kernel(self, eta, y, link, nuisance, trials):
        """``log_likelihood`` without the ``log_base`` term (the whole of it when there is none)."""
        return (self.kernel or self.log_likelihood)(eta, y, link, nuisance, trials)

    def log_base_measure(self, y, trials):
        """The ``log_base`` term per row (zeros when the family has none)."""
        return jnp.zeros_like(y) if self.log_base is None else self.log_base(y, trials)

    def output_columns(self, summary: DataSummary) -> int:
        """Columns of the output layer: K-1 for categorical, 1 otherwise."""
        return summary.n_classes - 1 if self.reference_class else 1

    @property
    def has_classes(self) -> bool:
        return self.proba is not None

    def check_link(self, link: Link) -> Link:
        if link.name not in self.allowed_links:
            raise ValueError(
                f"link={link.name!r} is not allowed for family {self.name!r}; "
                f"allowed links: {', '.join(self.allowed_links)}"
            )
        return link
