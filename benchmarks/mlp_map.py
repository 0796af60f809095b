"""MAP and Laplace of a 20-50-1 tanh Bernoulli net against scikit-learn's ``MLPClassifier(solver="lbfgs")``.

Usage::

    python benchmarks/mlp_map.py             # MAP at 10k, 50k, 200k, 1M rows; Laplace at 10k, 50k, 200k
                                             # (default covariance) and at 50k with covariance="full";
                                             # sklearn at 10k, 50k
    python benchmarks/mlp_map.py --laplace-1m  # the same, and Laplace at 1M rows too (about 35 min more)
    python benchmarks/mlp_map.py --quick     # 2k and 4k rows (smoke test)
    python benchmarks/mlp_map.py --out PATH  # where the markdown section goes (default BENCHMARKS.md)

What is measured
----------------
Every (library, method, rows) case runs in its own fresh subprocess with JAX's
persistent compilation cache off, which builds the data first and then times
the whole user-facing call with ``time.perf_counter`` (compilation included).
Peak memory is the worker's peak resident set (``ru_maxrss``), and the size of
the data arrays is reported beside it.

The model: 20 standard-normal features, one tanh hidden layer of 50 units, a
logistic output (1,101 parameters); ``y`` is drawn from a random teacher net of
the same shape.  bayes_rglm's prior is ``N(0, 1)`` on every weight and
``N(0, 1e4^2)`` (flat in effect) on the biases, which is exactly scikit-learn's
``alpha=1`` penalty: scikit-learn minimises ``mean log loss + alpha ||W||^2 /
(2 n)``, so both minimise the same objective per row, recomputed here from each
fit's weights with one numpy formula.

The script rewrites only its own section of the markdown file, between
``<!-- mlp_map:start -->`` and ``<!-- mlp_map:end -->``, atomically, and
draws ``benchmarks/mlp_map.png`` (time and peak memory against rows).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from _common import footer, load_average, versions, write_section

START, END = "<!-- mlp_map:start -->", "<!-- mlp_map:end -->"
RESULT_PREFIX = "MLP_MAP_RESULT "
FEATURES, UNITS = 20, 50
BIAS_SCALE = 1e4
BLOCK = 50_000  # rows per block when the benchmark itself computes the net (data, objective)


def make_data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    teacher = np.random.default_rng(12345)
    W0 = teacher.normal(size=(FEATURES, UNITS)) / np.sqrt(FEATURES)
    b0 = teacher.normal(size=UNITS) * 0.5
    w1 = teacher.normal(size=UNITS) * 3.0 / np.sqrt(UNITS)
    X = rng.normal(size=(n, FEATURES))
    eta = np.concatenate([np.tanh(X[i : i + BLOCK] @ W0 + b0) @ w1 for i in range(0, n, BLOCK)])
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(np.float64)
    return X, y


def objective_per_row(X, y, W0, b0, w1, b1) -> float:
    """``mean log loss + (||W0||^2 + ||w1||^2) / (2 n)``: scikit-learn's alpha=1 loss, ours with the N(0, 1) prior."""
    # In blocks of rows, so that the worker's peak memory is the fit's, not this check's.
    w1 = np.ravel(w1)
    eta = np.concatenate([np.tanh(X[i : i + BLOCK] @ W0 + b0) @ w1 for i in range(0, len(y), BLOCK)])
    eta = eta + float(np.ravel(b1)[0])
    log_loss = np.mean(np.logaddexp(0.0, eta) - y * eta)
    return float(log_loss + (np.sum(W0**2) + np.sum(w1**2)) / (2 * len(y)))


