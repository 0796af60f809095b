"""The No-U-Turn sampler (``method="nuts"``), numpyro's implementation.

``num_warmup`` and ``num_samples`` per chain, ``num_chains`` (default 4),
``chain_method`` (``"sequential"``, ``"parallel"`` across devices, or
``"vectorized"``), ``target_accept`` and ``dense_mass``.  Chains of models
start from MAP solutions (one optimisation per chain from its own random
start, plus a little jitter), so warm-up is spent adapting, not searching,
and chains of links with a restricted or symmetric domain (inverse: eta > 0;
sqrt: eta and -eta give the same mean) start in the valid, same mode.
``init="prior"`` uses numpyro's default random starts instead.  Divergences,
tree depth, step size, acceptance and energy go to ``sample_stats``; divergences,
r-hat above 1.01 and bulk ESS below 100 raise
a :class:`~bayes_rglm.DiagnosticsWarning` (judged on E[y|x] at probe rows for
models with hidden layers, whose weights are not identified).
"""

from __future__ import annotations

import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.distributions import biject_to, constraints
from numpyro.infer import MCMC, NUTS

from ..exceptions import DiagnosticsWarning
from ..families import DataSummary
from ..model import RGLM, Dataset
from .density import constrain, sites
from .objective import unconstrain
from .point import optimise

EXTRA_FIELDS = ("diverging", "num_steps", "accept_prob", "energy", "potential_energy", "adapt_state.step_size")


def _map_starts(model: RGLM, data: Dataset, seed: int, num_chains: int) -> dict:
    """Unconstrained initial values per chain: one MAP per chain from its own random start, jittered."""
    starts = []
    rng = np.random.default_rng(seed + 1)
    for chain in range(num_chains):
        opt = optimise(model, data, True, seed + 1000 * chain)
        values = {}
        for name, value in unconstrain(model, opt.params(model)).items():
            # Jitter relative to each value's size: an absolute jitter can push eta out of an
            # inverse link's domain when coefficients are small (gamma/inverse: eta ~ 1e-2).
            value = np.asarray(value)
            values[name] = value + (0.01 * np.abs(value) + 1e-4) * rng.standard_normal(np.shape(value))
        starts.append(values)
    return {k: np.stack([s[k] for s in starts]) for k in starts[0]}


def _potential(model: RGLM, data: Dataset):
    """``theta -> -log p(theta, y)`` on the unconstrained sites (log-Jacobian of the transforms included).

    The same log joint as :meth:`RGLM.numpyro_model`'s (a test checks they agree), evaluated directly,
    so numpyro does not trace the model to build it.
    """
    n_features, n_classes = data.X.shape[1], data.summary.n_classes
    _, support = sites(model, n_features, n_classes)
    X, y, offset, trials = (jnp.asarray(a) for a in (data.X, data.y, data.offset, data.trials))
    summary = DataSummary(n_classes, 0.0, float(data.summary.y_scale))

    def potential(theta):
        params, log_jacobian = constrain(theta, support)
        log_lik = jnp.sum(model.log_likelihood(params, X, y, offset, trials))
        return -(log_lik + model.log_prior(params, summary, n_features) + log_jacobian)

    return potential


