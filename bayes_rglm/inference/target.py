"""What the samplers and variational fits see: the sites, their layout and the log joint, defined once.

A :class:`Layout` is the static part, built from ``(model, n_features, n_classes)``: the latent sites
(weights, biases, nuisance parameters, hierarchical scales) with their shapes and supports.  It is
hashable, so compiled programs are cached by it.  Its :meth:`Layout.log_joint` is THE log joint of the
posterior on the unconstrained scale, in the optimiser's standardised input coordinates:

    log p(theta, y) = sum_i w_i log p(y_i | x~_i, theta~) + log p(T(theta~)) + log |det J_c(theta)|,

with ``x~ = (x - shift) / scale`` the standardised inputs, ``theta~`` the constrained parameters with
the first layer in standardised coordinates, ``T`` the exact linear map back to the original
coordinates (``w0 = w0~ / scale``, ``b0 = b0~ - shift @ w0``), in which the prior is stated, and
``J_c`` the Jacobian of the constraining transforms (``log sigma`` -> ``sigma``, ordered cutpoints).
The constant ``log |det T|`` is left out: it moves no sampler or optimiser.  This is the density of
:meth:`RGLM.numpyro_model` at the same point (``tests/test_numpyro_model.py`` checks it), and NUTS's
potential and SVI's ELBO both call it.

A :class:`Target` is a layout with the data of one fit: the standardised, padded
:class:`~bayes_rglm.inference.objective.Problem`, made once per fit.  A layout with
``standardised=False`` works on the inputs and parameters as given (the map is the identity).

Examples
--------
>>> import numpy as np, bayes_rglm as br
>>> model = br.RGLM("poisson")
>>> data = model.prepare(np.ones((5, 2)) * np.arange(5)[:, None], np.arange(5.0))
>>> target = build(model, data)
>>> sorted(target.layout.shapes)
['b0', 'w0']
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.distributions import biject_to, constraints

from ..families import DataSummary
from ..model import RGLM, Dataset
from . import objective as obj
from .density import constrain, sites
from .point import _initial_params


@dataclass(frozen=True)
class Layout:
    """The latent sites of ``model`` for ``n_features`` inputs and ``n_classes`` classes, and the log joint."""

    model: RGLM
    n_features: int
    n_classes: int
    standardised: bool = True

    @functools.cached_property
    def _sites(self) -> tuple[dict, dict]:
        return sites(self.model, self.n_features, self.n_classes)

    @property
    def shapes(self) -> dict:
        """``{site: shape}``."""
        return self._sites[0]

    @property
    def support(self) -> dict:
        """``{site: numpyro constraint}``."""
        return self._sites[1]

    def log_joint(self, theta: dict, problem: obj.Problem, rows=None, row_weights=None) -> jax.Array:
        """``log p(theta, y)`` at unconstrained, standardised ``theta`` (see the module text).

        ``rows`` (indices) and ``row_weights`` evaluate the likelihood on those rows only, each
        weighted (a minibatch: ``N / B`` for counted rows, 0 for the rest); by default every row
        with its weight in ``problem`` (0 for padding).
        """
        params, log_jacobian = constrain(theta, self.support)
        X, y, offset, trials, weights = problem.X, problem.y, problem.offset, problem.trials, problem.weights
        if rows is not None:
            X, y, offset, trials, weights = X[rows], y[rows], offset[rows], trials[rows], row_weights
        log_lik = jnp.sum(weights * self.model.log_likelihood(params, X, y, offset, trials))
        original = obj.to_original(params, problem.shift, problem.scale) if self.standardised else params
        summary = DataSummary(self.n_classes, 0.0, problem.y_scale)
        return log_lik + self.model.log_prior(original, summary, self.n_features) + log_jacobian

    def to_original(self, draws: dict, shift: np.ndarray, scale: np.ndarray) -> dict:
        """Draws ``(..., site shape)`` on the unconstrained standardised scale -> constrained, original coordinates.

        Numpy on whole arrays: every transform acts elementwise or on the last axis, so nothing is compiled.
        """
        out = {
            k: np.asarray(v if self.support[k] is constraints.real else biject_to(self.support[k])(v))
            for k, v in draws.items()
        }
        w0 = out["w0"] / np.asarray(scale)[:, None]
        out["w0"] = w0
        if "b0" in out:
            out["b0"] = out["b0"] - np.einsum("j,...jk->...k", np.asarray(shift), w0)
        return out

    def initial(self, data: Dataset, problem: obj.Problem, rng: np.random.Generator) -> dict:
        """A random start on the unconstrained standardised scale (the optimiser's first start; hierarchical
        scales at the prior's fixed scales)."""
        start = _initial_params(self.model, data, rng, jitter=True)
        shift, scale = np.asarray(problem.shift), np.asarray(problem.scale)
        start = obj.unconstrain(self.model, obj.to_standardised(start, shift, scale))
        start = {k: np.asarray(v, np.float64) for k, v in start.items()}
        if self.model.prior.hierarchical:
            weight_scales, _ = self.model.prior_scales(self.n_features, data.summary.y_scale)
            for layer in range(self.model.depth + 1):
                start[f"prior_scale{layer}"] = np.log(np.asarray(weight_scales[layer], dtype=np.float64))
        return start


class Target(NamedTuple):
    """A :class:`Layout` and the data of one fit, standardised and padded once."""

    layout: Layout
    problem: obj.Problem
    data: Dataset


def build(model: RGLM, data: Dataset, standardised: bool = True) -> Target:
    """The target of one fit: its layout, and the data standardised and padded (:func:`objective.make_problem`).

    ``standardised=False`` keeps the inputs and the parameters in their original coordinates (the
    log joint then skips the map back; SVI uses it, see :mod:`~bayes_rglm.inference.svi`).
    """
    layout = Layout(model, int(data.X.shape[1]), int(data.summary.n_classes), bool(standardised))
    y_scale = data.summary.y_scale
    problem = obj.make_problem(model, data.X, data.y, data.offset, data.trials, y_scale, standardise=standardised)
    return Target(layout, problem, data)
