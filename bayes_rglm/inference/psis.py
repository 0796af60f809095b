"""Does the approximation work?  Pareto-smoothed importance sampling (PSIS) of Laplace and SVI draws.

With draws ``theta_s ~ q`` of an approximate posterior (on the unconstrained scale), the log importance
ratios

    r_s = log p(theta_s, y) - log q(theta_s)

have a right tail whose generalised-Pareto shape ``k`` says how far ``q`` is from the posterior: the
importance-sampling estimate of any posterior expectation is reliable for ``k <= 0.7`` and not beyond
(Yao, Vehtari, Simpson and Gelman 2018, "Yes, but did it work?: evaluating variational inference").
ArviZ's :func:`arviz.psislw` fits the tail and returns ``k`` with the smoothed, normalised log weights;
:meth:`~bayes_rglm.results.Fit.importance_resample` draws from those weights.

``log p(theta, y)`` is the layout's log joint (likelihood, prior and the constraining maps' Jacobian;
the layout's constant ``log |det T|`` cancels in the normalised weights).  With ``anchor`` (the
linearised Laplace) ``p`` is the posterior of the network linearised at the MAP, the model whose
predictive the fit reports.

Examples
--------
>>> import numpy as np, bayes_rglm as br
>>> rng = np.random.default_rng(0); X = rng.normal(size=(100, 2))
>>> y = (rng.random(100) < 1 / (1 + np.exp(-X[:, 0]))).astype(float)
>>> fit = br.RGLM("bernoulli").fit(X, y, method="laplace", seed=0)
>>> bool(fit.info["pareto_k"] < 0.7)
True
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np

from ..exceptions import DiagnosticsWarning, user_stacklevel
from ..runtime import compiled_cache
from .blocks import sum_over_rows, traced_over
from .problem import Problem
from .target import Layout

KHAT_THRESHOLD = 0.7  # above this the approximation's importance weights have too heavy a tail (Yao et al. 2018)
MIN_DRAWS = 20  # fewer draws leave too short a tail for the Pareto fit: no k-hat
# Each draw's log p is a pass over every row: k-hat uses the first m draws (they are independent) with
# rows x m x parameters at most PSIS_BUDGET, and at least MIN_BUDGET_DRAWS.  On a 20-50-1 net at 200,000
# rows all 1,000 draws took 35 s against 4.5 s of SVI steps; 100 draws take a tenth of that.
PSIS_BUDGET = 2e9
MIN_BUDGET_DRAWS = 100
DRAW_BLOCK = 64  # draws per compiled call (one program whatever the number of draws), together per block of rows


@compiled_cache(maxsize=32)
def _compiled_log_joint(layout: Layout, linearised: bool):
    """``(thetas (DRAW_BLOCK, size), problem, anchor) -> (DRAW_BLOCK,)``: ``log p(theta_s, y)`` (up to a
    constant) per draw.

    Rows are summed block by block (:func:`~.blocks.sum_over_rows`, over the mesh's devices too), each
    block for the :data:`DRAW_BLOCK` draws at once.
    """

    def run(thetas, problem, anchor):
        anchor = anchor if linearised else None
        params, log_jacobian = jax.vmap(lambda t: layout.constrain(layout.unravel(t)))(thetas)

        def rows_sum(X, y, offset, trials, weights):
            rows = problem.with_rows(X, y, offset, trials, weights)
            return jax.vmap(lambda p: layout.log_likelihood(p, rows, anchor=anchor))(params)

        loglik = sum_over_rows(rows_sum, *problem.rows)
        prior = jax.vmap(lambda p: layout.log_prior(p, problem))(params)
        return loglik + prior + log_jacobian

    return jax.jit(traced_over(layout.mesh, run))


def log_joint(layout: Layout, problem: Problem, thetas: np.ndarray, anchor: dict | None = None) -> np.ndarray:
    """``log p(theta_s, y)`` for flat unconstrained ``thetas`` ``(S, size)`` in ``layout``'s coordinates
    (``anchor``: of the network linearised there, constrained, in the same coordinates)."""
    n = thetas.shape[0]
    padded = -(-n // DRAW_BLOCK) * DRAW_BLOCK
    full = np.concatenate([thetas, np.repeat(thetas[:1], padded - n, axis=0)])
    run = _compiled_log_joint(layout, anchor is not None)
    anchor = {} if anchor is None else {k: jnp.asarray(v) for k, v in anchor.items()}
    values = [run(jax.device_put(full[i : i + DRAW_BLOCK]), problem, anchor) for i in range(0, padded, DRAW_BLOCK)]
    return np.concatenate([np.asarray(v) for v in values])[:n]


def draws_for_psis(n_draws: int, n_rows: int, size: int) -> int:
    """How many of the (independent) draws k-hat is computed from, within :data:`PSIS_BUDGET`."""
    allowed = max(MIN_BUDGET_DRAWS, int(PSIS_BUDGET / max(n_rows * size, 1)))
    return min(n_draws, allowed)


def pareto_k(log_ratios: np.ndarray) -> tuple[float, np.ndarray]:
    """``(k, smoothed normalised log weights)`` of the log importance ratios, by :func:`arviz.psislw`.

    Non-finite ratios (a draw where the model's density is 0 or undefined) count as ``-inf``: no weight.
    """
    import arviz as az  # here, not at module level: importing bayes_rglm should not pay for ArviZ

    ratios = np.where(np.isfinite(log_ratios), log_ratios, -np.inf)
    if not np.isfinite(ratios).any():
        return float("inf"), np.full_like(ratios, -np.log(ratios.size))
    with np.errstate(invalid="ignore", divide="ignore"):
        smoothed, k = az.psislw(ratios[None, :], reff=1.0)
    return float(np.asarray(k).reshape(())), np.asarray(smoothed).reshape(-1)


def diagnose(info: dict, log_p: np.ndarray, log_q: np.ndarray, method: str, against: str, warn: bool = True) -> float:
    """Put ``pareto_k`` and the smoothed log weights in ``info`` and return ``k``; warn when ``k > 0.7``.

    ``against``: what ``p`` is, for the message and ``info["pareto_k_target"]``.
    """
    if np.size(log_q) < MIN_DRAWS:
        info["pareto_k"] = None
        info["pareto_k_target"] = f"not computed: fewer than {MIN_DRAWS} draws (num_samples={np.size(log_q)})"
        return float("nan")
    k, weights = pareto_k(np.asarray(log_p) - np.asarray(log_q))
    info["pareto_k"] = k
    info["pareto_k_target"] = against
    info["psis_log_weights"] = weights  # of the first len(weights) draws
    info["psis_draws"] = int(np.size(weights))
    if warn and not k <= KHAT_THRESHOLD:
        warnings.warn(
            f"the {method} approximation is poor here: PSIS Pareto k-hat = {k:.2f} > {KHAT_THRESHOLD} "
            f"(against {against}), so its draws and any importance-resampled correction are unreliable. "
            "Use method='nuts', or for svi guide='mvn'/'lowrank' and more num_steps",
            DiagnosticsWarning,
            stacklevel=user_stacklevel(),
        )
    return k
