"""Laplace approximation (``method="laplace"``): a Gaussian at the MAP, and how it predicts.

The approximation is ``theta ~ N(theta_MAP, H^{-1})`` on the unconstrained scale (``log sigma``, the
ordered transform of the cutpoints), so draws of constrained parameters respect their support.  Three
choices make it (each said in ``fit.info``):

- ``curvature``: ``"hessian"``, the exact Hessian of the negative log posterior, or ``"ggn"``, the
  generalised Gauss-Newton matrix ``G = sum_i J_i' Lambda_i J_i + prior precision`` with ``J_i`` the
  network's Jacobian at row ``i`` and ``Lambda_i`` the likelihood's curvature in the linear predictor:
  the Hessian of the network linearised at the MAP, positive semi-definite wherever the likelihood is
  log-concave in ``eta``.  Default: ``"ggn"`` with hidden layers; at depth 0 the two are the same matrix.
- ``covariance``: ``"full"``; ``"diag"``, its diagonal in the fitted (standardised) coordinates, a
  mean-field Laplace; ``"kron"``, the GGN of each layer Kronecker-factored (K-FAC, :mod:`~.kron`: no
  ``P x P`` matrix, the layers independent); or ``"last_layer"``, the output layer's weights and bias
  (and nuisance parameters) only, the hidden layers fixed at the MAP.  Default: ``"full"`` up
  to :data:`~.point.MAX_COVARIANCE` parameters while one curvature costs at most :data:`FULL_COST`
  (rows x parameters^2); beyond that ``"last_layer"`` with hidden layers and ``"diag"`` at depth 0.
- ``predictive`` (hidden layers): ``"linearised"`` (default), every draw predicts through the network
  linearised at the MAP, ``eta = eta(theta*) + J (theta - theta*)``: the GLM predictive in the Jacobian
  features, which keeps the MAP's fit where sampling weights through a nonlinear network does not
  (Immer, Korzepa and Bauer 2021; Daxberger et al. 2021, "Laplace redux"); or ``"sample"``, the draws
  through the network itself.  At depth 0 the two are the same.

Every fit reports the PSIS Pareto k-hat of its draws (:mod:`~.psis`) in ``fit.info["pareto_k"]``, against
the posterior of the model that predicts (the linearised network for the linearised predictive, whose
posterior the GGN Laplace approximates; the network otherwise), and warns above 0.7;
``fit.info["pareto_k_network"]`` is the k-hat against the network's own posterior.  ``psis=False`` skips
it (each draw's log density is a pass over the rows; :mod:`~.psis` caps the draws it uses on large data).
``fit.info["log_evidence"]`` is the Laplace estimate of the marginal likelihood (full covariance).

Examples
--------
>>> import numpy as np, bayes_rglm as br
>>> rng = np.random.default_rng(0); x = rng.uniform(-2, 2, (200, 1))
>>> y = np.sin(2 * x[:, 0]) + 0.2 * rng.normal(size=200)
>>> fit = br.RGLM("gaussian", hidden=(4,), activation="tanh").fit(x, y, method="laplace", seed=0)
>>> fit.info["laplace_curvature"], fit.info["laplace_covariance"], fit.info["laplace_predictive"]
('ggn', 'full', 'linearised')
"""

from __future__ import annotations

import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from ..exceptions import DiagnosticsWarning, user_stacklevel
from ..runtime import compiled_cache
from . import objective as obj
from .blocks import sum_over_rows, traced_over
from .estimate import Estimate
from .kron import kron_laplace
from .point import MAX_COVARIANCE, Optimum, observed_information, optimise, point_info
from .psis import diagnose, draws_for_psis, log_joint
from .target import Layout, Target

CURVATURES = ("ggn", "hessian")
COVARIANCES = ("full", "diag", "kron", "last_layer")
PREDICTIVES = ("linearised", "sample")
FULL_COST = 4e10  # rows x parameters^2 of one full curvature matrix; beyond it the default is not "full"


