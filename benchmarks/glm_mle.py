"""Depth-0 logistic and Poisson MLE: bayes_rglm against statsmodels, glum and scikit-learn.

Usage::

    python benchmarks/glm_mle.py            # N=100,000, P=50, 7 warm repeats, 3 fresh processes each
    python benchmarks/glm_mle.py --quick    # N=5,000, P=10, 3 warm repeats, 1 process (smoke test)
    python benchmarks/glm_mle.py --out PATH # where the markdown section goes (default BENCHMARKS.md)

What is measured
----------------
Each (library, family) pair runs in its own fresh subprocess
(``python glm_mle.py --worker LIB FAMILY ...``), which imports the library
and builds the data *before* any timing starts, then times with
``time.perf_counter`` around the whole user-facing fit call:

* **cold**: the first fit in that process (for bayes_rglm this includes JAX
  tracing and XLA compilation; JAX's persistent compilation cache is switched
  off in the worker so nothing compiled by an earlier run is reused);
* **warm**: the median of ``--repeats`` further fits on the same data in the
  same process (the second and later fits).

Every library fits the same unpenalised GLM with an intercept on the same
synthetic data (fixed seed).  The negative log-likelihood (summed over rows,
including ``log y!`` for Poisson) is recomputed with one numpy formula from
each library's intercept and coefficients, so the values are comparable, and
the largest absolute coefficient difference (intercept included) is taken
against statsmodels.

For bayes_rglm the worker also counts XLA backend compilations (via
``jax.monitoring``) during the warm fits, including one extra fit on a
different response of the same shape: repeated fits with the same shapes must
compile nothing.  As a cruder cross-check the median warm fit should take under
20% of the cold one (reported only; CPU contention can break it even with zero
compilations).

The script rewrites only its own section of the markdown file, between
``<!-- glm_mle:start -->`` and ``<!-- glm_mle:end -->`` (creating the file or
appending the section if needed), atomically (temporary file + ``os.replace``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from _common import footer, versions, worker_result, write_section, yes

LIBRARIES = ("bayes_rglm", "statsmodels", "glum", "sklearn")
FAMILIES = ("logistic", "poisson")
START, END = "<!-- glm_mle:start -->", "<!-- glm_mle:end -->"
RESULT_PREFIX = "GLM_MLE_RESULT "
REPO_ROOT = Path(__file__).resolve().parents[1]
SEED = 20240611

# Targets from the issue.
TARGET_VS_GLUM = 0.5  # bayes_rglm warm time <= 0.5 x glum's
TARGET_COLD_VS_GLUM = 6.0  # bayes_rglm cold (first) call <= 6 x glum's
TARGET_VS_STATSMODELS = 10.0  # statsmodels warm time >= 10 x bayes_rglm's
TARGET_NLL_RTOL = 1e-6  # "identical optimum"
WARM_COLD_MAX = 0.2  # warm fits < 20% of the cold fit (no recompilation)


# --------------------------------------------------------------------------------------------------
# Data and the common likelihood


def make_data(family: str, n: int, p: int, seed: int = SEED):
    """Synthetic design and response with a fixed seed.

    ``X`` is standard normal with a few correlated columns (correlations 0.8,
    0.6 and 0.5 with earlier columns); the coefficients are drawn as
    N(0, 0.2^2) and rescaled so that the linear predictor has a moderate
    spread: sd 1.5 around -0.5 for the logistic model (no separation), sd 0.5
    around 1.0 for the Poisson model (means mostly well below 20).
    """
    rng = np.random.default_rng(seed + (0 if family == "logistic" else 1))
    X = rng.standard_normal((n, p))
    for target, source, rho in ((1, 0, 0.8), (3, 2, 0.6), (p - 1, p - 2, 0.5)):
        if target < p and source < p and target != source:
            X[:, target] = rho * X[:, source] + np.sqrt(1.0 - rho**2) * X[:, target]
    beta = rng.normal(0.0, 0.2, p)
    if family == "logistic":
        intercept, spread = -0.5, 1.5
    else:
        intercept, spread = 1.0, 0.5
    beta *= spread / np.std(X @ beta)
    eta = intercept + X @ beta
    if family == "logistic":
        y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(np.float64)
    else:
        y = rng.poisson(np.exp(eta)).astype(np.float64)
    return X, y


def negative_log_likelihood(family: str, X, y, intercept: float, coef) -> float:
    """Summed NLL from an intercept and coefficients; one formula for every library."""
    from scipy.special import gammaln

    eta = intercept + X @ np.asarray(coef, dtype=np.float64)
    if family == "logistic":
        return float(np.sum(np.logaddexp(0.0, eta) - y * eta))
    return float(np.sum(np.exp(eta) - y * eta + gammaln(y + 1.0)))


# --------------------------------------------------------------------------------------------------
# One fit per library: returns (intercept, coef, extra info)


def _setup(lib: str, family: str):
    """Import the library (outside the timed region) and return ``fit(X, y) -> (b0, w, info)``."""
    if lib == "bayes_rglm":
        import jax

        jax.config.update("jax_enable_compilation_cache", False)  # cold means cold: no persistent cache
        import bayes_rglm as br

        br_family = "bernoulli" if family == "logistic" else "poisson"

        def fit(X, y):
            result = br.RGLM(family=br_family, hidden=()).fit(X, y, method="mle")
            info = {k: result.info[k] for k in ("time", "iterations", "converged", "objective")}
            return float(result.params["b0"][0]), np.asarray(result.params["w0"][:, 0]), info

        return fit, "damped Newton (exact Hessian, Cholesky), decrement tol 1e-10 (default)"

    if lib == "statsmodels":
        import statsmodels.api as sm

        sm_family = sm.families.Binomial() if family == "logistic" else sm.families.Poisson()

        def fit(X, y):
            result = sm.GLM(y, sm.add_constant(X, has_constant="add"), family=sm_family).fit()
            params = np.asarray(result.params)
            return (
                float(params[0]),
                params[1:],
                {"iterations": int(result.fit_history["iteration"]), "converged": bool(result.converged)},
            )

        return fit, "IRLS (default: tol 1e-8 on deviance, maxiter 100)"

    if lib == "glum":
        from glum import GeneralizedLinearRegressor

        def fit(X, y):
            model = GeneralizedLinearRegressor(
                family="binomial" if family == "logistic" else "poisson",
                alpha=0.0,
                l1_ratio=0.0,
                fit_intercept=True,
                gradient_tol=1e-8,
                max_iter=1000,
            )
            model.fit(X, y)
            return (
                float(model.intercept_),
                np.asarray(model.coef_),
                {"iterations": int(model.n_iter_), "solver": model._solver},
            )

        return fit, "alpha=0 (unpenalised), solver='auto' (irls-ls), gradient_tol=1e-8"

    if lib == "sklearn":
        import inspect

        from sklearn.linear_model import LogisticRegression, PoissonRegressor

        if family == "logistic":
            if inspect.signature(LogisticRegression).parameters["penalty"].default == "deprecated":
                unpenalised = {"C": np.inf}  # scikit-learn >= 1.8: penalty= is deprecated
            else:
                unpenalised = {"penalty": None}

            def make():
                return LogisticRegression(solver="newton-cholesky", tol=1e-10, max_iter=1000, **unpenalised)

            label = f"LogisticRegression({', '.join(f'{k}={v}' for k, v in unpenalised.items())}, "
            label += "solver='newton-cholesky', tol=1e-10)"
        else:

            def make():
                return PoissonRegressor(alpha=0.0, solver="newton-cholesky", tol=1e-10, max_iter=1000)

            label = "PoissonRegressor(alpha=0, solver='newton-cholesky', tol=1e-10)"

        def fit(X, y):
            model = make()
            model.fit(X, y)
            coef = np.ravel(model.coef_)
            n_iter = int(np.max(model.n_iter_))
            return float(np.ravel(model.intercept_)[0]), coef, {"iterations": n_iter}

        return fit, label

    raise ValueError(f"unknown library {lib!r}")


def worker(lib: str, family: str, n: int, p: int, repeats: int) -> dict:
    """Time one library on one family in this (fresh) process; return a JSON-able dict."""
    fit, solver = _setup(lib, family)
    compiles: list[tuple[str, float]] = []
    if lib == "bayes_rglm":
        from jax import monitoring

        def listener(event, duration, **kwargs):
            if event == "/jax/core/compile/backend_compile_duration":
                compiles.append((str(kwargs.get("fun_name", "?")), float(duration)))

        monitoring.register_event_duration_secs_listener(listener)

    X, y = make_data(family, n, p)
    caught: list[str] = []
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        started = time.perf_counter()
        b0, w, info_cold = fit(X, y)
        cold = time.perf_counter() - started
        cold_compiles = list(compiles)
        compiles.clear()
        warm, warm_infos = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            b0, w, info = fit(X, y)
            warm.append(time.perf_counter() - started)
            warm_infos.append(info)
        caught = sorted({f"{r.category.__name__}: {str(r.message)[:160]}" for r in record})

    result = {
        "library": lib,
        "family": family,
        "n": n,
        "p": p,
        "solver": solver,
        "cold_s": cold,
        "warm_s": warm,
        "warm_median_s": statistics.median(warm),
        "intercept": b0,
        "coef": np.asarray(w, dtype=float).tolist(),
        "nll": negative_log_likelihood(family, X, y, b0, w),
        "info_cold": info_cold,
        "info_warm": warm_infos[-1] if warm_infos else None,
        "warnings": caught,
    }
    if lib == "bayes_rglm":
        # Same shapes, different values: must not compile either.
        y_other = make_data(family, n, p, seed=SEED + 17)[1]
        started = time.perf_counter()
        fit(X, y_other)
        other = time.perf_counter() - started
        solver_times = [i["time"] for i in warm_infos]
        result.update(
            {
                "cold_compiles": len(cold_compiles),
                "cold_compile_s": sum(d for _, d in cold_compiles),
                "cold_compile_top": sorted(cold_compiles, key=lambda c: -c[1])[:3],
                "warm_compiles": len(compiles),
                "warm_compile_names": sorted({name for name, _ in compiles}),
                "other_y_s": other,
                "solver_cold_s": info_cold["time"],
                "solver_warm_median_s": statistics.median(solver_times) if solver_times else float("nan"),
                "fit_times_2nd_3rd": warm[:2],
            }
        )
    return result


# --------------------------------------------------------------------------------------------------
# Driver


def run_all(n: int, p: int, repeats: int, processes: int) -> list[dict]:
    runs: dict[tuple[str, str], list[dict]] = {}
    for round_ in range(processes):
        for family in FAMILIES:
            for lib in LIBRARIES:
                cmd = [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--worker",
                    lib,
                    family,
                    "--n",
                    str(n),
                    "--p",
                    str(p),
                    "--repeats",
                    str(repeats),
                ]
                print(f"[glm_mle] {round_ + 1}/{processes} {lib:12s} {family:8s} ...", end=" ", flush=True)
                result = worker_result(cmd, RESULT_PREFIX, f"{lib} {family}")
                print(
                    f"cold {result['cold_s']:.3f} s, warm {result['warm_median_s']:.3f} s, NLL {result['nll']:.6f}",
                    flush=True,
                )
                runs.setdefault((lib, family), []).append(result)
    return [combine(r) for r in runs.values()]


def combine(runs: list[dict]) -> dict:
    """One library and family over its fresh processes: medians of the cold and warm times (and of the
    solver's warm time), every process's figures kept; the other fields from the median-cold process."""
    colds = [r["cold_s"] for r in runs]
    middle = dict(runs[int(np.argsort(colds)[(len(runs) - 1) // 2])])
    middle["cold_s"] = statistics.median(colds)
    middle["warm_median_s"] = statistics.median(r["warm_median_s"] for r in runs)
    middle["cold_all"] = colds
    middle["warm_all"] = [r["warm_median_s"] for r in runs]
    if "solver_warm_median_s" in middle:
        middle["solver_warm_median_s"] = statistics.median(r["solver_warm_median_s"] for r in runs)
        middle["warm_compiles"] = max(r["warm_compiles"] for r in runs)
    return middle


def analyse(results: list[dict]) -> dict:
    """Per-family comparisons against bayes_rglm and statsmodels, and the target checks."""
    by = {(r["library"], r["family"]): r for r in results}
    checks = {}
    for family in FAMILIES:
        ours, sm_, glum_ = by[("bayes_rglm", family)], by[("statsmodels", family)], by[("glum", family)]
        reference = np.array([sm_["intercept"], *sm_["coef"]])
        for r in results:
            if r["family"] != family:
                continue
            coef = np.array([r["intercept"], *r["coef"]])
            r["max_coef_diff"] = float(np.max(np.abs(coef - reference)))
            r["ratio_vs_ours"] = r["warm_median_s"] / ours["warm_median_s"]
            r["nll_rel_diff"] = abs(r["nll"] - sm_["nll"]) / abs(sm_["nll"])
        nll_spread = max(abs(r["nll"] - ours["nll"]) / abs(ours["nll"]) for r in results if r["family"] == family)
        warm_over_cold = ours["warm_median_s"] / ours["cold_s"]
        checks[family] = {  # "meets_*" and "no_recompile" are the pass/fail checks
            "vs_glum": ours["warm_median_s"] / glum_["warm_median_s"],
            "cold_vs_glum": ours["cold_s"] / glum_["cold_s"],
            "speedup_vs_statsmodels": sm_["warm_median_s"] / ours["warm_median_s"],
            "nll_spread": nll_spread,
            "warm_over_cold": warm_over_cold,
            "warm_compiles": ours["warm_compiles"],
            "meets_glum": ours["warm_median_s"] <= TARGET_VS_GLUM * glum_["warm_median_s"],
            "meets_cold_glum": ours["cold_s"] <= TARGET_COLD_VS_GLUM * glum_["cold_s"],
            "meets_statsmodels": sm_["warm_median_s"] >= TARGET_VS_STATSMODELS * ours["warm_median_s"],
            "meets_optimum": nll_spread <= TARGET_NLL_RTOL,
            "no_recompile": ours["warm_compiles"] == 0,
            "meets_warm_cold": warm_over_cold < WARM_COLD_MAX,
        }
    return checks


def render(results: list[dict], checks: dict, args, elapsed: float, load: tuple | None) -> str:
    n, p = results[0]["n"], results[0]["p"]
    version_info = versions(("jax", "jaxlib", "glum", "statsmodels", ("scikit-learn", "sklearn"), "scipy"))
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [
        START,
        "## Depth-0 GLM maximum likelihood (`benchmarks/glm_mle.py`)",
        "",
        f"Run {now}{' with `--quick`' if args.quick else ''}: N={n:,}, P={p}, "
        f"{args.repeats} warm repeats, {args.processes} fresh process(es) per library and family, "
        f"{elapsed:.0f} s in all.",
        "",
        "**What is measured.** Logistic and Poisson regression, unpenalised, with an intercept, on the same "
        "synthetic data (fixed seed; standard normal X with a few correlated columns; linear predictor sd 1.5 "
        "around -0.5 for logistic, sd 0.5 around 1.0 for Poisson). Each library and family runs in a fresh "
        "subprocess that imports the library and builds the data before timing. *Cold* is the wall time of the "
        "first fit call in that process (bayes_rglm: JAX tracing and XLA compilation included, persistent "
        "compilation cache off); *warm* is the median wall time of the following fits on the same data in the "
        "same process. With several processes per library and family (run in rotating rounds), *cold* and *warm* are "
        "the medians over the processes, and every process's figures follow the table. Times cover the whole "
        "user-facing call (input checks, model construction, solve, "
        "result objects). *NLL* is the negative log-likelihood summed over rows (with log y! for Poisson), "
        "recomputed with one numpy formula from each library's coefficients; *max |coef diff|* is against "
        "statsmodels, intercept included; *ratio* is the library's warm time over bayes_rglm's.",
        "",
        "| library | family | cold s | warm median s | ratio warm vs bayes_rglm | NLL | max \\|coef diff\\| vs "
        "statsmodels | iterations | solver / settings |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        iters = (r.get("info_warm") or r["info_cold"]).get("iterations", "")
        lines.append(
            f"| {r['library']} | {r['family']} | {r['cold_s']:.3f} | {r['warm_median_s']:.3f} | "
            f"{r['ratio_vs_ours']:.2f} | {r['nll']:.6f} | {r['max_coef_diff']:.2e} | {iters} | {r['solver']} |"
        )
    if any(len(r["cold_all"]) > 1 for r in results):
        lines += ["", "Every process (cold / warm median, s):", ""]
        lines += [
            f"- {r['library']} {r['family']}: "
            + ", ".join(f"{c:.3f} / {w:.3f}" for c, w in zip(r["cold_all"], r["warm_all"], strict=True))
            for r in results
        ]
    lines += [
        "",
        "**Targets** (bayes_rglm warm time at most half of glum's, the cold call at most 6x glum's, at least "
        "10x faster than "
        "statsmodels, the same optimum; repeated fits with the same shapes compile nothing):",
        "",
    ]
    lines += [
        "| family | bayes_rglm / glum, warm (target <= 0.5) | bayes_rglm / glum, cold (target <= 6) | "
        "statsmodels / bayes_rglm (target >= 10) | "
        "NLL max rel. spread (target <= 1e-6) | XLA compilations after the first fit (target 0) | "
        "median warm / cold (heuristic < 0.2) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for family, c in checks.items():
        lines.append(
            f"| {family} | {c['vs_glum']:.2f} ({yes(c['meets_glum'])}) | "
            f"{c['cold_vs_glum']:.1f} ({yes(c['meets_cold_glum'])}) | "
            f"{c['speedup_vs_statsmodels']:.1f} ({yes(c['meets_statsmodels'])}) | "
            f"{c['nll_spread']:.1e} ({yes(c['meets_optimum'])}) | {c['warm_compiles']} "
            f"({yes(c['no_recompile'])}) | {c['warm_over_cold']:.3f} ({yes(c['meets_warm_cold'])}) |"
        )
    lines += ["", "bayes_rglm detail (solver time is `fit.info['time']`, the compiled call only):", ""]
    for r in results:
        if r["library"] != "bayes_rglm":
            continue
        it = r["info_warm"]["iterations"]
        per_iter = r["solver_warm_median_s"] / max(it, 1)
        overhead = r["warm_median_s"] - r["solver_warm_median_s"]
        lines.append(
            f"- {r['family']}: cold {r['cold_s']:.2f} s of which {r['cold_compile_s']:.2f} s in "
            f"{r['cold_compiles']} XLA compilations (largest: "
            + ", ".join(f"`{name}` {d:.2f} s" for name, d in r["cold_compile_top"])
            + f"); 2nd and 3rd fits {', '.join(f'{t:.3f}' for t in r['fit_times_2nd_3rd'])} s; "
            f"fit on a new y of the same shape {r['other_y_s']:.3f} s; {r['warm_compiles']} compilations after "
            f"the first fit. Warm: {it} Newton iterations, solver {r['solver_warm_median_s']:.3f} s "
            f"({per_iter * 1e3:.0f} ms per iteration), {overhead:.3f} s outside the solver; "
            f"converged={r['info_warm']['converged']}; own objective {r['info_warm']['objective']:.6f}."
        )
    notes = sorted({f"{r['library']} {r['family']}: {w}" for r in results for w in r["warnings"]})
    if notes:
        lines += ["", "Warnings raised during the fits:", ""] + [f"- {w}" for w in notes]
    lines += footer(load, None, version_info, END)
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: N=5,000, P=10, 3 repeats")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "BENCHMARKS.md", help="markdown file to update")
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--p", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None, help="warm fits per library (median reported)")
    parser.add_argument(
        "--processes", type=int, default=None, help="fresh processes per library and family (medians reported)"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--worker", nargs=2, metavar=("LIB", "FAMILY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.n = args.n or (5_000 if args.quick else 100_000)
    args.p = args.p or (10 if args.quick else 50)
    args.repeats = args.repeats or (3 if args.quick else 7)
    args.processes = args.processes or (1 if args.quick else 3)

    if args.worker:
        lib, family = args.worker
        result = worker(lib, family, args.n, args.p, args.repeats)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    started = time.perf_counter()
    results = run_all(args.n, args.p, args.repeats, args.processes)
    checks = analyse(results)
    section = render(results, checks, args, time.perf_counter() - started, load)
    write_section(args.out, section, START, END)
    print(section)
    print(f"[glm_mle] wrote {args.out}")
    missed = [
        f"{family}: {name}"
        for family, c in checks.items()
        for name, ok in c.items()
        if name.startswith(("meets_", "no_")) and name != "meets_warm_cold" and not ok
    ]
    if missed:
        print("[glm_mle] targets missed: " + "; ".join(missed))
    return 1 if (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
