"""Laplace approximation (``method="laplace"``): a Gaussian at the MAP.

The precision is the Hessian of the negative log posterior at the mode, on
the unconstrained scale (``log sigma``, the ordered transform of the
cutpoints), so draws of constrained parameters respect their support:

    theta ~ N(theta_MAP, H^{-1}),   H = -d^2 log p(theta | y) / d theta^2.

``covariance="full"`` (default) uses all of ``H``; ``covariance="diag"`` keeps
only its diagonal in the fitted coordinates, which are the inputs centred
and scaled (so intercepts and weights are independent there, not in the
original coordinates): a mean-field Laplace for large models.  ``num_samples``
draws are stored as one chain.  ``fit.info["log_evidence"]`` is the Laplace
estimate of the marginal likelihood (for choosing a prior scale or a depth).
"""

from __future__ import annotations

import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from ..exceptions import DiagnosticsWarning
from . import objective as obj
from .estimate import Estimate
from .point import MAX_COVARIANCE, Optimum, observed_information, optimise, point_info
from .target import Target


def _unconstrained_precision(opt: Optimum, covariance: str, information) -> np.ndarray:
    """``H_u = T' H_c T`` with ``T`` the Jacobian of the constraining map (exact at a stationary point)."""
    theta, layout = opt.solution.x, opt.layout

    def constrained_flat(t):
        return layout.ravel(layout.constrain(layout.unravel(t))[0])

    if information is not None:
        transform = np.asarray(jax.jacfwd(constrained_flat)(theta))
        precision = transform.T @ information @ transform
        return 0.5 * (precision + precision.T) if covariance == "full" else np.diag(np.diag(precision))
    if covariance == "full":
        raise ValueError(
            f"covariance='full' needs a dense Hessian, but the model has {opt.layout.size} > {MAX_COVARIANCE} "
            "parameters; use covariance='diag' or method='svi'"
        )
    f = obj.negative_log_density(layout, True, unconstrained=True)
    grad = jax.grad(lambda t: f(t, opt.problem))
    diagonal = jax.lax.map(lambda e: jnp.vdot(e, jax.jvp(grad, (theta,), (e,))[1]), jnp.eye(theta.size))
    return np.diag(np.asarray(diagonal))


def _log_evidence(opt, information) -> float | None:
    """Laplace estimate of ``log p(y) = log int p(y | theta) p(theta) dtheta``.

    ``-f(theta*) + D/2 log(2 pi) - 1/2 log det H + log |det J|``, with ``H`` the
    Hessian in the fitted (standardised) coordinates and ``J`` their Jacobian
    to the original coordinates, in which the prior density is stated.
    """
    if information is None:
        return None
    sign, logdet = np.linalg.slogdet(information)
    jac_sign, log_jac = np.linalg.slogdet(np.asarray(opt.jacobian))
    if sign <= 0 or jac_sign == 0:
        return None
    d = information.shape[0]
    return float(-opt.solution.value + 0.5 * d * np.log(2 * np.pi) - 0.5 * logdet + log_jac)


def fit_laplace(
    target: Target,
    method: str,
    seed: int,
    *,
    num_samples: int = 1000,
    covariance: str = "full",
    max_iter: int = 100,
    tol: float = 1e-10,
    num_restarts: int = 1,
    init: dict | None = None,
    progress=None,
) -> Estimate:
    """Fit by MAP, then draw ``num_samples`` times from the Gaussian approximation."""
    if covariance not in ("full", "diag"):
        raise ValueError(f"covariance={covariance!r} is not known; use 'full' or 'diag'")
    opt = optimise(target, True, seed, max_iter=max_iter, tol=tol, num_restarts=num_restarts, init=init, polish=True)
    started = time.perf_counter()
    # The observed information on the natural scale: the solver's where it has it (depth 0; hidden layers
    # after the Newton polish, without nuisance parameters), else the exact Hessian summed over row blocks.
    information = observed_information(opt)
    if opt.precision is not None:  # hidden layers: the polish's last Hessian, on the unconstrained scale
        precision = 0.5 * (opt.precision + opt.precision.T)
        precision = precision if covariance == "full" else np.diag(np.diag(precision))
    else:
        precision = _unconstrained_precision(opt, covariance, information)
    evals, evecs = np.linalg.eigh(precision)
    if np.any(evals <= 0):
        raise ValueError(
            "the Hessian of the negative log posterior is not positive definite at the MAP "
            f"(smallest eigenvalue {evals.min():.3g}); the Laplace approximation does not exist here. "
            "Try num_restarts= for a better mode, a tighter prior, or method='nuts'/'svi'"
        )
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((num_samples, evals.size))
    theta = np.asarray(opt.solution.x)[None, :] + (z / np.sqrt(evals)) @ evecs.T
    samples = {k: v[None] for k, v in opt.params(theta).items()}
    params = {k: v.mean(axis=(0, 1)) for k, v in samples.items()}
    info = point_info(target.model, opt, "laplace")
    info["log_evidence"] = _log_evidence(opt, information)
    info.update(
        {
            "laplace_covariance": covariance,
            "map": {k: np.asarray(v) for k, v in opt.params().items()},
            "log_det_precision": float(np.sum(np.log(evals))),
            "sampling_time": time.perf_counter() - started,
        }
    )
    if not info["converged"]:
        warnings.warn(
            "the MAP optimisation did not converge; the Laplace approximation may be off",
            DiagnosticsWarning,
            stacklevel=3,
        )
    return Estimate(params, samples, None, info)
