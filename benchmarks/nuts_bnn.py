"""NUTS on small Bayesian neural networks: bayes_rglm against a hand-written numpyro model of the same network.

Usage::

    python benchmarks/nuts_bnn.py            # 500 warm-up + 500 draws x 2 chains, 5 seeds per implementation
    python benchmarks/nuts_bnn.py --quick    # 100 + 100 draws x 2 chains, 1 seed (smoke test)
    python benchmarks/nuts_bnn.py --out PATH # where the markdown section goes (default BENCHMARKS.md)

Settings
--------
* ``bnn`` -- numpyro's ``examples/bnn.py``: 100 points, ``x = linspace(-1, 1)``,
  ``y = X W + 0.5 (0.5 + x)^2 sin(4x) + 0.05 noise`` with ``X = [1, x, x^2]``,
  ``W = 0.5 randn(3)`` (``np.random.seed(0)``), standardised; two hidden tanh
  layers of 5 units.  Differences from the example, the same in both
  implementations: every layer has a bias (bayes_rglm's layers always do), so
  the constant column of ``X`` is dropped (inputs ``[x, x^2]``); the noise scale
  has the library's default prior ``sigma ~ HalfNormal(2.5 sd(y))`` instead of
  the example's ``Gamma(3, 1)`` prior on the precision, so that both sample the
  same posterior.
* ``sin`` -- a 1-10-1 tanh network on 100 points, ``x ~ U(-2, 2)``,
  ``y = sin(2x) + N(0, 0.2^2)``.

Both implementations: Normal(0, 1) priors on every weight and bias, Gaussian
likelihood, ``sigma ~ HalfNormal(2.5 sd(y))``, NUTS with numpyro's defaults
(target acceptance 0.8, diagonal mass matrix, maximum tree depth 10),
``--warmup`` warm-up and ``--samples`` kept iterations per chain, 2 chains run
sequentially, float64.  bayes_rglm: ``RGLM("gaussian", hidden=..., activation="tanh",
prior=GaussianPrior(scale=1.0)).fit(X, y, method="nuts", ...)``, which starts
each chain from 200 L-BFGS steps towards its own MAP (time included in the call; reported separately
as ``fit.info["map_init_time"]``).  Hand-written: ``MCMC(NUTS(model), ...)``
with numpyro's default initialisation (uniform in [-2, 2], unconstrained).

What is measured
----------------
Every fit runs in a fresh subprocess (``--seeds``: one seed per subprocess from
the driver), which first runs one tiny fit (10 + 10 draws) to pay JAX's
one-time start-up costs, then the timed fit.  For each seed the two
implementations run back to back, in alternating order from seed to seed, so
that the per-seed ratio compares runs close in time (the load from other
processes on a small machine drifts over minutes).  Each fit builds a new
``MCMC`` object, so each compiles its sampler again (in both implementations);
tracing and XLA compilation time inside each fit is measured with
``jax.monitoring``.

The quantity of interest is ``E[y|x]`` at 20 probe inputs evenly spaced over
the training range: per draw it is computed from the drawn weights with one
numpy formula for both implementations; ArviZ's rank-normalised bulk ESS (and
split R-hat) is taken per probe.  **ESS/s** = median-over-probes bulk ESS /
(wall time of the fit call minus its tracing and compilation time); the same
with compilation included is reported too, and so is ESS per 1,000 leapfrog
steps of the kept iterations (an efficiency measure that CPU load cannot
move).  The target (from issue 10) is bayes_rglm's ESS/s at least 1.0x the
hand-written model's, in the same run; the verdict uses the median over seeds
of the per-seed ratios, and the ratio of the two implementations' median ESS/s
is shown beside it.  The posterior means of ``E[y|x]`` of the two
implementations are compared as a sanity check (largest difference over
probes, in posterior standard deviations).

The script rewrites only its own section of the markdown file, between
``<!-- nuts_bnn:start -->`` and ``<!-- nuts_bnn:end -->``, atomically.
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

SETTINGS = ("bnn", "sin")
IMPLS = ("bayes_rglm", "bayes_rglm_sequential", "numpyro", "numpyro_parallel")
LABELS = {
    "bayes_rglm": "bayes_rglm (default: parallel, host threads)",
    "bayes_rglm_sequential": "bayes_rglm, chain_method='sequential'",
    "numpyro": "hand-written numpyro (default: sequential on one device)",
    "numpyro_parallel": "hand-written numpyro, set_host_device_count + parallel",
}
BASELINES = ("numpyro", "numpyro_parallel")  # what bayes_rglm's default is compared with
HIDDEN = {"bnn": (5, 5), "sin": (10,)}
DESCRIPTION = {
    "bnn": "numpyro examples/bnn.py data (N=100, inputs x and x^2), 2-5-5-1 tanh",
    "sin": "y = sin(2x) + noise (N=100), 1-10-1 tanh",
}
START, END = "<!-- nuts_bnn:start -->", "<!-- nuts_bnn:end -->"
RESULT_PREFIX = "NUTS_BNN_RESULT "
REPO_ROOT = Path(__file__).resolve().parents[1]
N_PROBES = 20
MAX_TREE_STEPS = 2**10 - 1  # numpyro's default max_tree_depth=10
TARGET_RATIO = 1.0  # bayes_rglm ESS/s >= 1.0 x hand-written numpyro's (issue 10)


# --------------------------------------------------------------------------------------------------
# Data and the network


def make_data(setting: str):
    """Training inputs ``X`` (N, D), response ``y`` (N,) and probe inputs ``X_probe`` (20, D)."""
    if setting == "bnn":  # numpyro examples/bnn.py get_data(N=100, D_X=3, sigma_obs=0.05)
        n, d_x = 100, 3
        rs = np.random.RandomState(0)
        x = np.linspace(-1.0, 1.0, n)
        features = np.power(x[:, None], np.arange(d_x))
        w = 0.5 * rs.randn(d_x)
        y = features @ w + 0.5 * np.power(0.5 + x, 2.0) * np.sin(4.0 * x)
        y = y + 0.05 * rs.randn(n)
        y = (y - y.mean()) / y.std()
        probe = np.linspace(-1.0, 1.0, N_PROBES)
        return features[:, 1:], y, np.stack([probe, probe**2], axis=1)  # constant column dropped: biases instead
    if setting == "sin":
        rng = np.random.default_rng(20240613)
        x = np.sort(rng.uniform(-2.0, 2.0, 100))
        y = np.sin(2.0 * x) + 0.2 * rng.standard_normal(100)
        return x[:, None], y, np.linspace(-2.0, 2.0, N_PROBES)[:, None]
    raise ValueError(f"unknown setting {setting!r}")


def network_mean(samples: dict, X: np.ndarray, depth: int) -> np.ndarray:
    """``E[y|x]`` per draw, shape (chains, draws, rows), from ``w{l}``/``b{l}`` draws of shape (chains, draws, ...)."""
    h = np.broadcast_to(X, samples["w0"].shape[:2] + X.shape)
    for layer in range(depth + 1):
        h = h @ np.asarray(samples[f"w{layer}"]) + np.asarray(samples[f"b{layer}"])[..., None, :]
        if layer < depth:
            h = np.tanh(h)
    return h[..., 0]


def _setup(impl: str, setting: str, X, y, args):
    hidden = HIDDEN[setting]
    if impl.startswith("bayes_rglm"):
        import bayes_rglm as br

        model = br.RGLM("gaussian", hidden=hidden, activation="tanh", prior=br.GaussianPrior(scale=1.0))

        def fit(num_warmup, num_samples, seed):
            result = model.fit(
                X,
                y,
                method="nuts",
                num_warmup=num_warmup,
                num_samples=num_samples,
                num_chains=args.chains,
                chain_method="sequential" if impl == "bayes_rglm_sequential" else "parallel",
                progress=False,
                seed=seed,
            )
            st = result.info["sample_stats"]
            stats = {
                "map_init_s": result.info["map_init_time"],
                "info_time_s": result.info["time"],
                "divergences": int(np.sum(st["diverging"])),
                "n_steps": np.asarray(st["n_steps"]),
                "step_size": float(np.mean(st["step_size"])),
            }
            return result.samples, stats

        return fit

    if impl.startswith("numpyro"):
        import jax
        import jax.numpy as jnp
        import numpyro
        import numpyro.distributions as dist
        from numpyro.infer import MCMC, NUTS

        widths = (X.shape[1], *hidden, 1)
        y_sd = float(np.std(y))

        def model(X, y):
            h = X
            for layer in range(len(widths) - 1):
                w = numpyro.sample(
                    f"w{layer}", dist.Normal(0.0, 1.0).expand([widths[layer], widths[layer + 1]]).to_event(2)
                )
                b = numpyro.sample(f"b{layer}", dist.Normal(0.0, 1.0).expand([widths[layer + 1]]).to_event(1))
                h = h @ w + b
                if layer < len(widths) - 2:
                    h = jnp.tanh(h)
            sigma = numpyro.sample("sigma", dist.HalfNormal(2.5 * y_sd))
            with numpyro.plate("data", X.shape[0]):
                numpyro.sample("y", dist.Normal(h[:, 0], sigma), obs=y)

        Xj, yj = jnp.asarray(X), jnp.asarray(y)

        def fit(num_warmup, num_samples, seed):
            mcmc = MCMC(
                NUTS(model),
                num_warmup=num_warmup,
                num_samples=num_samples,
                num_chains=args.chains,
                chain_method="parallel" if impl == "numpyro_parallel" else "sequential",
                progress_bar=False,
            )
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="There are not enough devices")
                mcmc.run(
                    jax.random.PRNGKey(seed), Xj, yj, extra_fields=("diverging", "num_steps", "adapt_state.step_size")
                )
            samples = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
            extra = mcmc.get_extra_fields(group_by_chain=True)
            stats = {
                "divergences": int(np.sum(extra["diverging"])),
                "n_steps": np.asarray(extra["num_steps"]),
                "step_size": float(np.mean(extra["adapt_state.step_size"])),
            }
            return samples, stats

        return fit

    raise ValueError(f"unknown implementation {impl!r}")


def _ess_rhat(mu: np.ndarray) -> tuple[list[float], list[float]]:
    import arviz as az

    ess = [float(az.ess(mu[:, :, j], method="bulk")) for j in range(mu.shape[2])]
    rhat = [float(az.rhat(mu[:, :, j])) for j in range(mu.shape[2])]
    return ess, rhat


def worker(setting: str, impl: str, args) -> dict:
    """Fit ``setting`` with ``impl`` once per seed in ``args.seeds``, in this (fresh) process."""
    load = load_average()
    if impl == "numpyro_parallel":  # numpyro's advice for parallel chains on CPU: one host device per chain
        import numpyro

        numpyro.set_host_device_count(args.chains)
    import jax

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_enable_compilation_cache", False)  # no persistent cache: nothing reused across runs
    compiles = Compiles()
    X, y, X_probe = make_data(setting)
    fit = _setup(impl, setting, X, y, args)
    depth = len(HIDDEN[setting])

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        compiles.reset()
        started = time.perf_counter()
        fit(10, 10, 0)  # one-time start-up costs (first tracing of numpyro and JAX internals)
        startup = {"wall_s": time.perf_counter() - started, "compile_s": compiles.seconds, "compiles": compiles.count}
        record.clear()  # the tiny start-up fit's diagnostics warnings are not of interest
        runs = []
        for seed in args.seeds:
            load_now = load_average()
            compiles.reset()
            started = time.perf_counter()
            samples, stats = fit(args.warmup, args.samples, seed)
            wall = time.perf_counter() - started
            compile_s, n_compiles = compiles.seconds, compiles.count
            mu = network_mean(samples, X_probe, depth)
            ess, rhat = _ess_rhat(mu)
            n_steps = stats.pop("n_steps")
            ess_med = float(np.median(ess))
            run = {
                "seed": seed,
                "wall_s": wall,
                "compile_s": compile_s,
                "compiles": n_compiles,
                "ess_median": ess_med,
                "ess_min": float(np.min(ess)),
                "rhat_max": float(np.max(rhat)),
                "ess_per_s": ess_med / max(wall - compile_s, 1e-9),
                "ess_per_s_incl_compile": ess_med / wall,
                "mean_leapfrog": float(np.mean(n_steps)),
                "max_depth_frac": float(np.mean(n_steps >= MAX_TREE_STEPS)),
                "ess_per_1k_leapfrog": 1000.0 * ess_med / float(np.sum(n_steps)),
                "sigma_mean": float(np.mean(samples["sigma"])),
                "load_at_start": load_now,
                "probe_mean": mu.mean(axis=(0, 1)).tolist(),
                "probe_var": mu.var(axis=(0, 1)).tolist(),
                **stats,
            }
            if "map_init_s" in run:
                run["ess_per_s_sampling_only"] = ess_med / max(wall - compile_s - run["map_init_s"], 1e-9)
            runs.append(run)
        caught = sorted({f"{r.category.__name__}: {str(r.message)[:200]}" for r in record})
    return {
        "setting": setting,
        "impl": impl,
        "startup": startup,
        "runs": runs,
        "load_at_start": load,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "warnings": caught,
        "backend": jax.default_backend(),
    }


def _merge(parts: list[dict]) -> dict:
    """One result per (setting, implementation) from its per-seed workers: runs in seed order, medians."""
    runs = sorted((run for p in parts for run in p["runs"]), key=lambda r: r["seed"])

    def med(key):
        return statistics.median(r[key] for r in runs)

    means = np.array([r["probe_mean"] for r in runs])
    variances = np.array([r["probe_var"] for r in runs])
    result = {
        "setting": parts[0]["setting"],
        "impl": parts[0]["impl"],
        "runs": runs,
        "backend": parts[0]["backend"],
        "startup_s": [p["startup"]["wall_s"] for p in parts],
        "ess_per_s": med("ess_per_s"),
        "ess_per_s_incl_compile": med("ess_per_s_incl_compile"),
        "ess_median": med("ess_median"),
        "ess_min": med("ess_min"),
        "rhat_max": med("rhat_max"),
        "wall_s": med("wall_s"),
        "compile_s": med("compile_s"),
        "mean_leapfrog": med("mean_leapfrog"),
        "max_depth_frac": med("max_depth_frac"),
        "ess_per_1k_leapfrog": med("ess_per_1k_leapfrog"),
        "divergences": [r["divergences"] for r in runs],
        "step_size": med("step_size"),
        "sigma_mean": med("sigma_mean"),
        # pooled over seeds (equal draws per seed): total variance = mean of variances + variance of means
        "probe_mean": means.mean(axis=0).tolist(),
        "probe_sd": np.sqrt(variances.mean(0) + means.var(0)).tolist(),
        "peak_rss_mib": max(p["peak_rss_mib"] for p in parts),
        "warnings": sorted({w for p in parts for w in p["warnings"]}),
    }
    if result["impl"].startswith("bayes_rglm"):
        result["map_init_s"] = med("map_init_s")
        result["ess_per_s_sampling_only"] = med("ess_per_s_sampling_only")
    return result


# --------------------------------------------------------------------------------------------------
# Driver


def run_all(args) -> list[dict]:
    """Per setting and seed, the two implementations run back to back in fresh subprocesses (order alternating
    from seed to seed), so that each per-seed ratio compares runs close in time."""
    results = []
    for setting in args.settings:
        parts = {impl: [] for impl in IMPLS}
        for i, seed in enumerate(args.seeds):
            for impl in IMPLS[i % len(IMPLS) :] + IMPLS[: i % len(IMPLS)]:  # order rotates from seed to seed
                cmd = [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--worker",
                    setting,
                    impl,
                    "--warmup",
                    str(args.warmup),
                    "--samples",
                    str(args.samples),
                    "--chains",
                    str(args.chains),
                    "--seeds",
                    str(seed),
                ]
                print(f"[nuts_bnn] {setting:4s} {impl:21s} seed {seed} ...", end=" ", flush=True)
                started = time.perf_counter()
                part = worker_result(cmd, RESULT_PREFIX, f"{setting} {impl} seed {seed}")
                run = part["runs"][0]
                print(
                    f"ESS/s {run['ess_per_s']:.2f} (median ESS {run['ess_median']:.0f}, fit {run['wall_s']:.1f} s, "
                    f"compile {run['compile_s']:.1f} s; {time.perf_counter() - started:.0f} s in all)",
                    flush=True,
                )
                parts[impl].append(part)
        results += [_merge(parts[impl]) for impl in IMPLS]
    return results


def analyse(results: list[dict], settings) -> dict:
    """Per setting and baseline (:data:`BASELINES`), bayes_rglm's default against it."""
    by = {(r["setting"], r["impl"]): r for r in results}
    checks = {}
    for setting in settings:
        ours = by[(setting, "bayes_rglm")]
        for baseline in BASELINES:
            hand = by[(setting, baseline)]
            sd = np.sqrt((np.square(ours["probe_sd"]) + np.square(hand["probe_sd"])) / 2.0)
            diff = np.abs(np.subtract(ours["probe_mean"], hand["probe_mean"])) / np.maximum(sd, 1e-12)
            pairs = list(zip(ours["runs"], hand["runs"], strict=True))
            paired = [o["ess_per_s"] / h["ess_per_s"] for o, h in pairs]
            c = {
                "ratio": statistics.median(paired),
                "ratio_per_seed": paired,
                "ratio_of_medians": ours["ess_per_s"] / hand["ess_per_s"],
                "ratio_incl_compile": statistics.median(
                    o["ess_per_s_incl_compile"] / h["ess_per_s_incl_compile"] for o, h in pairs
                ),
                "ratio_per_leapfrog": ours["ess_per_1k_leapfrog"] / hand["ess_per_1k_leapfrog"],
                "mean_diff_sd": float(np.max(diff)),
            }
            c["meets"] = c["ratio"] >= TARGET_RATIO
            c["meets_ratio_of_medians"] = c["ratio_of_medians"] >= TARGET_RATIO
            checks[(setting, baseline)] = c
    return checks


