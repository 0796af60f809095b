"""Maximum likelihood (``method="mle"``) and maximum a posteriori (``method="map"``) estimation.

Depth 0: damped Newton with the exact Hessian assembled from per-row
Hessians (an IRLS-like cross-product, value, gradient and Hessian in one pass),
to a Newton decrement of 1e-10 relative.  Hidden layers: L-BFGS to a gradient
norm of 1e-8 relative, from ``num_restarts`` random starts (the best objective
wins), then damped Newton with the exact Hessian for models of up to
``MAX_POLISH`` parameters.  Standard errors come from the
inverse observed information (the Hessian of the negative log-likelihood or
log posterior at the optimum, nuisance parameters on their natural scale).

Everything inside one fit is a single compiled call; the compiled solver is
cached per (model, shapes), so repeated fits with the same shapes do not
recompile.
"""

from __future__ import annotations

import time
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..exceptions import ConvergenceWarning, SeparationWarning, user_stacklevel
from ..network import Network
from ..precision import tolerance
from ..runtime import compiled_cache, is_small, jit
from . import objective as obj
from .blocks import map_over_rows, traced_over
from .covariance import robust_covariance
from .devices import local_rows, replicated
from .estimate import Estimate
from .optimize import Solution, lbfgs, newton_cg, newton_fused
from .problem import Problem, to_original, to_standardised
from .target import Layout, Target

GTOL_DEEP = 1e-8  # L-BFGS stops at |grad| <= GTOL_DEEP * max(1, |objective|)
MAX_COVARIANCE = 4000  # parameters; above this no standard errors are computed
MAX_POLISH = 1500  # hidden layers: Newton polishing after L-BFGS up to this many parameters
FAST_HESSIAN_COST = 1e7  # depth 0: float32 cross-products far from the optimum from rows x parameters^2 of this
POLISH_COST = 2e9  # MAP of hidden layers: polish only while rows x parameters^2 (one Hessian's cost) is below this
_PERFECT = -1e-8  # a row log-likelihood above this is predicted with certainty


