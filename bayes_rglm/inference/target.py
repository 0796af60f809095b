"""The target of one fit: the sites, ONE flat layout, the log density, and the data, defined once.

A :class:`Layout` is the static part, built from ``(model, n_features, n_classes)``: the latent sites
(weights, biases, nuisance parameters, hierarchical scales) with their shapes and supports, the flat
vector the optimisers and Laplace work on (sites in sorted order), and the log density.  It is
hashable, so compiled programs are cached by it.  :meth:`Layout.log_density` is the single source of
every engine's objective, in the standardised input coordinates of :mod:`.problem`:

    log p(theta, y) = sum_i w_i log p(y_i | x~_i, theta~) + log p(T(theta~)) + log |det J_c(theta)|,

with ``x~ = (x - shift) / scale`` the standardised inputs, ``theta~`` the constrained parameters with
the first layer in standardised coordinates, ``T`` the exact linear map back to the original
coordinates (``w0 = w0~ / scale``, ``b0 = b0~ - shift @ w0``), in which the prior is stated, and
``J_c`` the Jacobian of the constraining transforms (``log sigma`` -> ``sigma``, ordered cutpoints).
The constant ``log |det T|`` is left out: it moves no sampler or optimiser.

- NUTS's potential and SVI's ELBO are ``-log_joint`` (all three terms);
- MLE is ``-log_density(prior=False, jacobian=False)`` and MAP ``-log_density(jacobian=False)``:
  the mode of the posterior as the prior states it, not of its unconstrained image
  (:mod:`.objective` flattens them; its depth-0 Newton derivatives are those of the same kernel);
- :meth:`RGLM.numpyro_model` has the same density (``tests/test_numpyro_model.py`` checks it).

A :class:`Target` is a layout with the data of one fit (the standardised, padded
:class:`~.problem.Problem`, made once per fit) and the checked :class:`~bayes_rglm.network.Dataset`.
A layout with ``standardised=False`` works on the inputs and parameters as given.

Examples
--------
>>> import numpy as np, bayes_rglm as br
>>> model = br.RGLM("poisson")
>>> data = model.prepare(np.ones((5, 2)) * np.arange(5)[:, None], np.arange(5.0))
>>> target = build(model, data)
>>> sorted(target.layout.shapes), target.layout.size
(['b0', 'w0'], 3)
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from numpyro.distributions import biject_to, constraints

from ..families import DataSummary
from ..network import Dataset, Network
from ..nuisance import inverse_cdf
from .devices import across_processes, global_sum, mesh_of, place, spans_processes
from .problem import Problem, column_map, make_problem, to_original, to_standardised
from .stream import RowSource


@dataclass(frozen=True)
class Layout:
    """The latent sites of ``model`` for ``n_features`` inputs and ``n_classes`` classes, and the log density.

    ``scales`` (default: the prior is hierarchical) adds the per-layer prior scales ``prior_scale{l}`` as
    sites; the optimisers, which fit no hierarchical prior, use a layout without them.  ``mesh``: the
    one-axis mesh the data's rows are sharded over (:mod:`~bayes_rglm.inference.devices`), or None;
    the compiled programs, cached per layout, trace their sums over rows under it.
    """

    model: Network
    n_features: int
    n_classes: int
    standardised: bool = True
    scales: bool | None = None
    mesh: Mesh | None = None  # the devices the rows are sharded over (inference.devices); part of each program's key

    def __post_init__(self):
        # One hash per layout: None means the prior's own choice.
        scales = self.model.prior.hierarchical if self.scales is None else bool(self.scales)
        object.__setattr__(self, "scales", scales)

    # --- the sites and the flat layout ---------------------------------------------------------------

    @functools.cached_property
    def shapes(self) -> dict:
        """``{site: shape}``: weights and biases by layer, nuisance parameters, then hierarchical scales."""
        shapes = dict(self.model.parameter_shapes(self.n_features, self.n_classes))
        if self.hierarchical:
            for layer in range(self.model.depth + 1):
                shapes[f"prior_scale{layer}"] = ()
        return shapes

    @functools.cached_property
    def support(self) -> dict:
        """``{site: numpyro constraint}``."""
        support = {name: constraints.real for name in self.shapes}
        for nuisance in self.model.family.nuisance:
            support[nuisance.name] = nuisance.constraint
        for name in self.shapes:
            if name.startswith("prior_scale"):
                support[name] = constraints.positive
        return support

    @property
    def hierarchical(self) -> bool:
        """The hierarchical scales are sites."""
        return self.scales

    @functools.cached_property
    def names(self) -> tuple[str, ...]:
        """The sites in the flat vector's order (sorted, as ``ravel_pytree`` orders a dict)."""
        return tuple(sorted(self.shapes))

    @functools.cached_property
    def offsets(self) -> dict:
        """``{site: (start, stop)}`` in the flat vector."""
        out, start = {}, 0
        for name in self.names:
            size = int(np.prod(self.shapes[name], dtype=int))
            out[name] = (start, start + size)
            start += size
        return out

    @property
    def size(self) -> int:
        """Number of scalars in the flat vector."""
        return self.offsets[self.names[-1]][1]

    def ravel(self, params: dict):
        """``{site: array}`` -> the flat vector (numpy in, numpy out; JAX arrays stay JAX)."""
        parts = [params[k] for k in self.names]
        if any(isinstance(p, jax.Array) for p in parts):
            return jnp.concatenate([jnp.ravel(p) for p in parts])
        return np.concatenate([np.ravel(np.asarray(p, dtype=np.float64)) for p in parts])

    def unravel(self, theta) -> dict:
        """The flat vector -> ``{site: array}`` (the inverse of :meth:`ravel`); leading axes are kept
        (``(..., size)`` -> ``{site: (..., *shape)}``)."""
        lead = theta.shape[:-1]
        return {k: theta[..., a:b].reshape(lead + self.shapes[k]) for k, (a, b) in self.offsets.items()}

    # --- constraining maps --------------------------------------------------------------------------

    def constrain(self, theta: dict) -> tuple[dict, jax.Array]:
        """Each site mapped to its support, and ``log |det J|`` of the maps (the change of variables)."""
        params, log_jacobian = {}, 0.0
        for name, value in theta.items():
            if self.support[name] is constraints.real:
                params[name] = value
                continue
            transform = biject_to(self.support[name])
            params[name] = transform(value)
            log_jacobian = log_jacobian + jnp.sum(transform.log_abs_det_jacobian(value, params[name]))
        return params, log_jacobian

    def unconstrain(self, params: dict) -> dict:
        """The inverse of :meth:`constrain`'s map."""
        return {
            k: v if self.support[k] is constraints.real else biject_to(self.support[k]).inv(v)
            for k, v in params.items()
        }

    # --- the log density ----------------------------------------------------------------------------

    def log_likelihood(self, params: dict, problem: Problem, rows=None, row_weights=None, anchor=None) -> jax.Array:
        """``sum_i log p(y_i | x~_i, params)`` at constrained, standardised ``params``, each row weighted by
        its prior weight ``w_i`` (:meth:`~bayes_rglm.families.Family.weighted_log_likelihood`).

        Every row: the family's kernel per row plus its y-only base term, summed once in
        :func:`~.problem.make_problem`.  ``rows`` (indices) with ``row_weights``: those rows only, each
        weighted (a minibatch: ``N / B`` for counted rows, 0 for the rest), the whole likelihood per row.
        ``anchor`` (constrained, standardised parameters): the network linearised there
        (:meth:`~bayes_rglm.network.Network.linearised_predictor`; the linearised Laplace's model).
        """
        model = self.model
        if rows is None:
            if anchor is None:
                eta = model.linear_predictor(params, problem.X, problem.offset)
            else:
                eta = model.linearised_predictor(params, anchor, problem.X, problem.offset)
            nuisance = model.nuisance(params)
            kernel = model.family.weighted_kernel(eta, problem.y, model.link, nuisance, problem.trials, problem.weights)
            return jnp.sum(kernel) + problem.base
        X, y, offset, trials = problem.X[rows], problem.y[rows], problem.offset[rows], problem.trials[rows]
        values = model.log_likelihood(params, X, y, offset, trials, problem.weights[rows], anchor=anchor)
        return jnp.sum(row_weights * values)

    def log_prior(self, params: dict, problem: Problem) -> jax.Array:
        """``log p(params)`` at constrained ``params``, in the original coordinates the prior is stated in."""
        original = to_original(params, problem.shift, problem.scale) if self.standardised else params
        summary = DataSummary(self.n_classes, 0.0, problem.y_scale)
        return self.model.log_prior(original, summary, self.n_features)

    def log_density(
        self,
        theta: dict,
        problem: Problem,
        *,
        prior=True,
        jacobian=True,
        constrained=False,
        rows=None,
        row_weights=None,
        anchor=None,
    ) -> jax.Array:
        """The log density of the module text at ``theta`` (unconstrained, or ``constrained``), by parts.

        ``prior=False`` drops the prior (MLE); ``jacobian=False`` drops ``log |det J_c|`` (the
        optimisers' modes are those of the stated density).  ``rows``, ``row_weights``: a minibatch, as in
        :meth:`log_likelihood`, as is ``anchor``.
        """
        params, log_jacobian = (theta, 0.0) if constrained else self.constrain(theta)
        total = self.log_likelihood(params, problem, rows, row_weights, anchor)
        if prior:
            total = total + self.log_prior(params, problem)
        return total + log_jacobian if jacobian else total

    def log_joint(self, theta: dict, problem: Problem, rows=None, row_weights=None) -> jax.Array:
        """``log p(theta, y)`` at unconstrained ``theta``: likelihood, prior and ``log |det J_c|`` (NUTS, SVI)."""
        return self.log_density(theta, problem, rows=rows, row_weights=row_weights)

    # --- coordinates and starts -----------------------------------------------------------------------

    def to_original(self, draws: dict, shift: np.ndarray, scale: np.ndarray) -> dict:
        """Draws ``(..., site shape)`` on the unconstrained standardised scale -> constrained, original coordinates.

        Numpy on whole arrays: every transform acts elementwise or on the last axis, so nothing is compiled.
        """
        out = {
            k: np.asarray(v if self.support[k] is constraints.real else biject_to(self.support[k])(v))
            for k, v in draws.items()
        }
        return to_original(out, np.asarray(shift), np.asarray(scale))

    def initial_params(self, data: Dataset, rng: np.random.Generator, jitter: bool = True) -> dict:
        """A start on the constrained, original scale: small random weights (``jitter``, hidden layers),
        zero biases, the output intercept at the link of the mean of ``y``, the family's nuisance starts."""
        model, summary = self.model, data.summary
        params = {}
        for name, shape in model.parameter_shapes(self.n_features, self.n_classes).items():
            if name.startswith("w"):
                spread = 1.0 / np.sqrt(shape[0]) if (jitter and model.depth > 0) else 0.0
                if name == f"w{model.depth}":
                    spread *= 0.1
                params[name] = rng.normal(0.0, 1.0, shape) * spread
            elif name.startswith("b"):
                params[name] = np.zeros(shape)
        if f"b{model.depth}" in params:
            params[f"b{model.depth}"] = _initial_intercept(model, summary)
        for nuisance in model.family.nuisance:
            params[nuisance.name] = np.asarray(nuisance.initial(summary, model.link), dtype=np.float64)
        return params

    def initial(self, data: Dataset, problem: Problem, rng: np.random.Generator) -> dict:
        """:meth:`initial_params` on the unconstrained standardised scale, as numpy arrays; hierarchical
        scales at the prior's fixed scales (SVI's and NUTS's random starts)."""
        start = self.initial_params(data, rng)
        if self.standardised:
            start = to_standardised(start, np.asarray(problem.shift), np.asarray(problem.scale))
        start = {k: np.asarray(v, np.float64) for k, v in self.unconstrain(start).items()}
        if self.hierarchical:
            weight_scales, _ = self.model.prior_scales(self.n_features, data.summary.y_scale)
            for layer in range(self.model.depth + 1):
                start[f"prior_scale{layer}"] = np.log(np.asarray(weight_scales[layer], dtype=np.float64))
        return start