def check_options(curvature, covariance, predictive) -> None:
    """Refuse unknown options before any work."""
    for name, value, allowed in (
        ("curvature", curvature, CURVATURES),
        ("covariance", covariance, COVARIANCES),
        ("predictive", predictive, PREDICTIVES),
    ):
        if value is not None and value not in allowed:
            raise ValueError(f"{name}={value!r} is not known; use one of {', '.join(map(repr, allowed))} (or None)")


def _defaults(layout: Layout, rows: int, curvature, covariance, predictive) -> tuple[str, str, str]:
    deep = layout.model.depth > 0
    curvature = curvature or ("ggn" if deep else "hessian")
    if covariance is None:
        affordable = layout.size <= MAX_COVARIANCE and rows * float(layout.size) ** 2 <= FULL_COST
        covariance = "full" if affordable else ("last_layer" if deep else "diag")
    predictive = predictive or ("linearised" if deep else "sample")
    return curvature, covariance, predictive


# --- curvature on the unconstrained scale -----------------------------------------------------------------


@compiled_cache(maxsize=32)
def _compiled_ggn(layout: Layout):
    """``(theta, problem) -> G``: the GGN of the negative log posterior, unconstrained, summed over row blocks."""
    derivatives = obj.density_derivatives(layout, True, True, ggn=True)
    return jax.jit(traced_over(layout.mesh, lambda theta, problem: derivatives(theta, problem)[2]))


@compiled_cache(maxsize=32)
def _compiled_sub_hessian(layout: Layout, indices: tuple):
    """``(theta, problem) -> H[indices][:, indices]``: the exact Hessian in the coordinates ``indices`` only
    (the others held at ``theta``), by autodiff within each block of rows, summed over the blocks.

    Each block's Hessian is taken apart and added (:func:`~.blocks.sum_over_rows`): differentiating the
    blocked sum itself would keep every block's activations for the reverse pass, once per coordinate
    (about 3 GB for the 51 output coordinates of a 20-50-1 net at 50,000 rows, growing with the rows).
    """
    likelihood = obj.negative_log_density(layout, False, unconstrained=True)
    prior = obj.negative_log_prior(layout, unconstrained=True)
    where = np.asarray(indices)

    def run(theta, problem):
        def at(sub):
            return theta.at[where].set(sub)

        def block(X, y, offset, trials, weights):
            rows = problem.with_rows(X, y, offset, trials, weights)
            return jax.hessian(lambda sub: likelihood(at(sub), rows))(theta[where])

        return sum_over_rows(block, *problem.rows) + jax.hessian(lambda sub: prior(at(sub), problem))(theta[where])

    return jax.jit(traced_over(layout.mesh, run))


@compiled_cache(maxsize=32)
def _compiled_diagonal(layout: Layout, ggn: bool):
    """``(theta, problem) -> diag``: the diagonal of the Hessian (or the GGN, the Hessian of the network
    linearised at ``theta``) by one curvature-vector product per coordinate (no ``P x P`` matrix)."""
    f = obj.negative_log_density(layout, True, unconstrained=True)

    def run(theta, problem):
        if ggn:
            anchor = layout.constrain(layout.unravel(theta))[0]

            def f_at(t, p):
                params = layout.constrain(layout.unravel(t))[0]
                value = layout.log_density(params, p, jacobian=False, constrained=True, anchor=anchor)
                return -value

        else:
            f_at = f
        grad = jax.grad(lambda t: f_at(t, problem))
        return jax.lax.map(lambda e: jnp.vdot(e, jax.jvp(grad, (theta,), (e,))[1]), jnp.eye(theta.size))

    return jax.jit(traced_over(layout.mesh, run))


def _hessian_precision(opt: Optimum, covariance: str, information) -> np.ndarray:
    """The exact Hessian, unconstrained: ``H_u = T' H_c T`` with ``T`` the Jacobian of the constraining map
    (exact at a stationary point); the polish's last Hessian where it has one."""
    if opt.precision is not None:  # hidden layers: the polish's last Hessian, on the unconstrained scale
        precision = 0.5 * (opt.precision + opt.precision.T)
        return precision if covariance == "full" else np.diag(np.diag(precision))
    theta, layout = opt.solution.x, opt.layout

    def constrained_flat(t):
        return layout.ravel(layout.constrain(layout.unravel(t))[0])

    if information is not None:
        transform = np.asarray(jax.jacfwd(constrained_flat)(theta))
        precision = transform.T @ information @ transform
        return 0.5 * (precision + precision.T) if covariance == "full" else np.diag(np.diag(precision))
    return np.diag(np.asarray(_compiled_diagonal(layout, False)(theta, opt.problem)))