@compiled_cache(maxsize=64)
def _compiled_fit(
    layout: Layout,
    use_prior: bool,
    max_iter: int,
    tol: float,
    polish: bool,
    small: bool = False,
    approach: bool = False,
    gtol: float = GTOL_DEEP,
):
    """One jitted call: optimise, then the map to original coordinates and the observed information.

    Hidden layers: L-BFGS, then (``polish``) damped Newton with the exact
    Hessian summed over row blocks.  With ``approach`` (a Hessian costs more
    than :data:`POLISH_COST`) truncated Newton steps from Hessian-vector
    products come first, and the Newton loop's last Hessian is returned as
    the observed information (without nuisance parameters) and Laplace's
    precision: it was evaluated one (final, tiny) Newton step before the
    optimum.  Otherwise the observed information is computed at the optimum
    itself, when first needed (:func:`observed_information`).
    """
    model, n_params = layout.model, layout.size
    objective = obj.negative_log_density(layout, use_prior, unconstrained=True)
    if model.depth == 0:
        derivatives = obj.depth0_derivatives(layout, use_prior, unconstrained=True)
        value_and_grad = obj.depth0_derivatives(layout, use_prior, unconstrained=True, hessian=False)
        # Without nuisance parameters the unconstrained and natural scales coincide: the Hessian at the
        # solution, which the solver returns, is the observed information.
        natural = obj.depth0_hessian(layout, use_prior, unconstrained=False)

        def information(theta_c, problem, last):
            return last if not model.family.nuisance else natural(theta_c, problem)

        def solve(theta0, problem):
            # A float32 cross-product for directions far from the optimum, where a Hessian costs enough for
            # it to matter (rows and parameters are static here, so this adds no compilation).
            fast = problem.X.shape[0] * float(theta0.size) ** 2 >= FAST_HESSIAN_COST
            return newton_fused(
                lambda t, fast=False: derivatives(t, problem, fast),
                lambda t: objective(t, problem),
                theta0,
                tol,
                max_iter,
                value_and_grad=lambda t: value_and_grad(t, problem),
                fast_hessian=fast,
            )
    else:
        derivatives = obj.density_derivatives(layout, use_prior, unconstrained=True)
        blocked_value, blocked_value_and_grad = obj.blocked_density(layout, use_prior, unconstrained=True)

        def information(theta_c, problem, last):
            # The polish's last Hessian is the observed information where the natural and unconstrained
            # scales coincide; otherwise it is computed apart, when first needed (observed_information).
            return last if last is not None and not model.family.nuisance else None

        def solve(theta0, problem):
            # Value and gradient summed over row blocks: the activations of one block at a time.
            f = lambda t: blocked_value(t, problem)  # noqa: E731
            vg = lambda t: blocked_value_and_grad(t, problem)  # noqa: E731
            first = lbfgs(f, theta0, gtol=gtol, max_iter=max_iter * 20, value_and_grad=vg)
            if not polish:
                return first, None
            # Newton with the exact Hessian from L-BFGS's end point: quadratic convergence to the mode, and
            # its saddle-free steps leave the near-saddles where L-BFGS can stop (a non-PD Hessian there
            # would make Laplace fail). Kept only if it lowers the objective. Value, gradient and Hessian
            # come from one pass over the row blocks, and the last Hessian is returned: where L-BFGS has
            # converged, the whole polish, standard errors and Laplace included, costs one Hessian.
            iterations, start = first.iterations, first.x
            if approach:
                # Where a Hessian costs much (rows x parameters^2 above POLISH_COST), truncated Newton steps from
                # Hessian-vector products approach the mode first (L-BFGS often stops short on nets at large N,
                # where full Newton steps through a non-convex region cost one Hessian each); the Newton loop
                # below then usually needs the one Hessian at the mode.
                def hvp(x, v):
                    return jax.jvp(lambda t: vg(t)[1], (x,), (v,))[1]

                near = newton_cg(f, vg, hvp, first.x, tol, max_iter)
                ok = jnp.isfinite(near.value) & (near.value <= first.value)
                start = jnp.where(ok, near.x, first.x)
                iterations = iterations + jnp.where(ok, near.iterations, 0)
            polished, hess = newton_fused(lambda t: derivatives(t, problem), f, start, tol, max_iter, vg)
            better = jnp.isfinite(polished.value) & (polished.value <= first.value)
            best = jax.tree_util.tree_map(lambda a, b: jnp.where(better, a, b), polished, first)
            best = best._replace(iterations=iterations + jnp.where(better, polished.iterations, 0))
            # The last Hessian belongs to the point before the final Newton step (a relative difference of
            # the order of the final decrement, ~1e-4): kept only where a Hessian is costly. Where it is cheap
            # the information is computed again at the optimum itself, when first needed.
            return best, (jnp.where(better, hess, jnp.nan) if approach else None)

    def run(start, problem):
        # The start is constrained, in the original coordinates: mapped here, so a fit runs no eager JAX op.
        start = to_standardised(layout.unravel(start), problem.shift, problem.scale)
        solution, last = solve(layout.ravel(layout.unconstrain(start)), problem)
        standardised = layout.constrain(layout.unravel(solution.x))[0]
        theta_c = layout.ravel(standardised)
        original = layout.ravel(to_original(standardised, problem.shift, problem.scale))
        # Pointwise log-likelihood at the optimum (padding rows count as 0): the separation check uses it.
        arrays = problem.rows
        pointwise = map_over_rows(lambda *r: model.log_likelihood(standardised, *r), *arrays)
        if n_params > MAX_COVARIANCE:
            return solution, pointwise, None, None, original, None
        jacobian = jax.jacfwd(lambda t: layout.ravel(to_original(layout.unravel(t), problem.shift, problem.scale)))
        # Hidden layers, where a Hessian costs much: the polish's last one is Laplace's precision.
        precision = last if model.depth > 0 else None
        return solution, pointwise, information(theta_c, problem, last), jacobian(theta_c), original, precision

    return jit(traced_over(layout.mesh, run), small, matmul_bound=model.depth == 0)


