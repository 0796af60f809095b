"""Standard-error types of point fits (``fit(..., cov_type=...)`` for ``mle`` and ``map``).

All matrices are formed in the optimiser's coordinates (standardised inputs, nuisance parameters on
their natural scale) and mapped to the original ones by the Jacobian of that change of variables.
``theta`` is every parameter; ``beta`` the coefficients (weights and biases of every layer).

- ``"observed"`` (default): ``H^{-1}``, the inverse observed information (the Hessian of the negative
  log-likelihood, or log posterior for MAP).
- ``"expected"``: the Fisher information for the coefficients, ``sum_i W_i J_i J_i'`` with
  ``J_i = d eta_i / d beta`` and ``W_i = w_i (d mu_i / d eta_i)^2 / (phi V(mu_i))`` on the GLM scale
  (R's IRLS weights; ``phi`` the fitted dispersion: ``sigma^2``, ``1 / shape``, else 1), plus the prior's
  Hessian for MAP; the nuisance parameters keep their observed block (the Fisher information of a GLM
  has no coefficient-dispersion cross terms).  Equal to ``"observed"`` for canonical links without a
  dispersion.  Families with a variance function only.
- ``"glm"``: exactly what R's ``summary`` reports.  For gaussian and gamma: the expected information
  with the Pearson dispersion ``sum w (y - mu)^2 / V(mu) / df_residual`` (``summary.glm``), and
  t-based p-values and intervals on ``df_residual`` degrees of freedom; for other GLM families the
  expected information with dispersion 1 (``glm.nb`` at its fitted theta); for ordinal, tobit and
  categorical, whose R functions (``polr``, ``survreg``, ``multinom``) report the observed
  information, the observed information.
- ``"HC0"`` .. ``"HC3"``: the sandwich ``H^{-1} (sum_i c_i s_i s_i') H^{-1}`` with ``s_i`` the score of
  row ``i`` (its weighted log-likelihood's gradient): ``c_i = 1`` (HC0), ``n / (n - k)`` (HC1),
  ``1 / (1 - h_i)`` (HC2) and ``1 / (1 - h_i)^2`` (HC3), ``k`` the coefficients and ``h_i`` the
  leverage ``W_i J_i' (J' W J)^{-1} J_i`` (HC2 and HC3 need a variance function).
- ``"cluster"`` with ``groups=`` (one label per row): the meat sums the scores within each group,
  ``sum_g (sum_{i in g} s_i)(...)'``, times ``G / (G - 1) (n - 1) / (n - k)`` (statsmodels' default).
"""

from __future__ import annotations

import jax
import numpy as np

from ..runtime import compiled_cache
from . import objective as obj
from .blocks import traced_over
from .target import Layout

COV_TYPES = ("observed", "expected", "glm", "HC0", "HC1", "HC2", "HC3", "cluster")


def check_cov_type(cov_type, groups, n: int, kept=None) -> np.ndarray | None:
    """Check ``cov_type`` and ``groups`` (``n`` labels, before rows of weight 0 are dropped: ``kept``) before
    any tracing; the group of each kept row as integer codes."""
    if not isinstance(cov_type, str) or cov_type not in COV_TYPES:
        raise ValueError(f"cov_type={cov_type!r} is not known; use one of {', '.join(COV_TYPES)}")
    if cov_type != "cluster":
        if groups is not None:
            raise ValueError(f"groups= is only used with cov_type='cluster', not {cov_type!r}")
        return None
    if groups is None:
        raise ValueError("cov_type='cluster' needs groups= (one cluster label per row, e.g. groups=df['school'])")
    labels = np.asarray(groups)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"groups has shape {labels.shape} but X has {n} rows; give one cluster label per row")
    if kept is not None:
        labels = labels[kept]
    codes = np.unique(labels, return_inverse=True)[1]
    if codes.max() < 1:
        raise ValueError("groups has a single cluster; cluster-robust standard errors need at least 2")
    return codes


def _coefficient_sizes(layout: Layout) -> np.ndarray:
    """A mask over the flat vector: True for coefficients (layer weights and biases), False for nuisance."""
    nuisance = {n.name for n in layout.model.family.nuisance}
    return np.concatenate([np.full(int(np.prod(layout.shapes[k], dtype=int)), k not in nuisance) for k in layout.names])


@compiled_cache(maxsize=32)
def _compiled_rows(layout: Layout):
    """``(theta_c, problem) -> (scores (n, P), d eta / d theta (n, P), d mu / d eta (n,), mu (n,))``, padded rows."""
    model = layout.model
    family, link = model.family, model.link

    def pointwise(theta, problem):
        params = layout.unravel(theta)
        return model.log_likelihood(params, *problem.rows)

    def eta(theta, problem):
        return model.linear_predictor(layout.unravel(theta), problem.X, problem.offset)[:, 0]

    def run(theta, problem):
        scores = jax.jacfwd(pointwise)(theta, problem)
        jac = jax.jacfwd(eta)(theta, problem)
        e = eta(theta, problem)
        slope = jax.vmap(jax.grad(link.inverse))(e)
        mean = family.mean(e[:, None], link, model.nuisance(layout.unravel(theta)), problem.trials)
        return scores, jac, slope, mean

    return jax.jit(traced_over(layout.mesh, run))