def _initial_intercept(model: Network, summary: DataSummary) -> np.ndarray:
    """The output bias whose prediction is the mean of ``y`` (class log-odds for a reference class)."""
    family, link = model.family, model.link
    if family.reference_class:
        freq = np.asarray(summary.class_freq)
        return np.log(freq[1:]) - np.log(freq[0])
    if link.is_probability:
        return np.atleast_1d(inverse_cdf(link, summary.y_mean))
    if family.latent_mean:
        return np.array([summary.y_mean])
    mean = summary.y_mean if summary.y_mean > 0 or link.name == "identity" else 1e-3
    value = float(np.asarray(link.link(np.asarray(mean, dtype=np.float64))))
    return np.array([value if np.isfinite(value) else 0.0])


class Target(NamedTuple):
    """A :class:`Layout` and the data of one fit, standardised and padded once."""

    layout: Layout
    problem: Problem
    data: Dataset

    @property
    def model(self) -> Network:
        return self.layout.model


def build(
    model: Network, data: Dataset, standardised: bool = True, scales: bool | None = None, devices: tuple | None = None
) -> Target:
    """The target of one fit: its layout, and the data standardised and padded (:func:`~.problem.make_problem`).

    ``standardised=False`` keeps the inputs and the parameters in their original coordinates (the
    log density then skips the map back; SVI uses it, see :mod:`~bayes_rglm.inference.svi`).
    ``scales``: see :class:`Layout`.  ``devices`` (:func:`~.devices.resolve_devices`): more than one shards
    the rows over them, padded to a multiple of their number.
    """
    mesh = mesh_of(devices)
    layout = Layout(model, int(data.X.shape[1]), int(data.summary.n_classes), bool(standardised), scales, mesh)
    if isinstance(data.X, RowSource):
        # Out of core (SVI): the rows stay on disk and come to the device batch by batch, standardised on the
        # host by the column moments of RowSource.check_finite's pass; the problem holds the constants (the
        # standardisation, the scale of y) and no rows.
        if mesh is not None:
            raise ValueError("out-of-core X is fitted by method='svi' on one device (devices=None)")
        p = data.X.shape[1]
        shift, scale = np.zeros(p), np.ones(p)
        if standardised:
            centre = not (model.depth == 0 and not model.family.has_output_bias)
            shift, scale, _ = column_map(data.X.mean, data.X.sd, centre)
        empty = np.zeros((0,))
        problem = Problem(
            *(jax.device_put(a) for a in (np.zeros((0, p)), empty, empty, empty, empty)),
            jax.device_put(np.float64(data.summary.y_scale)),
            jax.device_put(np.asarray(shift, dtype=np.float64)),
            jax.device_put(np.asarray(scale, dtype=np.float64)),
            jax.device_put(np.float64(0.0)),
        )
        return Target(layout, problem, data)
    centre = not (model.depth == 0 and not model.family.has_output_bias)
    padding = {"multiple": 1 if mesh is None else mesh.size}
    if spans_processes(mesh):
        # jax.distributed: each process holds its own rows; they agree on the summary, the padding and the
        # standardisation first, and the y-only base term is summed over processes (below).
        summary, n_pad, standardisation = across_processes(model.family, data, centre, standardised, mesh)
        data = data._replace(summary=summary)
        padding = {"n_pad": n_pad, "standardisation": standardisation}
    problem = make_problem(
        model.family,
        centre,
        data.X,
        data.y,
        data.offset,
        data.trials,
        data.summary.y_scale,
        standardise=standardised,
        weights=data.weights,
        **padding,
    )
    if spans_processes(mesh):
        problem = problem._replace(base=np.float64(global_sum(problem.base)))
    return Target(layout, place(problem, mesh), data)


def with_layout(target: Target, **changes) -> Target:
    """The same data under a layout with ``changes`` (e.g. ``scales=False`` for the optimisers)."""
    return target._replace(layout=dataclasses.replace(target.layout, **changes))