@compiled_cache(maxsize=64)
def _compiled_information(layout: Layout, use_prior: bool):
    """``(theta, problem) -> H``: the observed information at an unconstrained point, nuisance on its natural scale.

    The exact Hessian of the objective, summed over row blocks (memory flat in the rows).
    """
    hessian = obj.density_hessian(layout, use_prior, unconstrained=False)

    def run(theta, problem):
        return hessian(layout.ravel(layout.constrain(layout.unravel(theta))[0]), problem)

    return jit(traced_over(layout.mesh, run), small=False, matmul_bound=layout.model.depth == 0)


class Optimum(NamedTuple):
    """An optimisation's outcome, with what Laplace needs: the standardised problem and the information.

    ``information`` is None above :data:`MAX_COVARIANCE` parameters, and for
    hidden layers unless a Hessian is costly, polished and free of nuisance
    parameters (computed when first needed, by :func:`observed_information`).
    """

    solution: Solution
    layout: Layout
    problem: Problem
    information: jax.Array | None
    jacobian: jax.Array | None
    restart_objectives: np.ndarray
    seconds: float
    pointwise: np.ndarray  # log p(y_i | theta_hat) for the n data rows
    original: np.ndarray  # the optimum, constrained, in the original coordinates (the layout's flat vector)
    use_prior: bool = True
    polished: bool = False
    precision: np.ndarray | None = None  # hidden layers, polished, costly Hessian: the polish's last (unconstrained)

    def params(self, theta: np.ndarray | None = None) -> dict:
        """Parameters, constrained and in the original coordinates: the optimum's, or those of flat
        unconstrained standardised vectors ``theta`` ``(..., size)`` (numpy; leading axes kept)."""
        if theta is None:
            return self.layout.unravel(self.original)
        problem = self.problem
        return self.layout.to_original(self.layout.unravel(np.asarray(theta)), problem.shift, problem.scale)


def _polish(layout: Layout, rows: int, polish: bool | None) -> bool:
    """Whether Newton polishes L-BFGS's end point (hidden layers only; see :func:`optimise`)."""
    affordable = polish or rows * float(layout.size) ** 2 <= POLISH_COST
    return layout.model.depth > 0 and layout.size <= MAX_POLISH and (polish is not False) and bool(affordable)


def optimise(
    target: Target,
    use_prior: bool,
    seed: int,
    *,
    max_iter: int = 100,
    tol: float = 1e-10,
    num_restarts: int = 1,
    init: dict | None = None,
    polish: bool | None = None,
) -> Optimum:
    """Minimise the negative log-likelihood (or log posterior) from ``num_restarts`` starts; keep the best.

    ``target`` has a layout without hierarchical scales.  ``polish`` (hidden layers): Newton with the
    exact Hessian after L-BFGS.  None polishes up to :data:`MAX_POLISH` parameters while one Hessian
    costs at most :data:`POLISH_COST` (rows x parameters^2); True up to :data:`MAX_POLISH` parameters
    whatever the rows (Laplace, which needs a positive definite Hessian at the mode).
    """
    layout, problem, data = target
    if use_prior and layout.model.prior.hierarchical:
        raise ValueError(
            "prior hierarchical=True has no finite MAP (the density grows without bound as a layer's scale "
            "goes to 0); use method='svi' or 'nuts', or a fixed GaussianPrior for MAP and Laplace"
        )
    polish = _polish(layout, problem.X.shape[0], polish)
    rows = problem.X.shape[0]
    approach = polish and rows * float(layout.size) ** 2 > POLISH_COST  # see _compiled_fit
    small = is_small(rows, layout.size)
    run = _compiled_fit(layout, use_prior, int(max_iter), tolerance(tol), polish, small, approach, tolerance(GTOL_DEEP))
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    results = []
    for restart in range(num_restarts):
        start = dict(init) if init is not None and restart == 0 else layout.initial_params(data, rng)
        results.append(run(replicated(layout.ravel(start), layout.mesh), problem))
    values = np.array([float(r[0].value) if np.isfinite(float(r[0].value)) else np.inf for r in results])
    best, pointwise, information, jacobian, original, precision = results[int(np.argmin(values))]
    pointwise = local_rows(pointwise, data.X.shape[0])
    if precision is not None:
        precision = np.asarray(precision)
        if not np.all(np.isfinite(precision)):  # the polish was not kept: compute the information apart
            precision = information = None
    seconds = time.perf_counter() - started
    return Optimum(
        best,
        layout,
        problem,
        information,
        jacobian,
        values,
        seconds,
        pointwise,
        np.asarray(original),
        use_prior,
        polish,
        precision,
    )


