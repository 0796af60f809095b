"""Stochastic variational inference (``method="svi"``) on minibatches.

The evidence lower bound of the RGLM's posterior,

    ELBO(q) = E_q[ (N / B) sum_{i in batch} log p(y_i | x_i, theta) + log p(theta) + log|J(theta)| ] + H[q],

is maximised by Adam over the parameters of a Gaussian ``q`` on the
unconstrained parameters (``log sigma``, the ordered transform of the
cutpoints, ``log prior_scale``), with one reparameterised draw per step
(``num_particles`` to average more) and the entropy ``H[q]`` in closed form.
The learning rate decays by a cosine to 0, and ``q``'s parameters are averaged over the last quarter
of the steps (Polyak averaging), which removes most of the noise of the last iterates: the posterior
correlations of a conjugate model agree with the exact ones to about 0.03 whatever the seed, against
0.2 for the last iterate.  A stopping rule watches the smoothed ELBO (the mean loss over windows of
:data:`~.schedule.WINDOW_SHARE` of the steps): from half-way on, once the last two windows differ by less than
``tol`` of its size plus twice the noise of that difference (:func:`~.schedule.settled`), the averaging quarter
starts at once and the run ends a third later.  ``fit.info["converged"]`` is the rule's verdict at the
end (False warns with a ConvergenceWarning; None: a run shorter than two windows of 250 steps, too short
to judge).  Every fit reports the PSIS k-hat of its draws
(:mod:`~.psis`) and ``q`` itself (``fit.info["variational"]``, in the fit's coordinates).

- ``guide="normal"`` (default): mean-field, one location and scale per
  scalar parameter, kept per parameter array (``w0``, ``b0``, ...);
- ``guide="lowrank"``: ``Sigma = D^2 + W W'`` with ``W`` of rank ``rank``
  (default ``round(sqrt(d))``), on the flat parameter vector;
- ``guide="mvn"``: a full Cholesky factor (small models).

These are the variational families of numpyro's ``AutoNormal``,
``AutoLowRankMultivariateNormal`` and ``AutoMultivariateNormal``, and the
objective is numpyro's ``Trace_ELBO`` with the entropy computed exactly; the
log density is the same as :meth:`RGLM.numpyro_model`'s (``log_likelihood``
and ``log_prior``).  Writing the step directly, rather than through
numpyro's ``SVI``, keeps it to the arithmetic of the network (about twice as
many steps per second; see BENCHMARKS.md).

With ``batch_size=B`` each step sees ``B`` rows drawn uniformly with
replacement by ``jax.random.randint`` (O(B), not the O(N) permutation of
numpyro's subsampling plate).  The data stay on the device and the steps run
inside a jitted ``lax.scan`` of :data:`CHUNK_STEPS` steps per call (a
progress-bar tick between calls; the steps of the last call past
``num_steps`` are masked).  The compiled chunk is cached per (model, guide,
shapes, batch-size bucket) and takes the data, the keys, the learning rate,
``num_steps`` and the batch size as arguments, so a refit with the same
shapes compiles nothing, whatever its seed, ``num_steps``, ``num_epochs``,
``learning_rate`` or ``batch_size`` within a bucket of sizes (8 per power of
two; the batch is drawn at the bucket's size and its first ``batch_size``
rows count).  An optax schedule passed as ``learning_rate`` is part of the
program.  If the ELBO becomes NaN the run stops with a warning and keeps the
last parameters whose loss was finite.

The target is built on standardised inputs (centred and scaled columns, as the optimisers and NUTS),
where a mean-field guide fits a GLM's posterior far better: on a 20,000-row Poisson regression with
non-centred columns, its sds were 0.41-0.49 of the MLE's for one coefficient in the original
coordinates (k-hat 0.84-1.03) and 0.91-1.16 standardised (k-hat 0.16-0.42).  Out of core, each window
of rows is standardised on the host by the column moments of the first pass over the file.  The steps
run as fast as in the original coordinates (a 20-50-1 net at batch 1,024: 755 against 723 steps per
second).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..exceptions import ConvergenceWarning, user_stacklevel
from ..runtime import compiled_cache
from .blocks import over_shards, traced_over
from .devices import ROW_FIELDS, ROWS
from .estimate import Estimate
from .guides import FAMILIES
from .problem import padded_size
from .psis import diagnose, draws_for_psis, log_joint
from .schedule import AVERAGE_SHARE, EARLIEST_STOP, WINDOW_SHARE, check_learning_rate, cosine_rate, settled
from .stream import Batches, RowSource
from .target import Layout, Target

GUIDES = ("normal", "lowrank", "mvn")
CHUNK_STEPS = 250  # steps per compiled call (a progress-bar tick); the last call masks the steps past num_steps
DRAW_BLOCK = 500  # draws from q per compiled call


# --- the compiled step loop ---------------------------------------------------------------------------


@compiled_cache(maxsize=32)
def _compiled_chunk(layout: Layout, guide: str, rank, batch_rows, num_particles: int, schedule):
    """``(carry, keys, active, data, hyper) -> (carry, losses)``: Adam steps on the negative ELBO in one ``lax.scan``.

    Everything that varies between runs is an argument: the data ``(problem, n, total)`` (the batch is
    drawn from the first ``n`` rows of ``problem`` and scaled to ``total`` rows: ``n = total = N`` in
    memory; out of core the problem is one window of the rows, :mod:`~bayes_rglm.inference.stream`), the keys,
    ``active`` (steps past ``num_steps`` leave the carry as it is), and
    ``hyper = (learning rate, num_steps, batch size)`` as traced numbers.
    ``batch_rows`` is the batch size's bucket (:func:`~bayes_rglm.inference.objective.padded_size`):
    that many rows are drawn and the first ``batch size`` of them count, so
    every batch size in a bucket shares one program.  ``schedule`` is a
    user's optax schedule (part of the program) or None for :func:`cosine_rate`.
    The log joint is :meth:`~bayes_rglm.inference.target.Layout.log_joint`, on the inputs as given.
    """
    family = FAMILIES[guide](layout, rank)
    import optax  # here, not at module level: importing bayes_rglm should not pay for optax

    optimizer = optax.scale_by_adam()

    def neg_elbo_one(var, key, data, batch):
        problem, n, total = data
        k_theta, k_rows = jax.random.split(key)
        theta, entropy = family.sample(var, k_theta)
        if batch_rows is None:  # every row once; padding rows carry weight 0
            log_joint = layout.log_joint(theta, problem)
        elif layout.mesh is not None:  # each device draws its share of the batch from its own rows
            params, log_jacobian = layout.constrain(theta)
            likelihood = _sharded_minibatch(layout, params, problem, k_rows, batch_rows, batch)
            log_joint = likelihood + layout.log_prior(params, problem) + log_jacobian
        else:
            rows = jax.random.randint(k_rows, (batch_rows,), 0, n)
            counted = jnp.arange(batch_rows) < batch
            log_joint = layout.log_joint(theta, problem, rows, jnp.where(counted, total / batch, 0.0))
        return -(log_joint + entropy)

    def neg_elbo(var, key, data, batch):
        if num_particles == 1:
            return neg_elbo_one(var, key, data, batch)
        keys = jax.random.split(key, num_particles)
        return jnp.mean(jax.vmap(lambda k: neg_elbo_one(var, k, data, batch))(keys))

    def step(carry, key, active, data, hyper):
        var, opt_state, last_good, bad, count, average = carry
        rate, num_steps, batch = hyper
        loss, grads = jax.value_and_grad(neg_elbo)(var, key, data, batch)
        updates, new_state = optimizer.update(grads, opt_state, var)
        lr = cosine_rate(rate, num_steps, count) if schedule is None else schedule(count)
        new_var = optax.apply_updates(var, jax.tree_util.tree_map(lambda u: -lr * u, updates))
        finite = jnp.isfinite(loss) & ~bad
        new_last_good = jax.tree_util.tree_map(lambda a, b: jnp.where(finite, a, b), var, last_good)
        # Polyak averaging over the last AVERAGE_SHARE of the steps: the mean of the noisy last iterates.
        averaged = jnp.maximum(count + 1 - jnp.floor((1.0 - AVERAGE_SHARE) * num_steps), 1.0)
        new_average = jax.tree_util.tree_map(lambda m, v: m + (v - m) / averaged, average, new_var)
        new = (new_var, new_state, new_last_good, bad | ~jnp.isfinite(loss), count + 1, new_average)
        return jax.tree_util.tree_map(lambda a, b: jnp.where(active, a, b), new, carry), loss

    def run(carry, keys, active, data, hyper):
        return jax.lax.scan(lambda c, ka: step(c, ka[0], ka[1], data, hyper), carry, (keys, active))

    def start(var):
        return (var, optimizer.init(var), var, jnp.asarray(False), jnp.asarray(0), var)

    def draw(var, key):
        return jax.vmap(lambda k: family.sample_log_q(var, k))(jax.random.split(key, DRAW_BLOCK))

    return family, start, jax.jit(traced_over(layout.mesh, run)), jax.jit(draw)


def _sharded_minibatch(layout: Layout, params: dict, problem, key, batch_rows: int, batch) -> jax.Array:
    """The minibatch log-likelihood over a mesh: device ``d`` draws its share ``m_d`` of the ``batch`` rows
    uniformly from its own ``n_d`` rows, each weighted ``n_d / m_d`` (an unbiased estimate of its rows' sum,
    padding rows included at weight 0); the devices' sums are added.  ``batch_rows`` (static): the batch
    size's bucket, of which each device draws ``ceil(batch_rows / devices)`` and counts the first ``m_d``.
    """
    model, devices = layout.model, layout.mesh.size
    local_rows = -(-batch_rows // devices)

    def local(X, y, offset, trials, weights):
        d = jax.lax.axis_index(ROWS)
        rows = jax.random.randint(jax.random.fold_in(key, d), (local_rows,), 0, X.shape[0])
        share = jnp.floor(batch / devices) + (d < jnp.mod(batch, devices))
        scale = jnp.where(jnp.arange(local_rows) < share, X.shape[0] / share, 0.0)
        rows_ll = model.log_likelihood(params, X[rows], y[rows], offset[rows], trials[rows], weights[rows])
        return jnp.sum(scale * rows_ll)

    return over_shards(local, *problem.rows)


class Run(NamedTuple):
    """A ready SVI run: the compiled chunk, its starting carry and arguments, and how to draw from ``q``."""

    step_chunk: Callable  # (carry, keys, active, arrays, hyper) -> (carry, losses)
    draw_block: Callable  # (var, key) -> (DRAW_BLOCK unconstrained draws, their log q)
    carry: tuple
    arrays: tuple  # (problem, rows to draw from, rows the likelihood is scaled to)
    target: Target
    hyper: tuple  # (learning rate, num_steps, batch size) as device scalars
    chunk: int
    num_steps: int
    rank: int | None

    def run_chunk(self, carry, keys, arrays):
        """``len(keys)`` steps, all active: ``(carry, losses)``."""
        return self.step_chunk(carry, keys, jnp.ones(len(keys), bool), arrays, self.hyper)

    def draw(self, var, key, num_samples: int) -> tuple[dict, np.ndarray, np.ndarray]:
        """``num_samples`` draws from ``q`` in blocks of :data:`DRAW_BLOCK` (one compiled program): mapped to
        their supports and the original coordinates, as the layout's flat unconstrained vectors
        ``(num_samples, size)``, and their ``log q``."""
        blocks = [self.draw_block(var, k) for k in jax.random.split(key, -(-num_samples // DRAW_BLOCK))]
        draws = {name: np.concatenate([np.asarray(b[0][name]) for b in blocks])[:num_samples] for name in blocks[0][0]}
        log_q = np.concatenate([np.asarray(b[1]) for b in blocks])[:num_samples]
        layout, problem = self.target.layout, self.target.problem
        flat = np.concatenate([draws[name].reshape(num_samples, -1) for name in layout.names], axis=1)
        original = layout.to_original(draws, np.asarray(problem.shift), np.asarray(problem.scale))
        return original, flat, log_q


def prepare(
    target: Target,
    seed: int,
    *,
    num_steps: int | None = None,
    num_epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate=0.01,
    guide: str = "normal",
    num_particles: int = 1,
    rank: int | None = None,
) -> Run:
    """Check the options and build (or fetch from the cache) the compiled step loop and its inputs.

    ``target`` is built on standardised inputs (see the module text).
    """
    data = target.data
    n = data.X.shape[0]
    if isinstance(data.X, RowSource) and batch_size is None:
        raise ValueError(
            "out-of-core X (memory-mapped or chunks) is read in minibatches: give batch_size=, e.g. batch_size=1024"
        )
    if guide not in GUIDES:
        raise ValueError(f"guide={guide!r} is not known; valid: {', '.join(GUIDES)}")
    if batch_size is not None and batch_size > n:
        raise ValueError(f"batch_size={batch_size} exceeds the number of rows ({n}); use at most {n} or None")
    mesh = target.layout.mesh
    if batch_size is not None and mesh is not None and batch_size < mesh.size:
        raise ValueError(
            f"batch_size={batch_size} is smaller than the number of devices ({mesh.size}): each device draws its "
            f"share of the batch; use batch_size >= {mesh.size}"
        )
    if num_steps is not None and num_epochs is not None:
        raise ValueError("give num_steps or num_epochs, not both")
    per_epoch = math.ceil(n / batch_size) if batch_size else 1
    num_steps = num_steps or (num_epochs * per_epoch if num_epochs else 5000)
    d = target.layout.size
    if guide == "lowrank":
        rank = int(rank) if rank is not None else max(1, int(round(math.sqrt(d))))
    else:
        rank = None
    check_learning_rate(learning_rate)
    family, start_carry, step_chunk, draw_block = _compiled_chunk(
        target.layout,
        guide,
        rank,
        None if batch_size is None else padded_size(batch_size),
        int(num_particles),
        learning_rate if callable(learning_rate) else None,
    )
    rate = 0.0 if callable(learning_rate) else float(learning_rate)
    hyper = (jnp.asarray(rate), jnp.asarray(float(num_steps)), jnp.asarray(float(batch_size or n)))

    start = target.layout.initial(data, target.problem, np.random.default_rng(seed))
    carry = start_carry(family.init({k: jnp.asarray(v, float) for k, v in start.items()}))
    arrays = (target.problem, jnp.asarray(n), jnp.asarray(float(n)))
    return Run(step_chunk, draw_block, carry, arrays, target, hyper, CHUNK_STEPS, num_steps, rank)


def fit_svi(
    target: Target,
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
    tol: float | None = 1e-4,
    psis: bool = True,
    progress=None,
) -> Estimate:
    """Fit the guide by Adam on the (minibatch) ELBO, then draw ``num_samples`` from it.

    ``tol``: the stopping rule's relative change of the smoothed ELBO (:func:`~.schedule.settled`); None runs every step
    (``converged`` is then judged at the end with the default tolerance).  ``psis=False`` skips the k-hat.
    """
    run = prepare(
        target,
        seed,
        num_steps=num_steps,
        num_epochs=num_epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        guide=guide,
        num_particles=num_particles,
        rank=rank,
    )
    carry, arrays, chunk, num_steps, hyper = run.carry, run.arrays, run.chunk, run.num_steps, run.hyper
    key = jax.random.PRNGKey(seed)
    losses, done, started, stopped_early = [], 0, time.perf_counter(), None
    smoothing = max(chunk, int(WINDOW_SHARE * num_steps))  # steps per window of the smoothed ELBO
    bar = _progress(progress, num_steps)
    batches = _batches(run, seed)
    upcoming = None if batches is None else batches.next()
    while done < num_steps:
        key, sub = jax.random.split(key)
        if batches is not None:  # out of core: this window's rows, sent now; the next one read meanwhile
            rows, size, steps = upcoming
            window = run.target.problem._replace(**dict(zip(ROW_FIELDS, rows, strict=True)))
            arrays = (jax.device_put(window), jnp.asarray(size), run.arrays[2])
        take = min(chunk if batches is None else steps, num_steps - done)
        active = np.arange(chunk) < take
        carry, chunk_losses = run.step_chunk(carry, jax.random.split(sub, chunk), active, arrays, hyper)
        if batches is not None and done + take < num_steps:
            upcoming = batches.next()  # on the host while the device runs the steps just dispatched
        losses.append(np.asarray(chunk_losses)[:take])
        done += take
        if bar is not None:
            bar.update(take)
            bar.set_postfix(elbo=f"{-float(np.nanmean(losses[-1])):.4g}")
        if bool(carry[3]):
            break
        averaging = done >= (1.0 - AVERAGE_SHARE) * num_steps
        checked = done >= EARLIEST_STOP * num_steps and not averaging
        if tol is not None and stopped_early is None and checked and settled(np.concatenate(losses), smoothing, tol):
            # The stopping rule: the smoothed ELBO has stopped changing, so the averaging phase starts now: the
            # run ends after a further third of the steps so far, the learning rate on the schedule's tail.
            stopped_early = done
            num_steps = int(np.ceil(done / (1.0 - AVERAGE_SHARE)))
            hyper = (hyper[0], jnp.asarray(float(num_steps)), hyper[2])
            if bar is not None:
                bar.total = num_steps
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - started
    loss_trace = np.concatenate(losses)
    stopped = bool(carry[3])
    final_var = carry[2] if stopped else carry[5]
    if stopped:
        first_nan = int(np.flatnonzero(~np.isfinite(loss_trace))[0])
        warnings.warn(
            f"SVI stopped at step {first_nan}: the ELBO became NaN or infinite. The last parameters with a finite "
            "loss are kept; lower learning_rate, standardise X, or use a tighter prior.",
            ConvergenceWarning,
            stacklevel=user_stacklevel(),
        )
    draws, flat, log_q = run.draw(final_var, jax.random.fold_in(key, 1), int(num_samples))
    samples = {k: v[None] for k, v in draws.items()}  # one chain, original coordinates
    params = {k: v.mean(axis=(0, 1)) for k, v in samples.items()}
    tail = loss_trace[-max(1, len(loss_trace) // 10) :]
    tol = 1e-4 if tol is None else tol
    if stopped:
        converged = False
    elif stopped_early is not None:
        converged = True
    elif len(loss_trace) < 2 * smoothing:
        converged = None  # too short to judge: fewer than two windows of the smoothed ELBO
    else:
        converged = settled(loss_trace, smoothing, tol)
    info = {
        "guide": guide,
        "num_steps": int(len(loss_trace)),
        "batch_size": batch_size,
        "elbo": (-loss_trace).tolist(),
        "final_elbo": float(-np.mean(tail[np.isfinite(tail)])) if np.isfinite(tail).any() else float("nan"),
        "stopped_on_nan": stopped,
        "time": elapsed,
        "steps_per_second": len(loss_trace) / elapsed if elapsed > 0 else float("nan"),
        "converged": converged,
        "stopping_step": stopped_early,
    }
    if converged is False and not stopped:
        warnings.warn(
            f"SVI did not converge in {len(loss_trace)} steps: the smoothed ELBO still changes by more than "
            f"tol={tol:g} (relative) and its noise between the last two windows of {smoothing} steps. Give more "
            "num_steps (or num_epochs), or a larger learning_rate",
            ConvergenceWarning,
            stacklevel=user_stacklevel(),
        )
    if run.rank is not None:
        info["rank"] = run.rank
    # q itself, in the fit's coordinates: unconstrained, the inputs standardised (problem.shift, problem.scale).
    info["variational"] = FAMILIES[guide](run.target.layout, run.rank).describe(final_var)
    if not psis:
        info.update({"pareto_k": None, "pareto_k_target": "not computed (psis=False)"})
    elif batches is None:  # PSIS needs a pass over every row per draw: not out of core
        m = draws_for_psis(len(log_q), run.target.data.X.shape[0], run.target.layout.size)  # the first m draws
        log_p = log_joint(run.target.layout, run.target.problem, flat[:m])
        diagnose(info, log_p, log_q[:m], "svi", "the posterior")
    else:
        info["pareto_k"] = None
    return Estimate(params, samples, None, info)


def _batches(run: Run, seed: int) -> Batches | None:
    """The host-side minibatches of an out-of-core run (None when the rows are on the device)."""
    data = run.target.data
    if not isinstance(data.X, RowSource):
        return None
    rows = {"y": data.y, "offset": data.offset, "trials": data.trials, "weights": data.weights}
    batch = int(np.asarray(run.hyper[2]))
    problem = run.target.problem
    standardise = (np.asarray(problem.shift), np.asarray(problem.scale)) if run.target.layout.standardised else None
    return Batches(data.X, rows, padded_size(batch), np.random.default_rng([seed, 7]), standardise)


def _progress(progress, total):
    import sys

    show = sys.stderr.isatty() if progress is None else bool(progress)
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="SVI", unit="step")