def _full_too_large(layout: Layout) -> ValueError:
    return ValueError(
        f"covariance='full' needs a dense {layout.size} x {layout.size} matrix, more than {MAX_COVARIANCE} "
        "parameters; use covariance='diag' or 'last_layer' (hidden layers), or method='svi'"
    )


def _last_layer_indices(layout: Layout) -> np.ndarray:
    """The flat coordinates of the output layer's weights and bias and of the nuisance parameters."""
    depth = layout.model.depth
    names = [f"w{depth}", f"b{depth}", *(n.name for n in layout.model.family.nuisance)]
    spans = [np.arange(*layout.offsets[name]) for name in names if name in layout.offsets]
    return np.concatenate(spans)


def _sub_hessian(opt: Optimum, indices: np.ndarray) -> np.ndarray:
    """The exact Hessian in the coordinates ``indices`` only, the others at the optimum."""
    run = _compiled_sub_hessian(opt.layout, tuple(int(i) for i in indices))
    sub = np.asarray(run(opt.solution.x, opt.problem))
    return 0.5 * (sub + sub.T)


def _precision(opt: Optimum, curvature: str, covariance: str) -> tuple[np.ndarray, np.ndarray]:
    """``(coordinates, precision)``: the coordinates the Gaussian spans (all, or the last layer's) and its
    precision matrix over them (diagonal as a diagonal matrix)."""
    layout, theta = opt.layout, opt.solution.x
    everything = np.arange(layout.size)
    if covariance == "last_layer":
        indices = _last_layer_indices(layout)
        return indices, _sub_hessian(opt, indices)
    if covariance == "full" and layout.size > MAX_COVARIANCE:
        raise _full_too_large(layout)
    if curvature == "hessian" or layout.model.depth == 0:  # at depth 0 the GGN is the Hessian
        return everything, _hessian_precision(opt, covariance, observed_information(opt))
    if covariance == "diag" and layout.size > MAX_COVARIANCE:
        return everything, np.diag(np.asarray(_compiled_diagonal(layout, True)(theta, opt.problem)))
    ggn = np.asarray(_compiled_ggn(layout)(theta, opt.problem))
    ggn = 0.5 * (ggn + ggn.T)
    return everything, ggn if covariance == "full" else np.diag(np.diag(ggn))


# --- evidence, draws, diagnostics ---------------------------------------------------------------------------


def _log_evidence(opt: Optimum, log_det_precision: float) -> float | None:
    """Laplace estimate of ``log p(y) = log int p(y | theta) p(theta) dtheta``.

    ``-f(theta*) + D/2 log(2 pi) - 1/2 log det H_u + log |det J_c| + log |det J|``, with ``H_u`` the
    precision on the unconstrained scale, ``J_c`` the Jacobian of the constraining map (to the scale the
    prior is stated on) and ``J`` that of the fitted (standardised) coordinates to the original ones.
    """
    layout = opt.layout
    jac_sign, log_jac = np.linalg.slogdet(np.asarray(opt.jacobian)) if opt.jacobian is not None else (0, 0)
    if jac_sign == 0:
        return None
    log_constrain = float(layout.constrain(layout.unravel(jnp.asarray(opt.solution.x)))[1])
    d = layout.size
    return float(-opt.solution.value + 0.5 * d * np.log(2 * np.pi) - 0.5 * log_det_precision + log_constrain + log_jac)