@compiled_cache(maxsize=32)
def _compiled_fit_batch(
    layout: Layout, use_prior: bool, max_iter: int, tol: float, polish: bool, small: bool, gtol: float = GTOL_DEEP
):
    """:func:`_compiled_fit` vmapped over starting points: ``(theta0s, problem) -> solutions``, one program."""
    fit = _compiled_fit(layout, use_prior, max_iter, tol, polish, gtol=gtol)
    return jit(jax.vmap(fit, (0, None)), small, matmul_bound=layout.model.depth == 0)


def optimise_batch(
    target: Target, use_prior: bool, seed: int, num_starts: int, *, max_iter: int = 100, polish: bool | None = None
) -> dict:
    """Optimise from ``num_starts`` random starts at once (one vmapped program); the optima, stacked.

    Start ``c`` is :func:`optimise`'s first start for seed ``seed + 1000 c``.  The optima are returned
    as ``{site: (num_starts, ...)}`` on the unconstrained scale in the standardised coordinates of
    ``target.problem`` (as NUTS samples them).  ``max_iter`` and ``polish`` as in :func:`optimise`
    (hidden layers: at most ``20 max_iter`` L-BFGS iterations).
    """
    layout, problem, data = target
    polish = _polish(layout, problem.X.shape[0], polish)
    starts = [
        layout.ravel(layout.initial_params(data, np.random.default_rng(seed + 1000 * c))) for c in range(num_starts)
    ]
    small = is_small(problem.X.shape[0], layout.size)
    run = _compiled_fit_batch(layout, use_prior, max_iter, tolerance(1e-10), polish, small, tolerance(GTOL_DEEP))
    return layout.unravel(np.asarray(run(jax.device_put(np.stack(starts)), problem)[0].x))


def observed_information(opt: Optimum) -> np.ndarray | None:
    """The observed information at the optimum (standardised coordinates, nuisance on its natural scale).

    The one the solver already has (depth 0; hidden layers polished with a
    costly Hessian, without nuisance parameters); otherwise the exact Hessian
    at the optimum is computed now, summed over row blocks.  None above
    :data:`MAX_COVARIANCE` parameters.
    """
    if opt.information is not None or opt.jacobian is None:
        return None if opt.information is None else np.asarray(opt.information)
    run = _compiled_information(opt.layout, opt.use_prior)
    return np.asarray(run(opt.solution.x, opt.problem))