def render(results: list[dict], checks: dict, args, elapsed: float, load) -> str:
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [
        START,
        "## NUTS on small Bayesian neural networks (`benchmarks/nuts_bnn.py`)",
        "",
        f"Run {now}{' with `--quick`' if args.quick else ''}: {args.warmup} warm-up + {args.samples} draws per "
        f"chain, {args.chains} chains, seeds {', '.join(map(str, args.seeds))} per implementation "
        f"(medians), {elapsed:.0f} s in all.",
        "",
        "**What is measured.** The same Bayesian network in both implementations: Normal(0, 1) priors on all "
        "weights and biases, Gaussian likelihood, sigma ~ HalfNormal(2.5 sd(y)), NUTS with numpyro's defaults "
        "(target acceptance 0.8, diagonal mass, max tree depth 10), float64. *bnn*: the data of numpyro's "
        "`examples/bnn.py` (100 points, y standardised) with two tanh layers of 5 units; unlike the example, every "
        "layer has a bias (so the constant input column is dropped) and sigma has the HalfNormal prior above "
        "instead of a Gamma(3, 1) prior on the precision. *sin*: 100 points, y = sin(2x) + N(0, 0.2^2), "
        "x ~ U(-2, 2), one tanh layer of 10 units. *bayes_rglm*: `RGLM('gaussian', hidden=..., activation='tanh', "
        "prior=GaussianPrior(scale=1.0)).fit(X, y, method='nuts', num_chains=2)`, "
        "which starts each chain from 200 L-BFGS steps towards its own MAP (included in its time); its default "
        "`chain_method='parallel'` runs each chain's program in a host thread, one per core, when there are fewer "
        "devices than chains; the `chain_method='sequential'` row runs both chains in one program. "
        "*hand-written numpyro*: "
        "`MCMC(NUTS(model), num_chains=2)` with numpyro's default initialisation; with one device (its default "
        "here) numpyro runs the chains one after another; the *set_host_device_count + parallel* row follows "
        "numpyro's advice for CPUs, `numpyro.set_host_device_count(2)` before JAX starts, so that its "
        "`chain_method='parallel'` runs one chain per (host) device. Every fit runs in a fresh subprocess, after "
        "one tiny start-up fit there; for each seed the implementations run back to back (order rotating "
        "from seed to seed), so that a per-seed ratio compares runs close in time. Each fit builds a new sampler, "
        "so it traces and compiles again; that time is measured with `jax.monitoring`. *ESS* is ArviZ's bulk ESS "
        f"of E[y|x] at {N_PROBES} probe inputs spread over the training range, median (and minimum) over probes; "
        "**ESS/s** = median ESS / (fit wall time - its tracing and compilation time). *leapfrog/iter* is the mean "
        "number of leapfrog steps per kept iteration; *at max depth* the share of kept iterations that hit tree "
        "depth 10; *ESS per 1k leapfrog* divides the median ESS by the leapfrog steps of the kept iterations "
        "(a measure of sampling efficiency that CPU load cannot move).",
        "",
        "| setting | implementation | ESS/s | ESS/s incl. compile | median ESS | min ESS | max R-hat | fit s | "
        "compile s | MAP init s | leapfrog/iter | at max depth | ESS per 1k leapfrog | step size | divergences "
        "per seed | posterior sigma | load at start per seed |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for r in results:
        map_init = f"{r['map_init_s']:.1f}" if r["impl"].startswith("bayes_rglm") else "--"
        lines.append(
            f"| {r['setting']} | {LABELS[r['impl']]} | {r['ess_per_s']:.2f} | {r['ess_per_s_incl_compile']:.2f} | "
            f"{r['ess_median']:.0f} | {r['ess_min']:.0f} | {r['rhat_max']:.3f} | {r['wall_s']:.1f} | "
            f"{r['compile_s']:.1f} | {map_init} | {r['mean_leapfrog']:.0f} | {r['max_depth_frac']:.0%} | "
            f"{r['ess_per_1k_leapfrog']:.2f} | {r['step_size']:.3g} | {', '.join(str(d) for d in r['divergences'])} "
            f"| {r['sigma_mean']:.3f} | {', '.join(fmt_load(run['load_at_start']) for run in r['runs'])} |"
        )
    lines += [
        "",
        f"**Target** (bayes_rglm's default ESS/s of E[y|x] at least {TARGET_RATIO:g}x the hand-written model's, "
        "same run), against each way of running numpyro. The verdict uses the median over seeds of the per-seed "
        "ratios (runs back to back); the ratio of the two medians, the ratio with compilation included and the "
        "ratio of ESS per leapfrog step are shown beside it:",
        "",
        "| setting | against | bayes_rglm / hand-written ESS/s, median of per-seed ratios "
        f"(target >= {TARGET_RATIO:g}) | per seed | "
        "ratio of median ESS/s | same incl. compile | ESS per leapfrog | largest posterior-mean difference "
        "of E[y\\|x] (posterior sds) |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for (setting, baseline), c in checks.items():
        lines.append(
            f"| {setting} | {LABELS[baseline]} | {c['ratio']:.2f} ({yes(c['meets'])}) | "
            f"{', '.join(f'{v:.2f}' for v in c['ratio_per_seed'])} | {c['ratio_of_medians']:.2f} "
            f"({yes(c['meets_ratio_of_medians'])}) | {c['ratio_incl_compile']:.2f} | {c['ratio_per_leapfrog']:.2f} | "
            f"{c['mean_diff_sd']:.2f} |"
        )
    lines += ["", "Per seed:", ""]
    for r in results:
        parts = []
        for run in r["runs"]:
            extra = f", MAP init {run['map_init_s']:.1f} s" if "map_init_s" in run else ""
            parts.append(
                f"seed {run['seed']}: fit {run['wall_s']:.1f} s (compile {run['compile_s']:.1f} s{extra}), "
                f"median ESS {run['ess_median']:.0f}, min {run['ess_min']:.0f}, max R-hat "
                f"{run['rhat_max']:.3f}, ESS/s {run['ess_per_s']:.2f}, {run['mean_leapfrog']:.0f} "
                f"leapfrog/iter"
            )
        lines.append(f"- {r['setting']}, {LABELS[r['impl']]}: " + "; ".join(parts) + ".")
    notes = sorted({f"{r['setting']}, {LABELS[r['impl']]}: {w}" for r in results for w in r["warnings"]})
    if notes:
        lines += ["", "Warnings raised in the workers:", ""] + [f"- {w}" for w in notes]
    lines += footer(load, results[0]["backend"], versions(("jax", "jaxlib", "numpyro", "arviz", "bayes_rglm")), END)
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: 100 warm-up + 100 draws, 1 seed")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "BENCHMARKS.md", help="markdown file to update")
    parser.add_argument("--settings", type=lambda s: s.split(","), default=list(SETTINGS))
    parser.add_argument("--warmup", type=int, default=None, help="warm-up iterations per chain")
    parser.add_argument("--samples", type=int, default=None, help="kept iterations per chain")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=None, help="seeds per implementation (median reported)")
    parser.add_argument(
        "--seeds",
        type=lambda v: [int(x) for x in v.split(",")],
        default=None,
        help="comma-separated seeds (default 1..repeats)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--worker", nargs=2, metavar=("SETTING", "IMPL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.warmup = args.warmup or (100 if args.quick else 500)
    args.samples = args.samples or (100 if args.quick else 500)
    args.repeats = args.repeats or (1 if args.quick else 5)
    args.seeds = args.seeds or list(range(1, args.repeats + 1))

    if args.worker:
        setting, impl = args.worker
        result = worker(setting, impl, args)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0

    unknown = sorted(set(args.settings) - set(SETTINGS))
    if unknown:
        parser.error(f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(SETTINGS)}")
    load = load_average()
    started = time.perf_counter()
    results = run_all(args)
    checks = analyse(results, args.settings)
    section = render(results, checks, args, time.perf_counter() - started, load)
    write_section(args.out, section, START, END)
    print(section)
    print(f"[nuts_bnn] wrote {args.out}")
    missed = [s for s, c in checks.items() if not c["meets"]]
    if missed:
        print("[nuts_bnn] target missed: " + ", ".join(f"{s} against {b}" for s, b in missed))
    return 1 if (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