def fit_nuts(
    model: RGLM,
    data: Dataset,
    method: str,
    seed: int,
    *,
    num_warmup: int = 1000,
    num_samples: int = 1000,
    num_chains: int = 4,
    chain_method: str = "sequential",
    target_accept: float = 0.8,
    dense_mass: bool = False,
    max_tree_depth: int = 10,
    init: str | None = None,
    progress=None,
):
    """Sample the posterior by NUTS and return a Fit with draws ``(num_chains, num_samples, ...)``."""
    import sys

    from ..diagnostics import check_diagnostics
    from ..results import Fit

    if chain_method not in ("sequential", "parallel", "vectorized"):
        raise ValueError(f"chain_method={chain_method!r} is not known; use 'sequential', 'parallel' or 'vectorized'")
    if not 0 < target_accept < 1:
        raise ValueError(f"target_accept must be in (0, 1), e.g. 0.8 or 0.95, got {target_accept!r}")
    if init not in (None, "map", "prior"):
        raise ValueError(f"init={init!r} is not known; use 'map' (default) or 'prior'")
    if model.prior.hierarchical and init == "map":
        raise ValueError("init='map' is not available with a hierarchical prior (its MAP does not exist)")
    # MAP starts: hidden layers would otherwise spend warm-up searching, and links with a restricted
    # domain (inverse, sqrt: eta and -eta give the same mean) would start in invalid or mirrored regions.
    use_map = not model.prior.hierarchical if init is None else init == "map"
    started = time.perf_counter()
    init_params = _map_starts(model, data, seed, num_chains) if use_map else None
    if init_params is not None and num_chains == 1:
        init_params = {k: v[0] for k, v in init_params.items()}
    map_seconds = time.perf_counter() - started
    potential = _potential(model, data)
    if init_params is None:  # numpyro's default: uniform in [-2, 2] on the unconstrained scale, per chain
        shapes, _ = sites(model, data.X.shape[1], data.summary.n_classes)
        rng = np.random.default_rng(seed + 2)
        lead = (num_chains,) if num_chains > 1 else ()
        init_params = {k: rng.uniform(-2.0, 2.0, lead + tuple(shape)) for k, shape in shapes.items()}
    kernel = NUTS(
        potential_fn=potential,
        target_accept_prob=target_accept,
        dense_mass=dense_mass,
        max_tree_depth=max_tree_depth,
    )
    show = sys.stderr.isatty() if progress is None else bool(progress)
    mcmc = MCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        chain_method=chain_method,
        progress_bar=show,
    )
    with warnings.catch_warnings():
        # numpyro warns when chains outnumber devices and falls back to sequential; that is our default anyway.
        warnings.filterwarnings("ignore", message="There are not enough devices")
        mcmc.run(
            jax.random.PRNGKey(seed),
            init_params={k: jnp.asarray(v, jnp.float64) for k, v in init_params.items()},
            extra_fields=EXTRA_FIELDS,
        )
    elapsed = time.perf_counter() - started
    _, support = sites(model, data.X.shape[1], data.summary.n_classes)
    unconstrained = mcmc.get_samples(group_by_chain=True)
    # Every transform here acts elementwise or on the last axis, so whole (chain, draw, ...) arrays map
    # at once: no per-fit compiled vmap.
    samples = {
        k: np.asarray(v if support[k] is constraints.real else biject_to(support[k])(v))
        for k, v in unconstrained.items()
    }
    extra = mcmc.get_extra_fields(group_by_chain=True)
    stats = {
        "diverging": np.asarray(extra["diverging"]),
        "n_steps": np.asarray(extra["num_steps"]),
        "tree_depth": np.floor(np.log2(np.asarray(extra["num_steps"]) + 1)).astype(int),
        "acceptance_rate": np.asarray(extra["accept_prob"]),
        "energy": np.asarray(extra["energy"]),
        "lp": -np.asarray(extra["potential_energy"]),
        "step_size": np.asarray(extra["adapt_state.step_size"]),
    }
    params = {k: v.mean(axis=(0, 1)) for k, v in samples.items()}
    info = {
        "num_warmup": num_warmup,
        "num_samples": num_samples,
        "num_chains": num_chains,
        "chain_method": chain_method,
        "init": "map" if use_map else "prior (as numpyro's default: uniform in [-2, 2], unconstrained)",
        "time": elapsed,
        "map_init_time": map_seconds,
        "divergences": int(stats["diverging"].sum()),
        "sample_stats": stats,
    }
    fit = Fit(method, model, params, samples, None, info, data.feature_names, data.summary, data)
    check_diagnostics(fit)
    return fit


__all__ = ["fit_nuts", "DiagnosticsWarning"]
