"""Stochastic variational inference (``method="svi"``) on minibatches.

numpyro's ``SVI`` with an autoguide: ``guide="normal"`` (mean-field,
default), ``"lowrank"`` or ``"mvn"`` (full covariance, small models).  With
``batch_size=B`` each step sees ``B`` rows drawn uniformly with replacement
by ``jax.random.randint`` (O(B), not the O(N) permutation of numpyro's
subsampling plate); the indices are handed to the model's ``data`` plate, so
the log-likelihood is scaled by ``N / B`` exactly as numpyro's plate does.
The data stay on the device and the steps run inside a jitted
``lax.scan`` in chunks (one compiled call per chunk, a progress-bar tick
between chunks).  If the ELBO becomes NaN the run stops with a warning and
keeps the last parameters whose loss was finite.
"""

from __future__ import annotations

import math
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
from numpyro import handlers
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoLowRankMultivariateNormal, AutoMultivariateNormal, AutoNormal
from numpyro.infer.initialization import init_to_value
from numpyro.optim import optax_to_numpyro

from ..exceptions import ConvergenceWarning
from ..model import RGLM, Dataset
from .point import _initial_params

GUIDES = {"normal": AutoNormal, "lowrank": AutoLowRankMultivariateNormal, "mvn": AutoMultivariateNormal}
_CHUNKS = 20  # compiled calls per run (progress-bar ticks)


def _learning_rate(learning_rate, num_steps: int):
    if callable(learning_rate):
        return learning_rate
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, int | float) or not learning_rate > 0:
        raise ValueError(f"learning_rate must be a positive number or an optax schedule, got {learning_rate!r}")
    # Cosine decay to 10% of the starting rate: large steps early, small ones to settle the ELBO.
    return optax.cosine_decay_schedule(float(learning_rate), num_steps, alpha=0.1)


def fit_svi(
    model: RGLM,
    data: Dataset,
    method: str,
    seed: int,
    *,
    num_steps: int | None = None,
    num_epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate=0.01,
    guide: str = "normal",
    num_samples: int = 1000,
    num_particles: int = 1,
    rank: int | None = None,
    progress=None,
):
    """Fit the guide by Adam on the (minibatch) ELBO, then draw ``num_samples`` from it."""
    from ..results import Fit

    n = data.X.shape[0]
    if guide not in GUIDES:
        raise ValueError(f"guide={guide!r} is not known; valid: {', '.join(GUIDES)}")
    if batch_size is not None and batch_size > n:
        raise ValueError(f"batch_size={batch_size} exceeds the number of rows ({n}); use at most {n} or None")
    if num_steps is not None and num_epochs is not None:
        raise ValueError("give num_steps or num_epochs, not both")
    per_epoch = math.ceil(n / batch_size) if batch_size else 1
    num_steps = num_steps or (num_epochs * per_epoch if num_epochs else 5000)

    rng = np.random.default_rng(seed)
    start = {k: jnp.asarray(v) for k, v in _initial_params(model, data, rng, jitter=True).items()}
    guide_kwargs = {"init_loc_fn": init_to_value(values=start)}
    if guide == "lowrank" and rank is not None:
        guide_kwargs["rank"] = rank
    if guide in ("normal", "lowrank", "mvn"):
        guide_kwargs["init_scale"] = 0.05
    kwargs = dict(n_classes=data.summary.n_classes, y_scale=data.summary.y_scale)

    def batched(index, X, y, offset, trials):
        # Hand the drawn row indices to the model's subsampling plate.
        with handlers.substitute(data={"data": index}):
            model.numpyro_model(X, y, offset=offset, trials=trials, batch_size=index.shape[0], **kwargs)

    guide_fn = GUIDES[guide](batched, **guide_kwargs)
    optimizer = optax_to_numpyro(optax.adam(_learning_rate(learning_rate, num_steps)))
    svi = SVI(batched, guide_fn, optimizer, Trace_ELBO(num_particles=num_particles))
    arrays = tuple(jnp.asarray(a) for a in (data.X, data.y, data.offset, data.trials))
    batch = batch_size or n
    full_index = jnp.arange(n)

    def draw_index(key):
        return jax.random.randint(key, (batch,), 0, n) if batch_size else full_index

    key = jax.random.PRNGKey(seed)
    key, init_key, index_key = jax.random.split(key, 3)
    state = svi.init(init_key, draw_index(index_key), *arrays)

    def step(carry, step_key):
        state, last_good, bad = carry
        new_state, loss = svi.update(state, draw_index(step_key), *arrays)
        finite = jnp.isfinite(loss)
        last_good = jax.tree_util.tree_map(lambda a, b: jnp.where(finite & ~bad, a, b), new_state, last_good)
        return (new_state, last_good, bad | ~finite), loss

    chunk = max(1, math.ceil(num_steps / _CHUNKS))
    run_chunk = jax.jit(lambda carry, keys: jax.lax.scan(step, carry, keys))
    carry = (state, state, jnp.asarray(False))
    losses, done, started = [], 0, time.perf_counter()
    bar = _progress(progress, num_steps)
    while done < num_steps:
        key, sub = jax.random.split(key)
        carry, chunk_losses = run_chunk(carry, jax.random.split(sub, chunk))
        take = min(chunk, num_steps - done)
        losses.append(np.asarray(chunk_losses)[:take])
        done += take
        if bar is not None:
            bar.update(take)
            bar.set_postfix(elbo=f"{-float(np.nanmean(losses[-1])):.4g}")
        if bool(carry[2]):
            break
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - started
    loss_trace = np.concatenate(losses)
    stopped = bool(carry[2])
    final_state = carry[1] if stopped else carry[0]
    if stopped:
        first_nan = int(np.flatnonzero(~np.isfinite(loss_trace))[0])
        warnings.warn(
            f"SVI stopped at step {first_nan}: the ELBO became NaN or infinite. The last parameters with a finite "
            "loss are kept; lower learning_rate, standardise X, or use a tighter prior.",
            ConvergenceWarning,
            stacklevel=3,
        )
    guide_params = svi.get_params(final_state)
    sample_key = jax.random.fold_in(key, 1)
    draws = guide_fn.sample_posterior(sample_key, guide_params, sample_shape=(num_samples,))
    names = set(model.parameter_shapes(data.X.shape[1], data.summary.n_classes))
    names |= {f"prior_scale{layer}" for layer in range(model.depth + 1)} if model.prior.hierarchical else set()
    samples = {k: np.asarray(v)[None] for k, v in draws.items() if k in names}
    params = {k: v.mean(axis=(0, 1)) for k, v in samples.items()}
    window = max(1, len(loss_trace) // 10)
    info = {
        "guide": guide,
        "num_steps": int(len(loss_trace)),
        "batch_size": batch_size,
        "elbo": (-loss_trace).tolist(),
        "final_elbo": float(-np.mean(loss_trace[-window:][np.isfinite(loss_trace[-window:])]))
        if np.isfinite(loss_trace[-window:]).any()
        else float("nan"),
        "stopped_on_nan": stopped,
        "time": elapsed,
        "steps_per_second": len(loss_trace) / elapsed if elapsed > 0 else float("nan"),
        "converged": not stopped,
    }
    return Fit(method, model, params, samples, None, info, data.feature_names, data.summary, data)


def _progress(progress, total):
    import sys

    show = sys.stderr.isatty() if progress is None else bool(progress)
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="SVI", unit="step")