def _glm_weights(family, nuisance: dict, y, mean, slope, trials, weights, dispersion: float) -> np.ndarray:
    """R's IRLS weights ``w (d mu / d eta)^2 / (phi V(mu))`` on the GLM scale (binomial: proportions)."""
    _, mu, weights = family.glm_scale(y, mean, trials, weights)
    return weights * np.square(slope) / (dispersion * family.variance(mu, nuisance))


def robust_covariance(opt, data, information: np.ndarray, cov_type: str, codes):
    """``(covariance, note, t_df)``: the covariance of the flat original parameters for ``cov_type`` (see the
    module text), what it is, and the degrees of freedom of R's t-based intervals (None: normal).

    ``information``: the observed information in the optimiser's coordinates.
    """
    layout, problem, model = opt.layout, opt.problem, opt.layout.model
    family = model.family
    theta_c = layout.ravel(layout.constrain(layout.unravel(opt.solution.x))[0])
    n = len(data.y)
    coefficient = _coefficient_sizes(layout)
    k = int(coefficient.sum())
    needs_rows = cov_type != "observed" and not (cov_type == "glm" and family.variance is None)
    if needs_rows:
        scores, jac, slope, mean = (np.asarray(a)[:n] for a in _compiled_rows(layout)(theta_c, problem))
    params = layout.unravel(np.asarray(theta_c))
    nuisance = {nu.name: np.asarray(params[nu.name]) for nu in family.nuisance}
    weights = np.ones(n) if data.weights is None else np.asarray(data.weights)
    bread = np.asarray(information)
    note = "inverse observed information"
    t_df = None
    if cov_type in ("expected", "glm") and family.variance is not None:
        phi = 1.0 if family.glm_dispersion is None else family.glm_dispersion(nuisance)
        if cov_type == "glm" and family.glm_dispersion is not None:
            phi = family.pearson(data.y, mean, data.trials, weights, nuisance) / (n - k)
            t_df = n - k
        W = _glm_weights(family, nuisance, data.y, mean, slope, data.trials, weights, phi)
        fisher = (jac * W[:, None]).T @ jac
        if opt.use_prior:
            prior = np.asarray(jax.hessian(obj.negative_log_prior(layout, unconstrained=False))(theta_c, problem))
            fisher = fisher + prior
        block = np.ix_(coefficient, coefficient)
        bread = bread.copy()
        bread[block] = fisher[block]
        bread[np.ix_(coefficient, ~coefficient)] = 0.0
        bread[np.ix_(~coefficient, coefficient)] = 0.0
        note = (
            "inverse expected information"
            if cov_type == "expected"
            else "R's summary: expected information"
            + (f", Pearson dispersion {phi:.6g} on {n - k} df (t-based)" if t_df is not None else "")
        )
    elif cov_type == "expected":
        raise ValueError(
            f"cov_type='expected' needs a family with a variance function; family {family.name!r} has none "
            "(use 'observed', 'glm' or a sandwich 'HC0'..'HC3')"
        )
    elif cov_type == "glm":
        note = "R's summary: inverse observed information (as polr, survreg and multinom report)"
    inverse = np.linalg.inv(0.5 * (bread + bread.T))
    if cov_type.startswith("HC") or cov_type == "cluster":
        if cov_type in ("HC2", "HC3"):
            if family.variance is None:
                raise ValueError(
                    f"cov_type={cov_type!r} needs leverages, which need a family with a variance function; "
                    f"family {family.name!r} has none (use 'HC0', 'HC1' or 'cluster')"
                )
            W = _glm_weights(family, nuisance, data.y, mean, slope, data.trials, weights, 1.0)
            J = jac[:, coefficient]
            leverage = W * np.einsum("ij,jk,ik->i", J, np.linalg.pinv((J * W[:, None]).T @ J), J)
            scale = 1.0 / (1.0 - leverage) if cov_type == "HC2" else 1.0 / np.square(1.0 - leverage)
            meat = (scores * scale[:, None]).T @ scores
        elif cov_type == "cluster":
            sums = np.zeros((int(codes.max()) + 1, scores.shape[1]))
            np.add.at(sums, codes, scores)
            groups = sums.shape[0]
            meat = sums.T @ sums * (groups / (groups - 1.0)) * ((n - 1.0) / (n - k))
        else:
            meat = scores.T @ scores * (n / (n - k) if cov_type == "HC1" else 1.0)
        inverse = inverse @ meat @ inverse
        note = f"sandwich ({cov_type})" + (f", {int(codes.max()) + 1} clusters" if cov_type == "cluster" else "")
    jacobian = np.asarray(opt.jacobian)
    return jacobian @ inverse @ jacobian.T, note, t_df
