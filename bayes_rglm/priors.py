"""Gaussian priors on the weights and biases of every layer.

``GaussianPrior(scale=s, bias_scale=sb)`` puts exactly ``N(0, s^2)`` on every
weight and ``N(0, sb^2)`` on every bias.  Scales may be one number or one per
layer (``len(hidden) + 1`` entries, the output layer last).

The default prior (``prior=None`` in :class:`bayes_rglm.RGLM`) is
:func:`default_prior`: weights ``N(0, 1/fan_in)`` in hidden layers and the
output layer of a deep net (so that each linear predictor has unit scale at
initialisation, the usual "LeCun" scaling), ``N(0, 2.5^2)`` on the weights of
a depth-0 GLM (weakly informative on standardised inputs, as in rstanarm and
bambi) and ``N(0, 5^2)`` on every bias.

With ``hierarchical=True`` each layer's weight scale gets a half-normal
hyperprior ``s_l ~ HalfNormal(scale_l)``, sampled as ``prior_scale{l}``
(Bayesian methods) or optimised jointly (MAP).

Examples
--------
>>> import bayes_rglm as br
>>> prior = br.GaussianPrior(scale=1.0, bias_scale=5.0)
>>> prior.weight_scales(n_layers=2, fan_in=[3, 8])
(1.0, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Scale = float | Sequence[float]


def _as_scales(value: Scale, n_layers: int, argument: str) -> tuple[float, ...]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        values = (float(value),) * n_layers
    elif isinstance(value, Sequence) and not isinstance(value, str):
        values = tuple(float(v) for v in value)
        if len(values) != n_layers:
            raise ValueError(
                f"{argument} has {len(values)} entries but the model has {n_layers} layers "
                f"(hidden layers + output); give one number or {n_layers} numbers"
            )
    else:
        raise TypeError(f"{argument} must be a positive number or a sequence of them, got {value!r}")
    return values


def _check_positive(value: Scale | None, argument: str) -> None:
    if value is None:
        return
    values = [value] if isinstance(value, int | float) else list(value) if isinstance(value, Sequence) else None
    if values is None or isinstance(value, str | bool):
        raise TypeError(f"{argument} must be a positive number or a sequence of them, e.g. 1.0, got {value!r}")
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"{argument} must be positive and finite; entry {i} is {v!r} (e.g. scale=1.0)")


@dataclass(frozen=True)
class GaussianPrior:
    """Independent Gaussian priors ``w ~ N(0, scale^2)``, ``b ~ N(0, bias_scale^2)``.

    Parameters
    ----------
    scale : float or sequence of float, optional
        Prior standard deviation of the weights, one number or one per layer
        (output layer last).  ``None`` scales by fan-in: ``1/sqrt(fan_in)``.
    bias_scale : float or sequence of float, optional
        Prior standard deviation of the biases; defaults to ``scale`` (and to
        5.0 when ``scale`` is ``None``).
    hierarchical : bool
        Put a ``HalfNormal(scale_l)`` hyperprior on each layer's weight scale.
    autoscale : bool
        Multiply the output layer's scales by ``sd(y)`` for a real-valued
        output (gaussian or tobit with the identity link).  On in the default prior.

    Notes
    -----
    The log density added to the log-likelihood for MAP is
    ``-sum(w^2) / (2 s^2) - sum(b^2) / (2 sb^2)`` plus constants, so MAP with
    this prior is L2-penalised likelihood with penalty ``1 / (2 s^2)``.
    """

    scale: Scale | None = None
    bias_scale: Scale | None = None
    hierarchical: bool = False
    autoscale: bool = False

    def __post_init__(self):
        _check_positive(self.scale, "prior scale")
        _check_positive(self.bias_scale, "prior bias_scale")
        if isinstance(self.scale, list):
            object.__setattr__(self, "scale", tuple(self.scale))
        if isinstance(self.bias_scale, list):
            object.__setattr__(self, "bias_scale", tuple(self.bias_scale))
        if not isinstance(self.hierarchical, bool):
            raise TypeError(f"prior hierarchical must be True or False, got {self.hierarchical!r}")
        if not isinstance(self.autoscale, bool):
            raise TypeError(f"prior autoscale must be True or False, got {self.autoscale!r}")

    def weight_scales(self, n_layers: int, fan_in: Sequence[int]) -> tuple[float, ...]:
        """Weight prior standard deviation of each layer."""
        if self.scale is None:
            return tuple(1.0 / math.sqrt(f) for f in fan_in)
        return _as_scales(self.scale, n_layers, "prior scale")

    def bias_scales(self, n_layers: int) -> tuple[float, ...]:
        """Bias prior standard deviation of each layer."""
        if self.bias_scale is not None:
            return _as_scales(self.bias_scale, n_layers, "prior bias_scale")
        if self.scale is None:
            return (5.0,) * n_layers
        return _as_scales(self.scale, n_layers, "prior scale")


def default_prior(depth: int) -> GaussianPrior:
    """The prior used when none is given.

    Depth 0 (a classical GLM on standardised inputs): ``N(0, 2.5^2)`` weights
    and ``N(0, 5^2)`` intercept.  With hidden layers: ``N(0, 1/fan_in)``
    weights in every layer and ``N(0, 5^2)`` biases.  For a gaussian or tobit
    output with the identity link the output layer's scales are multiplied by
    ``sd(y)`` (``autoscale``), so the default does not depend on y's units.
    """
    if depth == 0:
        return GaussianPrior(scale=2.5, bias_scale=5.0, autoscale=True)
    return GaussianPrior(scale=None, bias_scale=5.0, autoscale=True)
