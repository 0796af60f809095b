"""The No-U-Turn sampler (``method="nuts"``): numpyro's NUTS kernel, driven by one compiled program.

``num_warmup`` and ``num_samples`` per chain, ``num_chains`` (default 4),
``chain_method``, ``target_accept`` and ``dense_mass``.  The chain methods:

* ``"parallel"`` (the default): a ``pmap`` across devices when there is one
  per chain (and more than one chain).  With fewer devices on CPU, each chain is a call of the one-chain
  program from a host thread, as many at a time as there are cores (XLA runs
  a program without holding Python's lock).  Elsewhere it is ``"sequential"``.
  On this project's 2-core machine, threads halve the time of a BNN's two
  chains (20.0 -> 9.6 s) and of spector's refit (0.84 -> 0.45 s).
* ``"sequential"``: a ``lax.map`` over chains, one program, one core.
* ``"vectorized"``: a ``vmap``, all chains in lockstep (each tree waits for
  the deepest).

``fit.info["chain_method"]`` is the method that ran and
``fit.info["chain_threads"]`` the number of host threads.

The sampler runs in the optimiser's standardised coordinates: inputs centred
and scaled (``x_std = (x - shift) / scale``, as rstanarm centres predictors),
the first layer's weights and bias sampled there, and the draws mapped back
exactly (a linear change of variables with a constant Jacobian).  On
spector's logit model that takes NUTS from 36 leapfrog steps per iteration
to 6.

The potential is :meth:`~bayes_rglm.inference.target.Layout.log_joint`, the
one log joint SVI also uses.  Warm-up and sampling run in compiled chunks of
:data:`CHUNK_STEPS` transitions that take the (padded) data, the states, the
number of steps, ``num_warmup``, the adaptation windows and ``target_accept``
as arguments; they are cached per (layout, ``chain_method``, ``dense_mass``,
``max_tree_depth``), so a refit of data of the same shapes compiles nothing,
whatever its seed, ``num_warmup`` or ``num_samples``.

Chains of models start from MAP solutions, one per chain from its own random
start, all found in one vmapped optimisation, plus a little jitter, so
warm-up is spent adapting, not searching, and chains of links with a
restricted or symmetric domain (inverse: eta > 0; sqrt: eta and -eta give the
same mean) start in the valid, same mode.  ``init="prior"`` uses numpyro's
default random starts instead.  Divergences, tree depth, step size,
acceptance and energy go to ``sample_stats``; divergences, r-hat above 1.01
and bulk ESS below 100 raise a :class:`~bayes_rglm.DiagnosticsWarning`
(judged on E[y|x] at probe rows for models with hidden layers, whose weights
are not identified).
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer.hmc import hmc, momentum_generator
from numpyro.infer.hmc_util import (
    IntegratorState,
    build_adaptation_schedule,
    dual_averaging,
    euclidean_kinetic_energy,
    find_reasonable_step_size,
    welford_covariance,
)

from .. import precision
from ..exceptions import DiagnosticsWarning
from ..runtime import arviz, compiled_cache, is_small, jit
from .estimate import Estimate
from .point import optimise, optimise_batch
from .problem import Problem
from .target import Layout, Target, with_layout

CHAIN_METHODS = ("sequential", "parallel", "vectorized")

START_ITERATIONS = 200  # hidden layers: L-BFGS iterations towards the MAP that starts each chain


def _map_starts(target: Target, seed: int, num_chains: int) -> dict:
    """Unconstrained standardised starts per chain from MAP solutions, jittered.

    With hidden layers each chain gets its own approximate MAP from its own random start, all chains in
    one vmapped optimisation of :data:`START_ITERATIONS` L-BFGS steps, without the Newton polish: enough
    to reach the posterior's bulk (which lies about P/2 nats below the mode), where warm-up takes over.
    Converging instead costs ten times as long on a 1-10-1 net (L-BFGS needs thousands of steps along
    its flat directions), and changes nothing the warm-up would not.

    At depth 0 one MAP serves every chain: the chains would all reach that one mode of a GLM's
    posterior, and the single optimisation is the program ``method="map"`` compiles (a fraction of a
    vmapped one's compile time, and shared with a MAP fit of the same shapes).
    """
    optimiser_target = with_layout(target, scales=False)
    if target.model.depth == 0:
        optimum = optimiser_target.layout.unravel(np.asarray(optimise(optimiser_target, True, seed).solution.x))
        opts = {k: np.broadcast_to(v, (num_chains, *np.shape(v))) for k, v in optimum.items()}
    else:
        opts = optimise_batch(optimiser_target, True, seed, num_chains, max_iter=START_ITERATIONS // 20, polish=False)
    rng = np.random.default_rng(seed + 1)
    starts = {}
    for name, value in opts.items():
        # Jitter relative to each value's size: an absolute jitter can push eta out of an
        # inverse link's domain when coefficients are small (gamma/inverse: eta ~ 1e-2).
        value = np.asarray(value)
        starts[name] = value + (0.01 * np.abs(value) + 1e-4) * rng.standard_normal(np.shape(value))
    return starts


def _potential_gen(layout: Layout):
    """``problem -> (theta -> -log p(theta, y))``: the negative of :meth:`Layout.log_joint`, as numpyro's
    ``potential_fn_gen`` wants it (the data an argument, so the compiled sampler serves every refit)."""

    def gen(problem: Problem):
        return lambda theta: -layout.log_joint(theta, problem)

    return gen


CHUNK_STEPS = 100  # NUTS transitions per compiled call; the steps past num_warmup + num_samples are masked
MAX_WINDOWS = 40  # warm-up adaptation windows the compiled program can hold (Stan's schedule: ~log2(num_warmup))


def adaptation_windows(num_warmup: int) -> tuple[np.ndarray, int]:
    """The last step of each warm-up window (numpyro's ``build_adaptation_schedule``, Stan's), padded to
    :data:`MAX_WINDOWS`, and the number of windows: run-time arguments of the compiled sampler."""
    windows = build_adaptation_schedule(num_warmup) if num_warmup > 0 else []
    ends = np.full(MAX_WINDOWS, np.iinfo(np.int32).max, dtype=np.int64)
    ends[: len(windows)] = [w.end for w in windows]
    return ends, len(windows)


@compiled_cache(maxsize=32)
def _compiled_sampler(layout: Layout, chain_method: str, dense_mass: bool, max_tree_depth: int, small: bool = False):
    """``(init, chunk)``: compiled NUTS programs whose lengths and schedule are run-time arguments.

    ``init(starts, keys, problem, target_accept) -> states`` and
    ``chunk(states, problem, hyper) -> (states, (draws, stats))`` with
    ``hyper = (steps to run, num_warmup, window ends, number of windows, target_accept)``.
    Each transition is numpyro's NUTS kernel (``numpyro.infer.hmc.hmc``), built without warm-up;
    the warm-up adaptation -- dual averaging of the step size towards ``target_accept`` and the
    mass matrix from Welford estimates over Stan's doubling windows, regularised as Stan does --
    is applied here from numpyro's ``dual_averaging`` and ``welford_covariance`` with the window
    schedule as data, so one program serves every ``num_warmup`` and ``num_samples``.  ``small``:
    compiled for quick compilation (:func:`bayes_rglm.runtime.jit`; not with ``"parallel"``).
    """
    init_kernel, sample_kernel = hmc(potential_fn_gen=_potential_gen(layout), algo="NUTS")
    step_init, step_update = dual_averaging()
    mass_init, mass_update, mass_final = welford_covariance(diagonal=not dense_mass)

    def start(theta, key, problem, target_accept):
        return init_kernel(
            theta,
            0,  # no adaptation inside numpyro's kernel: adapt() below does it with a run-time schedule
            dense_mass=dense_mass,
            # A constant: numpyro's own (unused) warm-up update closes over it, and chunk() traces that later.
            target_accept_prob=0.8,
            max_tree_depth=max_tree_depth,
            model_args=(problem,),
            rng_key=key,
        )

    potential = _potential_gen(layout)

    def adapt(t, state, problem, hyper):
        """One warm-up update of the step size and mass matrix after transition ``t`` (Stan's scheme)."""
        _, num_warmup, ends, num_windows, target_accept = hyper
        a = state.adapt_state
        step_state = step_update(target_accept - state.accept_prob, a.ss_state)
        log_step, log_step_average = step_state[0], step_state[1]
        step_size = jnp.exp(jnp.where(t == num_warmup - 1, log_step_average, log_step))
        finfo = jnp.finfo(jnp.result_type(step_size))
        step_size = jnp.clip(step_size, finfo.tiny, finfo.max)
        window = a.window_idx
        middle = (window > 0) & (window < num_windows - 1)
        mass_state = jax.lax.cond(middle, lambda m: mass_update(state.z, m), lambda m: m, a.mm_state)
        at_end = t == ends[window]
        a = a._replace(step_size=step_size, ss_state=step_state, mm_state=mass_state)
        a = a._replace(window_idx=jnp.where(at_end, window + 1, window))

        def end_of_window(a):
            # As Stan and numpyro: the new metric gets a step size found for it (doubled or halved until
            # one leapfrog step's acceptance crosses 0.8), and dual averaging restarts towards 10x that.
            inverse_mass, mass_sqrt, mass_sqrt_inv = mass_final(a.mm_state, regularize=True)
            size = inverse_mass.shape[-1]
            step_size = find_reasonable_step_size(
                potential(problem),
                euclidean_kinetic_energy,
                momentum_generator,
                a.step_size,
                inverse_mass,
                IntegratorState(state.z, None, state.potential_energy, state.z_grad),
                jax.random.fold_in(state.rng_key, t),
            )
            return a._replace(
                step_size=step_size,
                inverse_mass_matrix=inverse_mass,
                mass_matrix_sqrt=mass_sqrt,
                mass_matrix_sqrt_inv=mass_sqrt_inv,
                mm_state=mass_init(size),
                ss_state=step_init(jnp.log(10.0) + jnp.log(step_size)),
            )

        return state._replace(adapt_state=jax.lax.cond(at_end & middle, end_of_window, lambda a: a, a))

    def transition(state, problem, hyper):
        steps, num_warmup = hyper[0], hyper[1]
        t = state.i
        new = sample_kernel(state, model_args=(problem,))
        new = jax.lax.cond(t < num_warmup, lambda s: adapt(t, s, problem, hyper), lambda s: s, new)
        new = jax.tree_util.tree_map(lambda x, y: jnp.where(t < steps, x, y), new, state)
        fields = (new.diverging, new.num_steps, new.accept_prob, new.energy, new.potential_energy)
        return new, (new.z, (*fields, new.adapt_state.step_size))

    def chunk(state, problem, hyper):
        return jax.lax.scan(lambda s, _: transition(s, problem, hyper), state, None, length=CHUNK_STEPS)

    if chain_method == "parallel":
        return jax.pmap(start, in_axes=(0, 0, None, None)), jax.pmap(chunk, in_axes=(0, None, None))
    if chain_method == "vectorized":
        return jit(jax.vmap(start, in_axes=(0, 0, None, None)), small), jit(
            jax.vmap(chunk, in_axes=(0, None, None)), small
        )

    def start_all(thetas, keys, problem, target_accept):
        return jax.lax.map(lambda tk: start(tk[0], tk[1], problem, target_accept), (thetas, keys))

    def chunk_all(states, problem, hyper):
        return jax.lax.map(lambda s: chunk(s, problem, hyper), states)

    return jit(start_all, small), jit(chunk_all, small)


def _hyper(total: int, num_warmup: int, target_accept: float) -> tuple:
    """The sampler's run-time arguments ``(steps, num_warmup, window ends, number of windows, target_accept)``,
    typed alike for every call so that they all share one compiled program."""
    ends, num_windows = adaptation_windows(num_warmup)
    return (
        jnp.asarray(total),
        jnp.asarray(num_warmup),
        jnp.asarray(ends),
        jnp.asarray(num_windows),
        jnp.asarray(float(target_accept)),
    )


_COMPILED: set = set()  # (sampler, data shapes, chains) already compiled in this process


def _compile_meanwhile(init, chunk, layout: Layout, problem: Problem, keys) -> threading.Thread | None:
    """Compile the sampler's two programs in a thread while the MAP starts are found (on 2 cores the two
    compilations overlap); None when they are already compiled.

    The thread calls them once on dummy arguments of the real shapes (zero starts, a chunk whose steps
    are all masked), which fills JAX's cache; the real calls then find the programs.  A failure there
    only means the real call compiles them itself.
    """
    key = (id(init), tuple(a.shape for a in problem[:5]), keys.shape, precision.current())
    if key in _COMPILED:
        return None
    _COMPILED.add(key)
    num_chains = keys.shape[0]

    dtype = precision.current()

    def work():
        try:
            with precision.scope(dtype):  # JAX's x64 setting is thread-local: enter the fit's scope here too
                zeros = {k: jax.device_put(np.zeros((num_chains, *shape))) for k, shape in layout.shapes.items()}
                hyper = _hyper(0, 0, 0.8)  # total 0: every step masked
                jax.block_until_ready(chunk(init(zeros, keys, problem, hyper[-1]), problem, hyper))
        except Exception:  # noqa: BLE001 - the real call reports any real error
            pass

    thread = threading.Thread(target=work, name="bayes_rglm-nuts-compile", daemon=True)
    thread.start()
    return thread


def _run_chains(init, chunk, starts, keys, problem, num_warmup, num_samples, target_accept, bar, threads=1):
    """Warm-up and sampling in chunks of :data:`CHUNK_STEPS`; the kept draws ``(chain, draw, ...)`` and stats.

    ``threads > 1``: each chain is its own call of the one-chain programs, ``threads`` chains at a time in
    host threads.  XLA runs a program without holding Python's lock, so the chains run on separate cores.
    """
    total = num_warmup + num_samples
    hyper = _hyper(total, num_warmup, target_accept)
    chains = keys.shape[0]
    lock, stop = threading.Lock(), threading.Event()

    def run(starts, keys):
        states = init(starts, keys, problem, hyper[-1])
        pieces = []
        for done in range(0, total, CHUNK_STEPS):
            if stop.is_set():
                return None
            states, out = chunk(states, problem, hyper)
            pieces.append(jax.tree_util.tree_map(np.asarray, out))
            if bar is not None:
                with lock:
                    bar.update(min(CHUNK_STEPS, total - done))
        return jax.tree_util.tree_map(lambda *a: np.concatenate(a, axis=1)[:, num_warmup:total], *pieces)

    if threads == 1:
        return run(starts, keys)
    dtype = precision.current()
    starts, keys = jax.tree_util.tree_map(np.asarray, (starts, keys))  # sliced on the host: nothing to compile

    def one(c):
        with precision.scope(dtype):  # JAX's x64 setting is thread-local: enter the fit's scope here too
            return run(*jax.tree_util.tree_map(lambda a: a[c : c + 1], (starts, keys)))

    pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="bayes_rglm-chain")
    try:
        futures = [pool.submit(one, c) for c in range(chains)]
        parts = [future.result() for future in futures]
    except BaseException:  # an error in a chain, or Ctrl-C: the other chains stop at their next chunk
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return jax.tree_util.tree_map(lambda *a: np.concatenate(a, axis=0), *parts)


def _chain_plan(chain_method: str, num_chains: int) -> tuple[str, str, int]:
    """``(program, method that runs, host threads)`` for ``chain_method``.

    ``"parallel"`` is a ``pmap`` only with one device per chain (and more than one chain); otherwise the
    chains run the sequential program, called per chain from one thread per core (at most one per
    chain) on CPU, once for all chains elsewhere (numpyro then runs the chains one after another).
    """
    if chain_method != "parallel" or 1 < num_chains <= jax.local_device_count():
        return chain_method, chain_method, 1
    threads = 1
    if jax.default_backend() == "cpu":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        threads = max(1, min(num_chains, cores))
    return "sequential", "parallel" if threads > 1 else "sequential", threads


def fit_nuts(
    target: Target,
    method: str,
    seed: int,
    *,
    num_warmup: int = 1000,
    num_samples: int = 1000,
    num_chains: int = 4,
    chain_method: str = "parallel",
    target_accept: float = 0.8,
    dense_mass: bool = False,
    max_tree_depth: int = 10,
    init: str | None = None,
    progress=None,
):
    """Sample the posterior by NUTS: draws ``(num_chains, num_samples, ...)``."""
    model = target.model
    if chain_method not in CHAIN_METHODS:
        raise ValueError(f"chain_method={chain_method!r} is not known; use 'sequential', 'parallel' or 'vectorized'")
    if isinstance(target_accept, bool) or not isinstance(target_accept, int | float) or not 0 < target_accept < 1:
        raise ValueError(f"target_accept must be in (0, 1), e.g. 0.8 or 0.95, got {target_accept!r}")
    if init not in (None, "map", "prior"):
        raise ValueError(f"init={init!r} is not known; use 'map' (default) or 'prior'")
    if model.prior.hierarchical and init == "map":
        raise ValueError("init='map' is not available with a hierarchical prior (its MAP does not exist)")
    program, chain_method, threads = _chain_plan(chain_method, num_chains)
    # MAP starts: hidden layers would otherwise spend warm-up searching, and links with a restricted
    # domain (inverse, sqrt: eta and -eta give the same mean) would start in invalid or mirrored regions.
    use_map = not model.prior.hierarchical if init is None else init == "map"
    started = time.perf_counter()
    layout, problem = target.layout, target.problem
    # XLA's quick compilation for small GLMs, whose sampling is cheap (6 leapfrog steps per iteration on
    # spector): first fit 5.3 -> 4.9 s, refit 0.50 -> 0.59 s. Nets take many more steps per iteration, so
    # their sampler keeps the optimised code (ESS per second counts there).
    small = model.depth == 0 and is_small(problem.X.shape[0], layout.size)
    init, chunk = _compiled_sampler(layout, program, bool(dense_mass), int(max_tree_depth), small)
    keys = jax.random.split(jax.random.PRNGKey(seed), num_chains)
    # The programs are compiled before the threads call them (else each thread would compile them).
    shape = keys[:1] if threads > 1 else keys
    compiling = _compile_meanwhile(init, chunk, layout, problem, shape) if use_map or threads > 1 else None
    if use_map:
        starts = _map_starts(target, seed, num_chains)
    else:  # numpyro's default: uniform in [-2, 2] on the unconstrained scale, per chain
        rng = np.random.default_rng(seed + 2)
        starts = {k: rng.uniform(-2.0, 2.0, (num_chains, *shape)) for k, shape in layout.shapes.items()}
    map_seconds = time.perf_counter() - started
    if compiling is not None:
        if compiling.is_alive():
            # The other core is still compiling the sampler: import the library of the r-hat and ESS check
            # (inference.fit runs it after sampling) now, on this one, rather than after sampling.
            arviz()
        compiling.join()
    bar = _progress(progress, num_chains, num_warmup + num_samples, threads)
    starts = {k: jnp.asarray(v, float) for k, v in starts.items()}
    unconstrained, extra = _run_chains(
        init, chunk, starts, keys, problem, int(num_warmup), int(num_samples), target_accept, bar, threads
    )
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - started
    samples = layout.to_original(unconstrained, np.asarray(problem.shift), np.asarray(problem.scale))
    diverging, n_steps, accept, energy, potential_energy, step_size = (np.asarray(a) for a in extra)
    stats = {
        "diverging": diverging,
        "n_steps": n_steps,
        "tree_depth": np.floor(np.log2(n_steps + 1)).astype(int),
        "acceptance_rate": accept,
        "energy": energy,
        "lp": -potential_energy,
        "step_size": step_size,
    }
    params = {k: v.mean(axis=(0, 1)) for k, v in samples.items()}
    info = {
        "num_warmup": num_warmup,
        "num_samples": num_samples,
        "num_chains": num_chains,
        "chain_method": chain_method,
        "chain_threads": threads,
        "init": "map" if use_map else "prior (as numpyro's default: uniform in [-2, 2], unconstrained)",
        "coordinates": "standardised inputs (centred and scaled), mapped back exactly",
        "time": elapsed,
        "map_init_time": map_seconds,
        "divergences": int(stats["diverging"].sum()),
        "sample_stats": stats,
    }
    return Estimate(params, samples, None, info)


def _progress(progress, chains: int, per_chain: int, threads: int):
    """A tqdm bar over the iterations of all chains together (each chain's in turn when ``threads`` is 1)."""
    import sys

    show = sys.stderr.isatty() if progress is None else bool(progress)
    if not show:
        return None
    from tqdm.auto import tqdm

    if threads == 1:
        return tqdm(total=per_chain, desc=f"NUTS, {chains} chains", unit="it")
    return tqdm(total=chains * per_chain, desc=f"NUTS, {chains} chains, {threads} at a time", unit="it")


__all__ = ["fit_nuts", "DiagnosticsWarning"]