def worker(library: str, method: str, n: int, budget: int) -> dict:
    """One fit in this process; ``budget`` > 0 caps L-BFGS at that many iterations (``max_iter=budget // 20``)."""
    X, y = make_data(n)
    data_mb = (X.nbytes + y.nbytes) / 2**20
    out = {"library": library, "method": method, "n": n, "data_mb": data_mb, "budget": budget}
    if library == "sklearn":
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        clf = MLPClassifier(hidden_layer_sizes=(UNITS,), activation="tanh", solver="lbfgs", alpha=1.0, random_state=0)
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, y)
        out["seconds"] = time.perf_counter() - started
        (W0, W1), (b0, b1) = clf.coefs_, clf.intercepts_
        out["objective"] = objective_per_row(X, y, W0, b0, W1, b1)
        out["iterations"] = int(clf.n_iter_)
    else:
        import jax

        jax.config.update("jax_enable_compilation_cache", False)  # the whole compile counts, every run
        import bayes_rglm as br

        model = br.RGLM(
            "bernoulli",
            hidden=(UNITS,),
            activation="tanh",
            prior=br.GaussianPrior(scale=1.0, bias_scale=BIAS_SCALE),
        )
        laplace = method.startswith("laplace")
        options = {"num_samples": 1000} if laplace else {}
        if method == "laplace-full":  # the full curvature whatever the size (the default is "last_layer" here
            options["covariance"] = "full"  # past rows x parameters^2 = 4e10, i.e. from about 33,000 rows)
        if budget:
            options["max_iter"] = budget // 20  # L-BFGS runs up to 20 x max_iter iterations
        started = time.perf_counter()
        fit = model.fit(X, y, method="laplace" if laplace else method, seed=0, progress=False, **options)
        out["seconds"] = time.perf_counter() - started
        params = fit.info.get("map", fit.params)
        out["objective"] = objective_per_row(X, y, params["w0"], params["b0"], params["w1"], params["b1"])
        out["iterations"] = int(fit.info["iterations"])
        out["optimizer"] = fit.info["optimizer"]
        out["converged"] = bool(fit.info["converged"])
        if laplace:
            # The coordinates the Gaussian spans: every one, or the output layer's ("last_layer": the hidden
            # layers are held at the MAP, so their draws do not vary).
            out["covariance"] = fit.info["laplace_covariance"]
            spanned = ("w1", "b1") if out["covariance"] == "last_layer" else tuple(fit.samples)
            sd = np.concatenate([np.ravel(fit.samples[k].std(axis=(0, 1))) for k in spanned])
            out["sd_finite"] = bool(np.all(np.isfinite(sd)) and np.all(sd > 0))
            out["sd_median"] = float(np.median(sd))
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def run_worker(library: str, method: str, n: int, budget: int, timeout: float) -> dict:
    env = dict(os.environ, BAYES_RGLM_NO_CACHE="1")
    cmd = [sys.executable, __file__, "--worker", library, method, str(n), str(budget)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"library": library, "method": method, "n": n, "error": f"timed out after {timeout:.0f} s"}
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    return {"library": library, "method": method, "n": n, "error": f"exit {proc.returncode}: {tail[0][:200]}"}


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    styles = {
        ("bayes_rglm", "map", 200): ("o-", "bayes_rglm map, 200 L-BFGS iterations"),
        ("bayes_rglm", "map", 0): ("o:", "bayes_rglm map, to tolerance"),
        ("bayes_rglm", "laplace", 0): ("s-", "bayes_rglm laplace"),
        ("sklearn", "map", 0): ("^--", "sklearn MLPClassifier lbfgs (200 iterations)"),
    }
    for (library, method, budget), (style, label) in styles.items():
        rows = [
            r
            for r in results
            if (r["library"], r["method"], r.get("budget", 0)) == (library, method, budget) and "error" not in r
        ]
        if not rows:
            continue
        n = [r["n"] for r in rows]
        axes[0].loglog(n, [r["seconds"] for r in rows], style, label=label)
        axes[1].semilogx(n, [r["peak_mb"] for r in rows], style, label=label)
    data = sorted({r["n"]: r["data_mb"] for r in results}.items())
    axes[1].semilogx([d[0] for d in data], [d[1] for d in data], "k:", label="data (X, y)")
    axes[0].set(xlabel="rows", ylabel="seconds (fresh process, compile included)", title="time")
    axes[1].set(xlabel="rows", ylabel="peak resident MiB", title="peak memory")
    for ax in axes:
        ax.legend(fontsize=8, loc="lower right" if ax is axes[0] else "center right")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "BENCHMARKS.md"))
    parser.add_argument("--worker", nargs=4, metavar=("LIBRARY", "METHOD", "N", "BUDGET"))
    parser.add_argument("--laplace-1m", action="store_true", help="add Laplace at 1M rows (about 35 min here)")
    args = parser.parse_args()
    if args.worker:
        library, method, n, budget = args.worker
        print(RESULT_PREFIX + json.dumps(worker(library, method, int(n), int(budget))), flush=True)
        return
    # budget 0: to the default tolerance; 200: at most 200 L-BFGS iterations, scikit-learn's default max_iter.
    if args.quick:
        cases = [("bayes_rglm", "map", 2000, 0), ("bayes_rglm", "laplace", 2000, 0), ("sklearn", "map", 2000, 0)]
        cases += [("bayes_rglm", "map", 2000, 200), ("bayes_rglm", "map", 4000, 200)]
    else:
        cases = [("sklearn", "map", n, 0) for n in (10_000, 50_000)]
        cases += [("bayes_rglm", "map", n, 200) for n in (10_000, 50_000, 200_000, 1_000_000)]
        cases += [("bayes_rglm", "map", n, 0) for n in (10_000, 50_000)]
        # Laplace at 1M rows (about 35 min here, linear from these three) only with --laplace-1m.
        laplace_rows = (10_000, 50_000, 200_000) + ((1_000_000,) if args.laplace_1m else ())
        cases += [("bayes_rglm", "laplace", n, 0) for n in laplace_rows]
        cases += [("bayes_rglm", "laplace-full", 50_000, 0)]
    load = load_average()
    started = _dt.datetime.now(_dt.UTC)
    results = []
    for library, method, n, budget in cases:
        result = run_worker(library, method, n, budget, timeout=3600)
        print(json.dumps(result), flush=True)
        results.append(result)
    out = Path(args.out)
    png = out.parent / "benchmarks" / "mlp_map.png" if not args.quick else out.with_suffix(".png")
    png.parent.mkdir(parents=True, exist_ok=True)
    plot(results, png)
    lines = [
        START,
        "## MAP and Laplace of a 20-50-1 tanh Bernoulli net (`benchmarks/mlp_map.py`)",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC. Each case in a fresh process, persistent compilation cache off: "
        "seconds are the whole fit call, compilation included. Objective: mean log loss + ||W||^2 / (2n) "
        "(scikit-learn's `alpha=1` loss = our N(0, 1) weight prior, flat biases), recomputed from each fit.",
        "",
        "| library | method | L-BFGS budget | rows | seconds | peak MiB | data MiB | objective / row | iterations "
        "| optimizer | note |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in results:
        budget = r.get("budget") or ("200" if r["library"] == "sklearn" else "tolerance")
        if "error" in r:
            cells = f"| {r['library']} | {r['method']} | {budget} | {r['n']:,} |"
            lines.append(cells + f" - | - | - | - | - | - | {r['error']} |")
            continue
        note = ""
        if r["method"].startswith("laplace"):
            spans = "output layer's" if r["covariance"] == "last_layer" else "every"
            note = (
                f"covariance {r['covariance']}; {spans} posterior sd finite and > 0: {r['sd_finite']}, "
                f"median {r['sd_median']:.3g}"
            )
        elif r["library"] == "bayes_rglm":
            note = f"converged: {r['converged']}"
        lines.append(
            f"| {r['library']} | {r['method']} | {budget} | {r['n']:,} | {r['seconds']:.1f} | {r['peak_mb']:.0f} | "
            f"{r['data_mb']:.0f} | {r['objective']:.5f} | {r['iterations']} | {r.get('optimizer', 'lbfgs')} | {note} |"
        )
    by = {(r["library"], r["method"], r["n"], r.get("budget", 0)): r for r in results if "error" not in r}
    for n in sorted({r["n"] for r in results}):
        theirs = by.get(("sklearn", "map", n, 0))
        for budget, what in ((200, "with the same 200-iteration L-BFGS budget"), (0, "to the default tolerance")):
            ours = by.get(("bayes_rglm", "map", n, budget))
            if ours and theirs:
                lines.append("")
                lines.append(
                    f"At {n:,} rows, MAP {what}: time {ours['seconds'] / theirs['seconds']:.2f}x scikit-learn's; "
                    f"objective per row {ours['objective'] - theirs['objective']:+.5f} against scikit-learn's."
                )
    shown = png.relative_to(out.parent) if png.is_relative_to(out.parent) else png
    lines += ["", f"![time and memory against rows]({shown})"]
    import jax

    lines += footer(load, jax.default_backend(), versions(["jax", "sklearn"]), END)
    write_section(out, "\n".join(lines) + "\n", START, END)


if __name__ == "__main__":
    main()