def fit_point(
    target: Target,
    method: str,
    seed: int,
    *,
    max_iter: int = 100,
    tol: float = 1e-10,
    num_restarts: int = 1,
    init: dict | None = None,
    cov_type: str = "observed",
    groups=None,
    progress=None,
) -> Estimate:
    """Fit by MLE (``method="mle"``) or MAP (``"map"``); standard errors of type ``cov_type``
    (:mod:`~bayes_rglm.inference.covariance`; ``groups``: cluster codes, checked by the caller)."""
    opt = optimise(target, method == "map", seed, max_iter=max_iter, tol=tol, num_restarts=num_restarts, init=init)
    model = target.model
    params = {k: np.asarray(v) for k, v in opt.params().items()}
    t_df = None
    if cov_type != "observed" and opt.jacobian is not None:
        information = observed_information(opt)
        covariance, cov_note, t_df = robust_covariance(opt, target.data, information, cov_type, groups)
    elif opt.information is not None or opt.jacobian is None:
        covariance, cov_note = _covariance(opt.information, opt.jacobian, opt.layout.size)
    else:
        # Hidden layers: the exact Hessian costs far more than the fit at large N, so it is computed when
        # first asked for (bse, covariance, summary, save); the note is set then.
        covariance = lambda: _covariance(observed_information(opt), opt.jacobian, opt.layout.size)  # noqa: E731
        cov_note = "inverse observed information (computed when first used)"
    info = point_info(model, opt, cov_note)
    info["cov_type"] = cov_type
    if t_df is not None:
        info["t_df"] = t_df  # R's summary.glm: t-based p-values and intervals on df_residual
    check_result(model, info, method, opt.pointwise)
    return Estimate(params, None, covariance, info)


def point_info(model: Network, opt: Optimum, cov_note: str) -> dict:
    best = opt.solution
    return {
        "optimizer": "newton" if model.depth == 0 else ("lbfgs + newton" if opt.polished else "lbfgs"),
        "iterations": int(best.iterations),
        "grad_norm": float(best.grad_norm),
        "converged": bool(best.converged),
        "objective": float(best.value),
        "restart_objectives": opt.restart_objectives.tolist(),
        "time": opt.seconds,
        "covariance": cov_note,
    }


def _covariance(information, jacobian, n_params):
    if information is None:
        return None, f"skipped: {n_params} parameters > {MAX_COVARIANCE}"
    information, jacobian = np.asarray(information), np.asarray(jacobian)
    try:
        cov_std = np.linalg.inv(0.5 * (information + information.T))
    except np.linalg.LinAlgError:
        return None, "singular observed information: parameters not identified"
    covariance = jacobian @ cov_std @ jacobian.T
    if not np.all(np.isfinite(covariance)) or np.any(np.diag(covariance) < 0):
        return covariance, "observed information is not positive definite at the optimum"
    return covariance, "inverse observed information"


def check_result(model: Network, info: dict, method: str, pointwise: np.ndarray):
    """Raise on a non-finite optimum; warn on separation (MLE) or non-convergence; ``info`` gains ``mle_exists``.

    ``pointwise`` is the log-likelihood of each data row at the optimum.
    """
    if not np.isfinite(info["objective"]):
        raise FloatingPointError(
            f"{method} failed: the objective is not finite at every start tried ({info['restart_objectives']}); "
            "check the link (e.g. an inverse link with a pole) or try other starting values"
        )
    # Families whose MLE fails to exist by separation (a zero-count or single-outcome region of X).
    info["mle_exists"] = True
    if method == "mle" and model.family.can_separate:
        perfect = np.flatnonzero(pointwise > _PERFECT)
        if perfect.size:
            info["mle_exists"] = False
            info["perfectly_predicted_rows"] = perfect[:20].tolist()
            warnings.warn(
                f"the maximum likelihood estimate does not exist: {perfect.size} rows (first: {perfect[0]}) are "
                "predicted with certainty (complete or quasi-complete separation), so some coefficients diverge "
                "and their standard errors are meaningless. Use method='map' (a Gaussian prior keeps them "
                "finite) or drop the separating predictors.",
                SeparationWarning,
                stacklevel=user_stacklevel(),
            )
            return
    if not info["converged"]:
        warnings.warn(
            f"{method} did not converge in {info['iterations']} iterations (gradient norm {info['grad_norm']:.3g});"
            " raise max_iter=, try num_restarts= or standardise X",
            ConvergenceWarning,
            stacklevel=user_stacklevel(),
        )