def fit_laplace(
    target: Target,
    method: str,
    seed: int,
    *,
    num_samples: int = 1000,
    covariance: str | None = None,
    curvature: str | None = None,
    predictive: str | None = None,
    psis: bool = True,
    max_iter: int = 100,
    tol: float = 1e-10,
    num_restarts: int = 1,
    init: dict | None = None,
    progress=None,
) -> Estimate:
    """Fit by MAP, then draw ``num_samples`` times from the Gaussian approximation (module text)."""
    check_options(curvature, covariance, predictive)
    if covariance == "kron" and curvature == "hessian":
        raise ValueError("covariance='kron' factors the GGN; use curvature='ggn' (or None) with it")
    layout, problem = target.layout, target.problem
    curvature, covariance, predictive = _defaults(layout, target.data.X.shape[0], curvature, covariance, predictive)
    if covariance == "full" and curvature == "hessian" and layout.size > MAX_COVARIANCE:
        raise _full_too_large(layout)
    opt = optimise(target, True, seed, max_iter=max_iter, tol=tol, num_restarts=num_restarts, init=init, polish=True)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    theta = np.repeat(np.asarray(opt.solution.x)[None, :], num_samples, axis=0)
    log_q, log_det = np.zeros(num_samples), 0.0
    if covariance == "kron":
        deltas, log_q, log_det, covered = kron_laplace(layout, problem, np.asarray(opt.solution.x), rng, num_samples)
        theta += deltas
        nuisance = np.setdiff1d(np.arange(layout.size), covered)
        blocks = [] if nuisance.size == 0 else [(nuisance, _sub_hessian(opt, nuisance))]
    else:
        blocks = [_precision(opt, curvature, covariance)]
    for indices, precision in blocks:
        evals, evecs = np.linalg.eigh(precision)
        if np.any(evals <= 0):
            raise ValueError(
                f"the {'GGN' if curvature == 'ggn' else 'Hessian'} of the negative log posterior is not positive "
                f"definite at the MAP (smallest eigenvalue {evals.min():.3g}); the Laplace approximation does not "
                "exist here. Try num_restarts= for a better mode, a tighter prior, curvature='ggn', or "
                "method='nuts'/'svi'"
            )
        z = rng.standard_normal((num_samples, evals.size))
        theta[:, indices] += (z / np.sqrt(evals)) @ evecs.T
        block_log_det = float(np.sum(np.log(evals)))
        log_q += -0.5 * np.sum(z**2, axis=1) + 0.5 * block_log_det - 0.5 * evals.size * np.log(2 * np.pi)
        log_det += block_log_det
    samples = {k: v[None] for k, v in opt.params(theta).items()}
    params = {k: v.mean(axis=(0, 1)) for k, v in samples.items()}
    info = point_info(target.model, opt, "laplace")
    info["log_evidence"] = _log_evidence(opt, log_det) if covariance == "full" else None
    linearised = predictive == "linearised" and layout.model.depth > 0
    info.update(
        {
            "laplace_covariance": covariance,
            "laplace_curvature": curvature if layout.model.depth > 0 else "hessian",
            "laplace_predictive": "linearised" if linearised else "sample",
            "map": {k: np.asarray(v) for k, v in opt.params().items()},
            "log_det_precision": log_det,
        }
    )
    # PSIS: log q of each draw in closed form (above); log p of the model that predicts (module text).
    anchor = layout.constrain(layout.unravel(jnp.asarray(opt.solution.x)))[0] if linearised else None
    if psis:
        m = draws_for_psis(num_samples, target.data.X.shape[0], layout.size)  # the first m draws (psis module)
        log_p, log_q = log_joint(layout, problem, theta[:m], anchor), log_q[:m]
        if linearised:
            network = {}
            diagnose(network, log_joint(layout, problem, theta[:m]), log_q, "laplace", "", warn=False)
            info["pareto_k_network"] = network["pareto_k"]
        against = "the network linearised at the MAP" if linearised else "the posterior"
        if covariance == "last_layer":
            against += ", the hidden layers fixed at the MAP"
        diagnose(info, log_p, log_q, "laplace", against)
    else:
        info.update({"pareto_k": None, "pareto_k_target": "not computed (psis=False)"})
    info["sampling_time"] = time.perf_counter() - started
    if not info["converged"]:
        warnings.warn(
            "the MAP optimisation did not converge; the Laplace approximation may be off",
            DiagnosticsWarning,
            stacklevel=user_stacklevel(),
        )
    return Estimate(params, samples, None, info)
