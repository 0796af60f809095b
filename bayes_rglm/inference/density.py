"""The RGLM's latent sites on the unconstrained scale, as SVI and NUTS see them.

Weights and biases are real; nuisance parameters (``sigma``, ``concentration``,
``cutpoints``) and the hierarchical scales ``prior_scale{l}`` are mapped from
the real line by numpyro's ``biject_to`` of their support, and the log joint
gains ``log |det J|`` of those maps -- exactly what numpyro does for
:meth:`RGLM.numpyro_model` (``tests/test_numpyro_model.py`` checks the two agree).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from numpyro.distributions import biject_to, constraints

from ..model import RGLM


def sites(model: RGLM, n_features: int, n_classes: int) -> tuple[dict, dict]:
    """Shapes and support constraints of every latent site (weights, biases, nuisance, hierarchical scales)."""
    shapes = dict(model.parameter_shapes(n_features, n_classes))
    support = {name: constraints.real for name in shapes}
    for nuisance in model.family.nuisance:
        support[nuisance.name] = nuisance.constraint
    if model.prior.hierarchical:
        for layer in range(model.depth + 1):
            shapes[f"prior_scale{layer}"] = ()
            support[f"prior_scale{layer}"] = constraints.positive
    return shapes, support


def constrain(unconstrained: dict, support: dict) -> tuple[dict, jax.Array]:
    """Map each site to its support; also ``log |det J|`` of the maps (the change of variables)."""
    params, log_jacobian = {}, 0.0
    for name, value in unconstrained.items():
        if support[name] is constraints.real:
            params[name] = value
            continue
        transform = biject_to(support[name])
        params[name] = transform(value)
        log_jacobian = log_jacobian + jnp.sum(transform.log_abs_det_jacobian(value, params[name]))
    return params, log_jacobian
