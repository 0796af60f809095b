"""The network under every model: a stack of GLM layers with an exponential-family output.

Layer ``l`` computes ``h_{l+1} = f_l(h_l @ W_l + b_l)`` with ``f_l`` an inverse
link; the output layer's linear predictor ``eta = h_L @ W_L + b_L + offset``
enters the family's likelihood through the output link.  With
``hidden=()`` this is the classical GLM ``g(E[y]) = X @ beta + b``.

Examples
--------
>>> import numpy as np, bayes_rglm as br
>>> X = np.random.default_rng(0).normal(size=(50, 2)); y = (X[:, 0] > 0).astype(float)
>>> model = br.RGLM(family="bernoulli", hidden=(4,), activation="tanh")
>>> model.parameter_shapes(n_features=2, n_classes=2)["w0"]
(2, 4)

:class:`Network` holds the structure and the mathematics (shapes, linear
predictor, log-likelihood, log-prior, the numpyro model); everything that
fits or reads a model works with it.  The public :class:`bayes_rglm.RGLM`
(:mod:`bayes_rglm.model`) is a :class:`Network` with the ``fit`` facade on top,
so imports run one way: network -> inference -> results -> model.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from .data import as_design, as_vector, as_weights, first_violation, is_dataframe
from .families import DataSummary, Family, get_family, resolve_link
from .links import Link, get_link
from .priors import GaussianPrior, default_prior
from .responses import reweighted


class Dataset(NamedTuple):
    """Checked data ready for JAX: float64 arrays, column names, and what the family learned from ``y``."""

    X: np.ndarray
    y: np.ndarray
    offset: np.ndarray
    trials: np.ndarray
    feature_names: list[str]
    summary: DataSummary
    named: bool = False  # X was a DataFrame: later inputs are matched to feature_names by column name
    weights: np.ndarray | None = None  # prior weights (all positive: rows of weight 0 are dropped)
    dropped: int = 0  # rows dropped for a weight of 0
    kept: np.ndarray | None = None  # which of the given rows were kept (None: all)


def layer_of(name: str) -> int | None:
    """The layer of a weight or bias site (``"w2"`` -> 2), None for any other site (the one parser of these names)."""
    return int(name[1:]) if name[:1] in ("w", "b") and name[1:].isdigit() else None


def _check_hidden(hidden) -> tuple[int, ...]:
    if isinstance(hidden, int | np.integer) and not isinstance(hidden, bool):
        hidden = (hidden,)
    if isinstance(hidden, str) or not isinstance(hidden, Sequence | np.ndarray):
        raise TypeError(f"hidden must be a sequence of positive integer widths such as (16, 16) or (), got {hidden!r}")
    widths = []
    for i, width in enumerate(hidden):
        ok = isinstance(width, int | np.integer) and not isinstance(width, bool)
        if not ok or width <= 0:
            raise ValueError(f"hidden widths must be positive integers; entry {i} is {width!r} (e.g. hidden=(16, 8))")
        widths.append(int(width))
    return tuple(widths)


def _check_activations(activation, depth: int) -> tuple[Link, ...]:
    if isinstance(activation, str | Link):
        return tuple(get_link(activation, "activation") for _ in range(depth))
    if not isinstance(activation, Sequence):
        raise TypeError(f"activation must be a name such as 'tanh' or one name per hidden layer, got {activation!r}")
    if len(activation) != depth:
        raise ValueError(
            f"activation has {len(activation)} entries but hidden has {depth} layers; give one name "
            f"(used for every layer) or exactly {depth}"
        )
    return tuple(get_link(a, "activation") for a in activation)


@dataclass(frozen=True, init=False)
class Network:
    """A recursive GLM's structure and density: hidden GLM layers feeding an exponential-family output layer.

    The constructor's arguments (``family``, ``link``, ``hidden``, ``activation``, ``prior``) are
    documented on the public subclass :class:`bayes_rglm.RGLM`; everything below the engines works
    with this class.
    """

    family: Family
    link: Link
    hidden: tuple[int, ...]
    activations: tuple[Link, ...]
    prior: GaussianPrior

    def __init__(self, family="gaussian", link=None, hidden=(), activation="tanh", prior=None):
        fam = get_family(family)
        hid = _check_hidden(hidden)
        if prior is None:
            prior = default_prior(len(hid))
        if not isinstance(prior, GaussianPrior):
            raise TypeError(f"prior must be a bayes_rglm.GaussianPrior, e.g. GaussianPrior(scale=1.0), got {prior!r}")
        for name, value in (("scale", prior.scale), ("bias_scale", prior.bias_scale)):
            if isinstance(value, Sequence) and len(value) != len(hid) + 1:
                raise ValueError(
                    f"prior {name} has {len(value)} entries but the model has {len(hid) + 1} layers "
                    "(hidden layers + output); give one number or one per layer"
                )
        object.__setattr__(self, "family", fam)
        object.__setattr__(self, "link", resolve_link(fam, link))
        object.__setattr__(self, "hidden", hid)
        object.__setattr__(self, "activations", _check_activations(activation, len(hid)))
        object.__setattr__(self, "prior", prior)

    # --- structure --------------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        return len(self.hidden)

    def parameter_shapes(self, n_features: int, n_classes: int = 2) -> dict[str, tuple[int, ...]]:
        """Shapes of every parameter, weights and biases by layer, then nuisance parameters."""
        summary = DataSummary(n_classes, 0.0, 1.0)
        widths = (n_features, *self.hidden, self.family.output_columns(summary))
        shapes = {}
        for layer in range(len(widths) - 1):
            shapes[f"w{layer}"] = (widths[layer], widths[layer + 1])
            if layer < self.depth or self.family.has_output_bias:
                shapes[f"b{layer}"] = (widths[layer + 1],)
        for nuisance in self.family.nuisance:
            shapes[nuisance.name] = nuisance.shape(summary)
        return shapes

    def prior_scales(self, n_features: int, y_scale=1.0) -> tuple[tuple, tuple]:
        """Per-layer weight and bias prior standard deviations.

        With the default prior (``autoscale``), a real-valued output on the
        scale of ``y`` (gaussian or tobit, identity link) has its output-layer
        scales multiplied by ``sd(y)``, as rstanarm does, so the default suits
        ``y`` in any units.
        """
        fan_in = (n_features, *self.hidden)
        n_layers = self.depth + 1
        weights, biases = self.prior.weight_scales(n_layers, fan_in), self.prior.bias_scales(n_layers)
        if self.prior.autoscale and self.family.y_scaled and self.link.name == "identity":
            weights = (*weights[:-1], weights[-1] * y_scale)
            biases = (*biases[:-1], biases[-1] * y_scale)
        return weights, biases

    # --- data -------------------------------------------------------------------------------------

    def prepare(self, X, y, offset=None, trials=None, weights=None, exposure=None) -> Dataset:
        """Check and convert the data (before any tracing); see :mod:`bayes_rglm.data`.

        ``weights``: prior weights, finite and non-negative; rows of weight 0 are dropped (as R's
        ``glm`` leaves them out of the fit).  ``exposure``: positive, for a log link; it adds
        ``log(exposure)`` to the offset.
        """
        named = is_dataframe(X)
        X, names = as_design(X)
        n = X.shape[0]
        y = as_vector(y, n, "y")
        offset = as_vector(offset, n, "offset", allow_none=True)
        trials = as_vector(trials, n, "trials", allow_none=True)
        weights = as_weights(weights, n)
        exposure = as_vector(exposure, n, "exposure", allow_none=True)
        if trials is not None and not self.family.uses_trials:
            raise ValueError(f"trials= is only used by family 'binomial', not {self.family.name!r}")
        offset = np.zeros(n) if offset is None else offset
        if exposure is not None:
            if self.link.name != "log":
                raise ValueError(
                    f"exposure= needs a log link (it adds log(exposure) to the offset); family "
                    f"{self.family.name!r} here has link {self.link.name!r}: pass offset= on the link's scale instead"
                )
            if np.any(exposure <= 0):
                where = first_violation(exposure <= 0, exposure)
                raise ValueError(f"exposure must be positive; first violation at {where}")
            offset = offset + np.log(exposure)
        dropped, kept = 0, None
        if weights is not None and np.any(weights == 0):
            kept = weights > 0
            dropped = int(n - kept.sum())
            X, y, offset, weights = X[kept], y[kept], offset[kept], weights[kept]
            trials = None if trials is None else trials[kept]
        summary = self.family.validate(y, trials)
        if weights is not None:
            summary = reweighted(summary, y, trials, weights)
        trials = np.ones(len(y)) if trials is None else trials
        return Dataset(X, y, offset, trials, names, summary, named, weights, dropped, kept)

    # --- the network ------------------------------------------------------------------------------

    def linear_predictor(self, params: dict, X: jax.Array, offset: jax.Array | None = None) -> jax.Array:
        """Output linear predictor ``eta``, shape ``(n, output columns)``."""
        h = X
        for layer, activation in enumerate(self.activations):
            h = activation.inverse(h @ params[f"w{layer}"] + params[f"b{layer}"])
        eta = h @ params[f"w{self.depth}"]
        if self.family.has_output_bias:
            eta = eta + params[f"b{self.depth}"]
        return eta if offset is None else eta + offset[:, None]

    def linearised_predictor(self, params: dict, anchor: dict, X: jax.Array, offset: jax.Array | None = None):
        """The linear predictor linearised in the weights at ``anchor`` (a MAP):

            eta_lin(theta) = eta(theta*) + J(x; theta*) (theta - theta*),   J = d eta / d theta (weights, biases).

        It is exact at depth 0, where ``eta`` is linear in the weights; with hidden layers it is a GLM in the
        network's Jacobian features, the model of the linearised Laplace predictive (Immer et al. 2021).
        ``anchor`` needs the weights and biases only.

        Examples
        --------
        >>> import numpy as np, bayes_rglm as br
        >>> net = br.RGLM("gaussian", hidden=(2,))
        >>> at = {k: np.full(s, 0.5) for k, s in net.parameter_shapes(1, 1).items()}
        >>> X = np.ones((3, 1))
        >>> bool(np.allclose(net.linearised_predictor(at, at, X), net.linear_predictor(at, X)))
        True
        """
        sites = [k for k in anchor if k[0] in "wb" and k[1:].isdigit()]
        point = {k: anchor[k] for k in sites}
        tangent = {k: params[k] - anchor[k] for k in sites}
        eta, change = jax.jvp(lambda p: self.linear_predictor(p, X, None), (point,), (tangent,))
        eta = eta + change
        return eta if offset is None else eta + offset[:, None]

    def nuisance(self, params: dict) -> dict:
        return {n.name: params[n.name] for n in self.family.nuisance}

    def log_likelihood(self, params, X, y, offset=None, trials=None, weights=None, anchor=None) -> jax.Array:
        """Pointwise log-likelihood ``log p(y_i | x_i, params)``, shape ``(n,)``; with prior ``weights``,
        each row's weighted contribution (:meth:`~bayes_rglm.families.Family.weighted_log_likelihood`).
        ``anchor``: of the network linearised there (:meth:`linearised_predictor`)."""
        if anchor is None:
            eta = self.linear_predictor(params, X, offset)
        else:
            eta = self.linearised_predictor(params, anchor, X, offset)
        return self.family.weighted_log_likelihood(eta, y, self.link, self.nuisance(params), trials, weights)

    def log_prior(self, params: dict, summary: DataSummary, n_features: int) -> jax.Array:
        """``log p(params)``: Gaussian weights and biases plus the nuisance priors (constrained scale).

        With ``GaussianPrior(hierarchical=True)`` ``params`` also holds the
        per-layer weight scales ``prior_scale{l} ~ HalfNormal(scale_l)``.
        """
        weight_scales, bias_scales = self.prior_scales(n_features, summary.y_scale)
        total = 0.0
        for layer in range(self.depth + 1):
            scale = weight_scales[layer]
            if self.prior.hierarchical:
                total += jnp.sum(dist.HalfNormal(scale).log_prob(params[f"prior_scale{layer}"]))
                scale = params[f"prior_scale{layer}"]
            total += _normal_log_density(params[f"w{layer}"], scale)
            if f"b{layer}" in params:
                total += _normal_log_density(params[f"b{layer}"], bias_scales[layer])
        for nuisance in self.family.nuisance:
            total += jnp.sum(nuisance.prior_for(summary).log_prob(params[nuisance.name]))
        return total

    # --- numpyro ----------------------------------------------------------------------------------

    def numpyro_model(
        self,
        X,
        y=None,
        *,
        offset=None,
        trials=None,
        weights=None,
        batch_size=None,
        use_prior=True,
        n_classes=None,
        y_scale=None,
    ):
        """The RGLM as a plain numpyro model function.

        Sites: ``w{l}``, ``b{l}`` (Gaussian priors, or flat with
        ``use_prior=False``), the family's nuisance parameters, optional
        ``prior_scale{l}`` (hierarchical prior), and the observed site ``y``
        inside the plate ``data`` (subsampled when ``batch_size`` is given, so
        the likelihood is scaled by ``N / batch_size``), with prior ``weights``
        as in :meth:`log_likelihood`.  ``n_classes`` is
        needed for categorical/ordinal families when ``y`` is None.  Like the other JAX-level methods
        it computes in the caller's precision (numpyro's ``MCMC`` under the user's own x64 setting).
        """
        n, n_features = X.shape
        if n_classes is None:
            n_classes = int(np.max(np.asarray(y))) + 1 if y is not None and self.family.has_classes else 2
        scale = y_scale if y_scale is not None else (jnp.std(y) if y is not None else 1.0)
        summary = DataSummary(n_classes, 0.0, scale)
        shapes = self.parameter_shapes(n_features, n_classes)
        weight_scales, bias_scales = self.prior_scales(n_features, scale)
        params = {}
        for name, shape in shapes.items():
            layer = layer_of(name)
            if layer is not None:
                s = weight_scales[layer] if name[0] == "w" else bias_scales[layer]
                if not use_prior:
                    prior = dist.ImproperUniform(dist.constraints.real, (), shape)
                else:
                    if name[0] == "w" and self.prior.hierarchical:
                        s = numpyro.sample(f"prior_scale{layer}", dist.HalfNormal(s))
                    prior = dist.Normal(0.0, s).expand(shape).to_event(len(shape))
                params[name] = numpyro.sample(name, prior)
        for nuisance in self.family.nuisance:
            shape = shapes[nuisance.name]
            value = numpyro.sample(nuisance.name, dist.ImproperUniform(nuisance.constraint, (), shape))
            if use_prior:
                numpyro.factor(f"{nuisance.name}_prior", jnp.sum(nuisance.prior_for(summary).log_prob(value)))
            params[nuisance.name] = value
        # Device arrays: the plate's index is traced, and numpy arrays cannot be indexed by it.
        X = jnp.asarray(X)
        y = None if y is None else jnp.asarray(y)
        weights = None if weights is None else jnp.asarray(weights)
        offset = jnp.zeros(n) if offset is None else jnp.asarray(offset)
        trials = jnp.ones(n) if trials is None else jnp.asarray(trials)
        with numpyro.plate("data", n, subsample_size=batch_size) as index:
            X_b, offset_b, trials_b = X[index], offset[index], trials[index]
            y_b = None if y is None else y[index]
            weights_b = None if weights is None else weights[index]
            eta = self.linear_predictor(params, X_b, offset_b)
            likelihood = FamilyLikelihood(self, eta, params, trials_b, weights_b)
            numpyro.sample("y", likelihood, obs=y_b)


def _normal_log_density(values, scale: float):
    """``sum log N(values | 0, scale^2)``."""
    return -0.5 * jnp.sum(jnp.square(values)) / scale**2 - values.size * (jnp.log(scale) + 0.5 * np.log(2 * np.pi))


class FamilyLikelihood(dist.Distribution):
    """The family's likelihood as a numpyro distribution over ``y`` (one value per row), with prior
    ``weights`` as :meth:`Network.log_likelihood` takes them."""

    support = dist.constraints.real

    def __init__(self, model: Network, eta, params, trials, weights=None):
        self.model, self.eta, self.params, self.trials, self.weights = model, eta, params, trials, weights
        super().__init__(batch_shape=eta.shape[:1], event_shape=())

    def log_prob(self, value):
        nuisance = self.model.nuisance(self.params)
        family = self.model.family
        return family.weighted_log_likelihood(self.eta, value, self.model.link, nuisance, self.trials, self.weights)

    def sample(self, key, sample_shape=()):
        nuisance = self.model.family.row_nuisance(self.model.nuisance(self.params), self.weights)
        draw = functools.partial(
            self.model.family.sample, eta=self.eta, link=self.model.link, nu=nuisance, trials=self.trials
        )
        if sample_shape:
            keys = jax.random.split(key, int(np.prod(sample_shape)))
            return jax.vmap(lambda k: draw(k))(keys).reshape(sample_shape + self.batch_shape)
        return draw(key)

    @property
    def mean(self):
        nuisance = self.model.nuisance(self.params)
        return self.model.family.mean(self.eta, self.model.link, nuisance, self.trials)
