"""Minibatch SVI on a 20-50-1 tanh network: bayes_rglm against numpyro's subsampling plate and a jax+optax loop.

Usage::

    python benchmarks/svi_minibatch.py            # N=200,000 and 1,000,000 rows, 2,000 timed steps, 3 repeats
    python benchmarks/svi_minibatch.py --quick    # N=20,000, 600 timed steps, 2 repeats (smoke test)
    python benchmarks/svi_minibatch.py --out PATH # where the markdown section goes (default BENCHMARKS.md)

What is measured
----------------
The same regression problem for every implementation: ``X`` (N, 20) standard
normal, ``y`` from a fixed random 20-50-1 tanh network plus Gaussian noise
(sd 0.3), all float64 (bayes_rglm computes in float64 by default, so every
worker enables ``jax_enable_x64`` for its peers).  The model is the same in all three:
Normal(0, 1) priors on every weight and bias, a Gaussian likelihood with
``sigma ~ HalfNormal(2.5 sd(y))``, a mean-field Gaussian variational family
(numpyro ``AutoNormal`` or hand-written), one-sample reparameterised ELBO,
Adam, batches of ``--batch`` (1024) rows.

* **bayes_rglm** -- ``RGLM("gaussian", hidden=(50,), activation="tanh",
  prior=GaussianPrior(scale=1.0)).fit(X, y, method="svi", batch_size=1024,
  num_steps=S, guide="normal", num_samples=10, progress=False)``.  The worker
  first fits once with ``--warmup-steps`` steps (one-time JAX start-up costs),
  then times ``--repeats`` fits of S steps.  Reported: the whole call's wall
  time, ``fit.info["steps_per_second"]`` (the library's own figure: steps over
  the time of its step loop, which starts after ``svi.init`` but includes the
  compilation of the jitted chunk on the first chunk), and a *steady-state*
  rate.  The library runs its steps in 20 jitted ``lax.scan`` chunks and ticks
  its progress bar after each; the worker replaces the private progress-bar
  factory ``bayes_rglm.inference.svi._progress`` with a recorder of
  ``time.perf_counter()`` per tick (no computation changes), and the
  steady-state rate is chunk length / median chunk time over chunks 2..20.
  XLA compilations during each timed fit are counted with ``jax.monitoring``.
* **numpyro plate** -- a hand-written numpyro model of the same network with
  ``numpyro.plate("data", N, subsample_size=1024)``, ``AutoNormal``,
  ``numpyro.optim.Adam(0.01)``, ``Trace_ELBO()``.  The steps are
  ``svi.update`` inside a jitted ``lax.scan`` -- exactly the loop that
  ``SVI.run(progress_bar=False)`` runs -- with the data as jit arguments, in
  chunks of S/20 steps like bayes_rglm; after one compiling chunk, the rate is
  chunk length / median chunk time.  One ``svi.run(..., progress_bar=False)``
  call of S steps is also timed as a whole (tracing and compilation included).
* **jax+optax** -- a hand-written mean-field Gaussian guide (loc and
  softplus-scale per weight, bias and log sigma), one-sample reparameterised
  ELBO with ``jax.random.randint`` batches, ``optax.adam(0.01)``, steps in a
  jitted ``lax.scan``, chunked and timed the same way.

A fourth subprocess per N decomposes bayes_rglm's step time: it takes, in one
process, the compiled chunk that ``fit_svi`` runs (from the library), numpyro's
``SVI.update`` of ``RGLM.numpyro_model`` with ``AutoNormal`` (the library's
implementation before it wrote its ELBO step directly), the jax+optax step and
the numpyro plate step, and times one chunk of each in turn (interleaved rounds,
so that load from other processes hits all four alike).

Rows per second are steps per second x batch size.  Each (implementation, N)
pair runs in its own fresh subprocess (persistent compilation cache off);
peak memory is that process's ``ru_maxrss`` at the end, which includes the
Python/JAX baseline and the data (X is N x 20 float64: 160 MB at a million
rows); the RSS after importing and building the data is reported as well.

Targets (from the issue): bayes_rglm's steps per second at least 10x the numpyro
plate version's, and at least 1/1.5 of the jax+optax loop's, measured in the same
run.  They are judged on the steady-state rate (compilation excluded for every
implementation, so the rates are comparable) and, separately, on the rate that
``fit.info`` reports.

The script rewrites only its own section of the markdown file, between
``<!-- svi_minibatch:start -->`` and ``<!-- svi_minibatch:end -->``, atomically.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import resource
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from _common import Compiles, fmt_load, footer, load_average, versions, worker_result, write_section, yes

IMPLS = ("bayes_rglm", "numpyro_plate", "jax_optax")
LABELS = {"bayes_rglm": "bayes_rglm", "numpyro_plate": "numpyro plate(subsample_size)", "jax_optax": "jax+optax"}
START, END = "<!-- svi_minibatch:start -->", "<!-- svi_minibatch:end -->"
RESULT_PREFIX = "SVI_MINIBATCH_RESULT "
REPO_ROOT = Path(__file__).resolve().parents[1]
SEED = 20240612
P, H = 20, 50  # inputs, hidden units
NOISE = 0.3
LEARNING_RATE = 0.01
CHUNKS = 20  # the number of jitted chunks per run (as bayes_rglm does)

TARGET_VS_PLATE = 10.0  # bayes_rglm steps/s >= 10 x numpyro plate's
TARGET_VS_JAX = 1.5  # bayes_rglm steps/s >= jax+optax's / 1.5


# --------------------------------------------------------------------------------------------------
# Data


def make_data(n: int, seed: int = SEED):
    """``X`` (n, 20) standard normal; ``y`` from a fixed random 20-50-1 tanh network plus N(0, 0.3^2) noise."""
    rng = np.random.default_rng(seed)
    w0 = rng.standard_normal((P, H)) / np.sqrt(P)
    b0 = 0.5 * rng.standard_normal(H)
    w1 = rng.standard_normal(H) / np.sqrt(H) * 2.0
    X = rng.standard_normal((n, P))
    y = NOISE * rng.standard_normal(n)
    for lo in range(0, n, 65_536):  # in blocks, so that the (n, 50) hidden layer never inflates the peak RSS
        y[lo : lo + 65_536] += np.tanh(X[lo : lo + 65_536] @ w0 + b0) @ w1
    return X, y


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _jax_setup():
    import jax

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_enable_compilation_cache", False)  # no persistent cache: nothing reused across runs
    return jax


def _time_chunks(run_chunk, carry, n_chunks: int):
    """Call ``run_chunk(carry, i)`` n_chunks times, blocking after each; return carry and per-chunk seconds."""
    import jax

    times = []
    for i in range(n_chunks):
        started = time.perf_counter()
        carry, losses = run_chunk(carry, i)
        jax.block_until_ready(losses)
        times.append(time.perf_counter() - started)
    return carry, losses, times


# --------------------------------------------------------------------------------------------------
# Workers (one implementation, one N, in a fresh process)


def worker_bayes_rglm(X, y, args, compiles: Compiles) -> dict:
    import bayes_rglm as br
    import bayes_rglm.inference.svi as svi_module

    ticks: list[tuple[float, int]] = []

    class _TickRecorder:  # stands in for the tqdm bar: records when each chunk's losses reached the host
        def update(self, n):
            ticks.append((time.perf_counter(), int(n)))

        def set_postfix(self, **kwargs):
            pass

        def close(self):
            pass

    if not callable(getattr(svi_module, "_progress", None)):  # the hook this worker relies on has moved
        raise RuntimeError("bayes_rglm.inference.svi._progress not found; update the chunk-timing hook")
    svi_module._progress = lambda progress, total: _TickRecorder()
    model = br.RGLM("gaussian", hidden=(H,), activation="tanh", prior=br.GaussianPrior(scale=1.0))

    def fit(num_steps, seed):
        return model.fit(
            X,
            y,
            method="svi",
            batch_size=args.batch,
            num_steps=num_steps,
            guide="normal",
            num_samples=10,
            progress=False,
            seed=seed,
        )

    compiles.reset()
    started = time.perf_counter()
    warm = fit(args.warmup_steps, 0)
    warmup = {
        "wall_s": time.perf_counter() - started,
        "steps": args.warmup_steps,
        **compiles.snapshot(),
        "final_elbo": warm.info["final_elbo"],
    }
    runs = []
    for rep in range(args.repeats):
        ticks.clear()
        compiles.reset()
        started = time.perf_counter()
        result = fit(args.steps, rep + 1)
        wall = time.perf_counter() - started
        stamps = [t for t, _ in ticks]
        chunk_s = np.diff(stamps).tolist()  # chunks 2..K (the first chunk's start is not observable)
        chunk_len = ticks[0][1] if ticks else args.steps
        steady = chunk_len / statistics.median(chunk_s) if chunk_s else float("nan")
        runs.append(
            {
                "wall_s": wall,
                "info_time_s": result.info["time"],
                "info_steps_per_s": result.info["steps_per_second"],
                "steady_steps_per_s": steady,
                "chunk_len": chunk_len,
                "chunk_s": chunk_s,
                "final_elbo": result.info["final_elbo"],
                "num_steps": result.info["num_steps"],
                **compiles.snapshot(),
            }
        )
    return {
        "warmup": warmup,
        "runs": runs,
        "steps_per_s": statistics.median(r["steady_steps_per_s"] for r in runs),
        "info_steps_per_s": statistics.median(r["info_steps_per_s"] for r in runs),
        "wall_s": statistics.median(r["wall_s"] for r in runs),
        "compiles_per_fit": statistics.median(r["compiles"] for r in runs),
        "compile_s_per_fit": statistics.median(r["compile_s"] for r in runs),
        "final_elbo": runs[-1]["final_elbo"],
    }


def _network(params, X):
    import jax.numpy as jnp

    return (jnp.tanh(X @ params["w0"] + params["b0"]) @ params["w1"])[:, 0] + params["b1"][0]


def _numpyro_plate_svi(n: int, y_sd: float, batch: int):
    """numpyro ``SVI`` of the hand-written network with ``plate("data", n, subsample_size=batch)``."""
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoNormal

    def model(X, y):
        params = {
            "w0": numpyro.sample("w0", dist.Normal(0.0, 1.0).expand([P, H]).to_event(2)),
            "b0": numpyro.sample("b0", dist.Normal(0.0, 1.0).expand([H]).to_event(1)),
            "w1": numpyro.sample("w1", dist.Normal(0.0, 1.0).expand([H, 1]).to_event(2)),
            "b1": numpyro.sample("b1", dist.Normal(0.0, 1.0).expand([1]).to_event(1)),
        }
        sigma = numpyro.sample("sigma", dist.HalfNormal(2.5 * y_sd))
        with numpyro.plate("data", n, subsample_size=batch) as idx:
            numpyro.sample("y", dist.Normal(_network(params, X[idx]), sigma), obs=y[idx])

    return SVI(model, AutoNormal(model), numpyro.optim.Adam(LEARNING_RATE), Trace_ELBO())


def worker_numpyro_plate(X, y, args, compiles: Compiles) -> dict:
    import jax
    import jax.numpy as jnp

    svi = _numpyro_plate_svi(X.shape[0], float(np.std(y)), args.batch)
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    chunk_len = max(1, args.steps // CHUNKS)
    n_chunks = -(-args.steps // chunk_len)

    @jax.jit
    def scan_chunk(state, X, y):
        return jax.lax.scan(lambda s, _: svi.update(s, X, y), state, None, length=chunk_len)

    compiles.reset()
    started = time.perf_counter()
    state = svi.init(jax.random.PRNGKey(0), Xj, yj)
    state, losses = scan_chunk(state, Xj, yj)  # compiles
    jax.block_until_ready(losses)
    warmup = {"wall_s": time.perf_counter() - started, "steps": chunk_len, **compiles.snapshot()}
    runs = []
    for rep in range(args.repeats):
        compiles.reset()
        state = svi.init(jax.random.PRNGKey(rep + 1), Xj, yj)
        state, losses, chunk_s = _time_chunks(lambda c, i: scan_chunk(c, Xj, yj), state, n_chunks)
        runs.append(
            {
                "steady_steps_per_s": chunk_len / statistics.median(chunk_s),
                "total_steps_per_s": chunk_len * n_chunks / sum(chunk_s),
                "chunk_s": chunk_s,
                "final_elbo": -float(np.mean(np.asarray(losses)[-max(1, chunk_len // 2) :])),
                **compiles.snapshot(),
            }
        )
    # numpyro's one-call interface, as a user would call it (tracing and compilation included).
    compiles.reset()
    started = time.perf_counter()
    result = svi.run(jax.random.PRNGKey(99), args.steps, Xj, yj, progress_bar=False)
    jax.block_until_ready(result.losses)
    svi_run = {"wall_s": time.perf_counter() - started, **compiles.snapshot()}
    svi_run["steps_per_s"] = args.steps / svi_run["wall_s"]
    return {
        "warmup": warmup,
        "runs": runs,
        "svi_run": svi_run,
        "chunk_len": chunk_len,
        "steps_per_s": statistics.median(r["steady_steps_per_s"] for r in runs),
        "final_elbo": runs[-1]["final_elbo"],
    }


def _jax_optax_parts(n: int, y_sd: float, batch: int):
    """The hand-written mean-field ELBO step: ``init(key) -> carry`` and ``step(carry, X, y) -> (carry, loss)``."""
    import jax
    import jax.numpy as jnp
    import optax

    scale = n / batch
    shapes = {"w0": (P, H), "b0": (H,), "w1": (H, 1), "b1": (1,), "log_sigma": ()}
    half_log_2pi = 0.5 * np.log(2 * np.pi)

    def elbo_loss(var, key, X, y):
        k_eps, k_idx = jax.random.split(key)
        eps_keys = dict(zip(shapes, jax.random.split(k_eps, len(shapes)), strict=True))
        theta, entropy = {}, 0.0
        for name, shape in shapes.items():
            sd = jax.nn.softplus(var[name + "_raw_sd"])
            theta[name] = var[name + "_loc"] + sd * jax.random.normal(eps_keys[name], shape)
            entropy += jnp.sum(jnp.log(sd)) + sd.size * (half_log_2pi + 0.5)  # Gaussian entropy
        idx = jax.random.randint(k_idx, (batch,), 0, n)  # O(batch), with replacement
        sigma = jnp.exp(theta["log_sigma"])
        resid = (y[idx] - _network(theta, X[idx])) / sigma
        loglik = jnp.sum(-0.5 * resid**2 - jnp.log(sigma) - half_log_2pi)
        logprior = sum(jnp.sum(-0.5 * theta[k] ** 2 - half_log_2pi) for k in ("w0", "b0", "w1", "b1"))
        s = 2.5 * y_sd  # HalfNormal(s) on sigma, plus the log-Jacobian of sigma = exp(log_sigma)
        logprior += -0.5 * (sigma / s) ** 2 - jnp.log(s) + 0.5 * np.log(2 / np.pi) + theta["log_sigma"]
        return -(scale * loglik + logprior + entropy)

    optimiser = optax.adam(LEARNING_RATE)

    def init(key):
        var = {}
        for i, (name, shape) in enumerate(shapes.items()):
            var[name + "_loc"] = 0.1 * jax.random.normal(jax.random.fold_in(key, i), shape)
            var[name + "_raw_sd"] = jnp.full(shape, np.log(np.expm1(0.05)))
        var["log_sigma_loc"] = jnp.asarray(np.log(y_sd))
        return var, optimiser.init(var), key

    def step(carry, X, y):
        var, opt_state, key = carry
        key, sub = jax.random.split(key)
        loss, grads = jax.value_and_grad(elbo_loss)(var, sub, X, y)
        updates, opt_state = optimiser.update(grads, opt_state, var)
        return (optax.apply_updates(var, updates), opt_state, key), loss

    return init, step


def worker_jax_optax(X, y, args, compiles: Compiles) -> dict:
    import jax
    import jax.numpy as jnp

    init, step = _jax_optax_parts(X.shape[0], float(np.std(y)), args.batch)
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    chunk_len = max(1, args.steps // CHUNKS)
    n_chunks = -(-args.steps // chunk_len)

    @jax.jit
    def scan_chunk(carry, X, y):
        return jax.lax.scan(lambda c, _: step(c, X, y), carry, None, length=chunk_len)

    compiles.reset()
    started = time.perf_counter()
    carry, losses = scan_chunk(init(jax.random.PRNGKey(0)), Xj, yj)
    jax.block_until_ready(losses)
    warmup = {"wall_s": time.perf_counter() - started, "steps": chunk_len, **compiles.snapshot()}
    runs = []
    for rep in range(args.repeats):
        compiles.reset()
        carry, losses, chunk_s = _time_chunks(
            lambda c, i: scan_chunk(c, Xj, yj), init(jax.random.PRNGKey(rep + 1)), n_chunks
        )
        runs.append(
            {
                "steady_steps_per_s": chunk_len / statistics.median(chunk_s),
                "total_steps_per_s": chunk_len * n_chunks / sum(chunk_s),
                "chunk_s": chunk_s,
                "final_elbo": -float(np.mean(np.asarray(losses)[-max(1, chunk_len // 2) :])),
                **compiles.snapshot(),
            }
        )
    return {
        "warmup": warmup,
        "runs": runs,
        "chunk_len": chunk_len,
        "steps_per_s": statistics.median(r["steady_steps_per_s"] for r in runs),
        "final_elbo": runs[-1]["final_elbo"],
    }


def worker_decompose(X, y, args, compiles: Compiles) -> dict:
    """Where bayes_rglm's step time goes: four step functions compiled and timed in one process, interleaved.

    * ``library``: the compiled chunk ``fit_svi`` runs, taken from the library itself
      (``bayes_rglm.inference.svi.prepare``: the hand-written ELBO, mean-field guide, Adam, NaN guard);
    * ``numpyro_args``: numpyro's ``SVI.update`` of ``RGLM.numpyro_model`` with ``randint`` rows substituted
      into its ``data`` plate and ``AutoNormal(init_scale=0.05)``, data as jit arguments (the library's
      implementation before it wrote the ELBO step directly);
    * ``jax_optax``: the hand-written step of the jax+optax row;
    * ``numpyro_plate``: the step of the numpyro plate row (``plate(subsample_size=...)``).

    Each is compiled once (``jit(...).lower(...).compile()``), then ``--repeats`` x 2 rounds of one chunk of
    S/20 steps each are timed in turn.
    """
    import jax
    import jax.numpy as jnp
    import optax
    from numpyro import handlers
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoNormal
    from numpyro.optim import optax_to_numpyro

    import bayes_rglm as br
    from bayes_rglm.inference import svi as svi_module
    from bayes_rglm.inference.target import build

    n, batch = X.shape[0], args.batch
    y_sd = float(np.std(y))
    model = br.RGLM("gaussian", hidden=(H,), activation="tanh", prior=br.GaussianPrior(scale=1.0))
    arrays = tuple(jnp.asarray(a) for a in (X, y, np.zeros(n), np.ones(n)))
    chunk_len = max(1, args.steps // CHUNKS)
    target = build(model, model.prepare(X, y), standardised=False)
    library = svi_module.prepare(
        target, 0, num_steps=chunk_len * CHUNKS, batch_size=batch, learning_rate=LEARNING_RATE, guide="normal"
    )

    def batched(index, X, y, offset, trials):
        with handlers.substitute(data={"data": index}):
            model.numpyro_model(
                X, y, offset=offset, trials=trials, batch_size=index.shape[0], n_classes=1, y_scale=y_sd
            )

    svi = SVI(batched, AutoNormal(batched, init_scale=0.05), optax_to_numpyro(optax.adam(LEARNING_RATE)), Trace_ELBO())
    state0 = svi.init(jax.random.PRNGKey(0), jnp.arange(batch), *arrays)

    def numpyro_step(carry, key, *data):
        return svi.update(carry, jax.random.randint(key, (batch,), 0, n), *data)

    jinit, jstep = _jax_optax_parts(n, y_sd, batch)
    plate_svi = _numpyro_plate_svi(n, y_sd, batch)
    plate_state = plate_svi.init(jax.random.PRNGKey(0), *arrays[:2])
    variants = {
        "library": (library.step_chunk, library.carry, (jnp.ones(chunk_len, bool), library.arrays, library.hyper)),
        "numpyro_args": (
            jax.jit(lambda c, keys, *d: jax.lax.scan(lambda c, k: numpyro_step(c, k, *d), c, keys)),
            state0,
            arrays,
        ),
        "jax_optax": (
            jax.jit(lambda c, keys, X, y: jax.lax.scan(lambda c, _: jstep(c, X, y), c, keys)),
            jinit(jax.random.PRNGKey(0)),
            arrays[:2],
        ),
        "numpyro_plate": (
            jax.jit(lambda c, keys, X, y: jax.lax.scan(lambda c, _: plate_svi.update(c, X, y), c, keys)),
            plate_state,
            arrays[:2],
        ),
    }
    compiled, out = {}, {}
    for name, (fn, carry, data) in variants.items():
        keys = jax.random.split(jax.random.PRNGKey(1), chunk_len)
        started = time.perf_counter()
        exe = fn.lower(carry, keys, *data).compile()
        compile_s = time.perf_counter() - started
        carry, losses = exe(carry, keys, *data)
        jax.block_until_ready(losses)
        compiled[name] = [exe, carry, data, []]
        out[name] = {"compile_s": compile_s}
    for rnd in range(2 * args.repeats):
        for entry in compiled.values():
            exe, carry, data, times = entry
            keys = jax.random.split(jax.random.PRNGKey(100 + rnd), chunk_len)
            started = time.perf_counter()
            entry[1], losses = exe(carry, keys, *data)
            jax.block_until_ready(losses)
            times.append(time.perf_counter() - started)
    for name, (_, _, _, times) in compiled.items():
        out[name]["steps_per_s"] = chunk_len / statistics.median(times)
        out[name]["chunk_s"] = times
    return {
        "variants": out,
        "chunk_len": chunk_len,
        "steps_per_s": out["library"]["steps_per_s"],
        "final_elbo": float("nan"),
    }


WORKERS = {
    "bayes_rglm": worker_bayes_rglm,
    "numpyro_plate": worker_numpyro_plate,
    "jax_optax": worker_jax_optax,
    "decompose": worker_decompose,
}


def worker(impl: str, n: int, args) -> dict:
    load = load_average()
    jax = _jax_setup()
    compiles = Compiles()
    if impl == "bayes_rglm":
        import bayes_rglm  # noqa: F401
    else:
        import numpyro  # noqa: F401
        import optax  # noqa: F401
    X, y = make_data(n)
    baseline = _rss_mib()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = WORKERS[impl](X, y, args, compiles)
    result.update(
        {
            "impl": impl,
            "n": n,
            "batch": args.batch,
            "steps": args.steps,
            "repeats": args.repeats,
            "backend": jax.default_backend(),
            "dtype": str(jax.numpy.asarray(X).dtype),
            "rss_after_data_mib": baseline,
            "peak_rss_mib": _rss_mib(),
            "load_at_start": load,
            "warnings": sorted({f"{r.category.__name__}: {str(r.message)[:160]}" for r in record}),
        }
    )
    result["rows_per_s"] = result["steps_per_s"] * args.batch
    return result


# --------------------------------------------------------------------------------------------------
# Driver


def run_all(args) -> list[dict]:
    results = []
    for n in args.sizes:
        for impl in (*IMPLS, "decompose"):
            cmd = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--worker",
                impl,
                str(n),
                "--steps",
                str(args.steps),
                "--repeats",
                str(args.repeats),
                "--batch",
                str(args.batch),
                "--warmup-steps",
                str(args.warmup_steps),
            ]
            print(f"[svi_minibatch] {impl:14s} N={n:>9,} ...", end=" ", flush=True)
            started = time.perf_counter()
            result = worker_result(cmd, RESULT_PREFIX, f"{impl} N={n}")
            result["worker_wall_s"] = time.perf_counter() - started
            if impl == "decompose":
                print(
                    ", ".join(f"{k} {v['steps_per_s']:,.0f} steps/s" for k, v in result["variants"].items())
                    + f" ({result['worker_wall_s']:.0f} s)",
                    flush=True,
                )
            else:
                print(
                    f"{result['steps_per_s']:,.0f} steps/s, peak RSS {result['peak_rss_mib']:,.0f} MiB "
                    f"({result['worker_wall_s']:.0f} s)",
                    flush=True,
                )
            results.append(result)
    return results


def analyse(results: list[dict], sizes) -> dict:
    by = {(r["impl"], r["n"]): r for r in results}
    checks = {}
    for n in sizes:
        ours, plate, jx = by[("bayes_rglm", n)], by[("numpyro_plate", n)], by[("jax_optax", n)]
        for r in (ours, plate, jx):
            r["ratio_vs_ours"] = r["steps_per_s"] / ours["steps_per_s"]
        checks[n] = {
            "vs_plate": ours["steps_per_s"] / plate["steps_per_s"],
            "vs_jax": jx["steps_per_s"] / ours["steps_per_s"],
            "info_vs_plate": ours["info_steps_per_s"] / plate["steps_per_s"],
            "info_vs_jax": jx["steps_per_s"] / ours["info_steps_per_s"],
        }
        c = checks[n]
        c["meets_plate"] = c["vs_plate"] >= TARGET_VS_PLATE
        c["meets_jax"] = c["vs_jax"] <= TARGET_VS_JAX
        c["info_meets_plate"] = c["info_vs_plate"] >= TARGET_VS_PLATE
        c["info_meets_jax"] = c["info_vs_jax"] <= TARGET_VS_JAX
        d = by.get(("decompose", n))
        if d is not None:  # the same ratios from the interleaved, single-process timings
            v = {k: e["steps_per_s"] for k, e in d["variants"].items()}
            c["mixed_vs_plate"] = v["library"] / v["numpyro_plate"]
            c["mixed_vs_jax"] = v["jax_optax"] / v["library"]
            c["mixed_meets_plate"] = c["mixed_vs_plate"] >= TARGET_VS_PLATE
            c["mixed_meets_jax"] = c["mixed_vs_jax"] <= TARGET_VS_JAX
    return checks


def render(results: list[dict], checks: dict, args, elapsed: float, load) -> str:
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    sizes = ", ".join(f"{n:,}" for n in args.sizes)
    lines = [
        START,
        "## Minibatch SVI, 20-50-1 tanh network (`benchmarks/svi_minibatch.py`)",
        "",
        f"Run {now}{' with `--quick`' if args.quick else ''}: N = {sizes} rows, batch {args.batch}, "
        f"{args.steps:,} timed steps per run, {args.repeats} runs per implementation (medians), "
        f"{elapsed:.0f} s in all.",
        "",
        "**What is measured.** Gaussian regression with a 20-50-1 tanh network (X standard normal, y from a fixed "
        f"random network of that shape plus N(0, {NOISE}^2) noise; float64 everywhere, bayes_rglm's default, with "
        "`jax_enable_x64` on for the peers). Same model in all three: Normal(0, 1) priors on all weights and biases, "
        "sigma ~ HalfNormal(2.5 sd(y)), mean-field Gaussian guide, one-sample ELBO, Adam, "
        f"{args.batch} rows per step. *bayes_rglm*: `RGLM('gaussian', hidden=(50,), activation='tanh', "
        "prior=GaussianPrior(scale=1.0)).fit(X, y, method='svi', batch_size=1024, num_steps=S, guide='normal', "
        "num_samples=10, progress=False)`, after one warm-up fit in the same process. *numpyro plate*: a "
        "hand-written numpyro model with `plate('data', N, subsample_size=1024)`, `AutoNormal`, "
        "`svi.update` in a jitted `lax.scan` (the loop `SVI.run(progress_bar=False)` runs). *jax+optax*: a "
        "hand-written reparameterised ELBO with `jax.random.randint` batches and `optax.adam` in a jitted "
        "`lax.scan`. Every implementation runs its steps in 20 jitted chunks; **steps/s** is the steady-state "
        "rate, chunk length / median chunk time, compilation excluded (for bayes_rglm, timed from its "
        "progress-bar ticks over chunks 2-20). *fit.info steps/s* is the library's own figure, whose clock "
        "also covers the compilation of its step loop. *rows/s* = steps/s x batch. *Peak RSS* is the worker "
        "process's `ru_maxrss` (includes the Python/JAX baseline and the data; X alone is N x 20 x 8 bytes); "
        "*RSS after data* is the same measure right after imports and data generation. Each implementation and "
        "N runs in a fresh subprocess, one after another; the load average is read at each worker's start.",
        "",
        "| N | implementation | steps/s | rows/s | ratio vs bayes_rglm | peak RSS MiB | RSS after data MiB | "
        "fit.info steps/s | whole call s | compilations per fit (s) | final ELBO | load at start |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if r["impl"] not in IMPLS:
            continue
        if r["impl"] == "bayes_rglm":
            info = f"{r['info_steps_per_s']:,.0f}"
            whole = f"{r['wall_s']:.1f}"
            comp = f"{r['compiles_per_fit']:.0f} ({r['compile_s_per_fit']:.1f} s)"
        elif r["impl"] == "numpyro_plate":
            info = "--"
            whole = f"{r['svi_run']['wall_s']:.1f} (`svi.run`)"
            comp = f"{r['svi_run']['compiles']} ({r['svi_run']['compile_s']:.1f} s) in `svi.run`"
        else:
            info, whole, comp = "--", "--", f"{r['warmup']['compiles']} ({r['warmup']['compile_s']:.1f} s) once"
        lines.append(
            f"| {r['n']:,} | {LABELS[r['impl']]} | {r['steps_per_s']:,.0f} | {r['rows_per_s']:,.0f} | "
            f"{r['ratio_vs_ours']:.2f} | {r['peak_rss_mib']:,.0f} | {r['rss_after_data_mib']:,.0f} | {info} | "
            f"{whole} | {comp} | {r['final_elbo']:.4g} | {fmt_load(r['load_at_start'])} |"
        )
    lines += [
        "",
        f"**Targets** (bayes_rglm at least {TARGET_VS_PLATE:g}x the numpyro plate version's steps/s and "
        f"within {TARGET_VS_JAX:g}x of the jax+optax loop's, same run). *Separate processes*: the steady-state "
        "rates of the table above; *interleaved*: the decomposition below (library step, numpyro plate and "
        "jax+optax steps alternating in one process); *fit.info*: bayes_rglm's own rate over its whole "
        "step loop (host round trips between chunks and any compilation included), against the others' "
        "steady state:",
        "",
        "| N | bayes_rglm / numpyro plate, separate processes (target >= 10) | same, interleaved | "
        "jax+optax / bayes_rglm, separate processes (target <= 1.5) | same, interleaved | "
        "fit.info: bayes_rglm / numpyro plate | fit.info: jax+optax / bayes_rglm |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, c in checks.items():
        mixed_plate = f"{c['mixed_vs_plate']:.1f} ({yes(c['mixed_meets_plate'])})" if "mixed_vs_plate" in c else "--"
        mixed_jax = f"{c['mixed_vs_jax']:.2f} ({yes(c['mixed_meets_jax'])})" if "mixed_vs_jax" in c else "--"
        lines.append(
            f"| {n:,} | {c['vs_plate']:.1f} ({yes(c['meets_plate'])}) | {mixed_plate} | "
            f"{c['vs_jax']:.2f} ({yes(c['meets_jax'])}) | {mixed_jax} | "
            f"{c['info_vs_plate']:.2f} ({yes(c['info_meets_plate'])}) | {c['info_vs_jax']:.1f} "
            f"({yes(c['info_meets_jax'])}) |"
        )
    lines += ["", "bayes_rglm detail:", ""]
    for r in results:
        if r["impl"] != "bayes_rglm":
            continue
        run = r["runs"][-1]
        top = ", ".join(f"`{name}` {d:.1f} s" for name, d in run["compile_top"]) or "none"
        first = run["info_time_s"] - sum(run["chunk_s"])
        lines.append(
            f"- N={r['n']:,}: warm-up fit ({r['warmup']['steps']} steps) {r['warmup']['wall_s']:.1f} s with "
            f"{r['warmup']['compiles']} compilations ({r['warmup']['compile_s']:.1f} s). Each timed fit of "
            f"{args.steps:,} steps: whole call {r['wall_s']:.1f} s (median), of which "
            f"{r['compile_s_per_fit']:.1f} s tracing and compiling ({r['compiles_per_fit']:.0f} compilations; "
            f"largest {top}); last run: step loop {run['info_time_s']:.1f} s = first chunk "
            f"{first:.1f} s (compilation + {run['chunk_len']} steps) + {len(run['chunk_s'])} chunks of "
            f"{run['chunk_len']} steps, median {statistics.median(run['chunk_s']) * 1e3:.0f} ms each. "
            f"{'The compiled step loop is rebuilt on every fit call.' if r['compiles_per_fit'] > 0 else ''}"
        )
    for r in results:
        if r["impl"] == "numpyro_plate":
            lines.append(
                f"- numpyro plate N={r['n']:,}: one `svi.run(progress_bar=False)` of {args.steps:,} steps took "
                f"{r['svi_run']['wall_s']:.1f} s ({r['svi_run']['steps_per_s']:,.0f} steps/s including tracing and "
                f"compilation); steady state {r['steps_per_s']:,.0f} steps/s, i.e. "
                f"{1e3 / r['steps_per_s']:.2f} ms per step."
            )
    by = {(r["impl"], r["n"]): r for r in results}
    lines += [
        "",
        "**Where bayes_rglm's step time goes** (one more subprocess per N: four compiled chunks of "
        f"{args.steps // CHUNKS} steps timed in turn, {2 * args.repeats} rounds, medians). *library step*: "
        "the compiled chunk `fit_svi` runs, taken from the library (`bayes_rglm.inference.svi.prepare`: its "
        "own ELBO step, mean-field guide, Adam, NaN guard, data as arguments); *numpyro SVI step*: numpyro's "
        "`SVI.update` of `RGLM.numpyro_model` with `randint` rows substituted into its `data` plate, "
        "`AutoNormal`, `Trace_ELBO` (the library's implementation before it wrote the step directly); "
        "*jax+optax* and *numpyro plate*: the steps of those rows above. Because the four alternate within one "
        "process, load from other processes hits them alike: these ratios are the robust check of the "
        "targets.",
        "",
        "| N | step | steps/s | ratio jax+optax / step | ratio library step / step | compile s |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    names = {
        "library": "library step",
        "numpyro_args": "numpyro SVI step (AutoNormal, randint rows)",
        "jax_optax": "jax+optax",
        "numpyro_plate": "numpyro plate(subsample_size)",
    }
    for n in args.sizes:
        d = by.get(("decompose", n))
        if d is None:
            continue
        jx = d["variants"]["jax_optax"]["steps_per_s"]
        ours = d["variants"]["library"]["steps_per_s"]
        for key, label in names.items():
            v = d["variants"][key]
            lines.append(
                f"| {n:,} | {label} | {v['steps_per_s']:,.0f} | {jx / v['steps_per_s']:.2f} | "
                f"{ours / v['steps_per_s']:.2f} | {v['compile_s']:.1f} |"
            )
    notes = sorted({f"{LABELS.get(r['impl'], r['impl'])} N={r['n']:,}: {w}" for r in results for w in r["warnings"]})
    if notes:
        lines += ["", "Warnings raised in the workers:", ""] + [f"- {w}" for w in notes]
    lines += footer(load, results[0]["backend"], versions(("jax", "jaxlib", "numpyro", "optax", "bayes_rglm")), END)
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: N=20,000, 600 steps, 2 repeats")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "BENCHMARKS.md", help="markdown file to update")
    parser.add_argument(
        "--sizes", type=lambda s: [int(v) for v in s.split(",")], default=None, help="comma-separated row counts"
    )
    parser.add_argument("--steps", type=int, default=None, help="timed steps per run")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per implementation (median)")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--warmup-steps", type=int, default=None, help="steps of bayes_rglm's warm-up fit")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--worker", nargs=2, metavar=("IMPL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.sizes = args.sizes or ([20_000] if args.quick else [200_000, 1_000_000])
    args.steps = args.steps or (600 if args.quick else 2000)  # quick: 3 compiled chunks of 250 steps
    args.repeats = args.repeats or (2 if args.quick else 3)
    args.warmup_steps = args.warmup_steps or (40 if args.quick else 100)

    if args.worker:
        impl, n = args.worker
        result = worker(impl, int(n), args)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0

    load = load_average()
    started = time.perf_counter()
    results = run_all(args)
    checks = analyse(results, args.sizes)
    section = render(results, checks, args, time.perf_counter() - started, load)
    write_section(args.out, section, START, END)
    print(section)
    print(f"[svi_minibatch] wrote {args.out}")
    missed = [
        f"N={n}: {name}"
        for n, c in checks.items()
        for name, ok in c.items()
        if name.startswith(("meets_", "mixed_meets_")) and not ok
    ]
    if missed:
        print("[svi_minibatch] targets missed (steady state, separate processes or interleaved): " + "; ".join(missed))
    return 1 if (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
