"""Start-up: ``import bayes_rglm`` and the first MLE of a small GLM, each in a fresh process, beside bare JAX.

Usage::

    python benchmarks/startup.py             # 7 fresh processes per side
    python benchmarks/startup.py --quick     # 2 per side (smoke test)
    python benchmarks/startup.py --out PATH  # where the markdown section goes (default BENCHMARKS.md)

*bayes_rglm*: in a fresh Python process with JAX's persistent compilation cache off, the wall time of
``import bayes_rglm``, then of ``RGLM("bernoulli").fit(X, y)`` on spector's 32 rows (the whole call:
checks, tracing, compilation, the fit, the result), then of a second fit.  *bare JAX*: in its own fresh
process, ``import jax`` (float64 on), then the first call of a hand-written jitted Newton loop for the
same logistic regression (``lax.while_loop``, autodiff gradient and Hessian, to a gradient norm of 1e-10),
the floor that any JAX library pays.  Medians over the processes; the processes run one after another.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import footer, load_average, versions, write_section

START, END = "<!-- startup:start -->", "<!-- startup:end -->"
RESULT_PREFIX = "STARTUP_RESULT "


def spector():
    """Spector and Mazzeo's 32 rows (GPA, TUCE, PSI -> GRADE), from statsmodels' copy, as numpy arrays."""
    import statsmodels.api as sm

    data = sm.datasets.spector.load_pandas().data
    return data[["GPA", "TUCE", "PSI"]].to_numpy(float), data["GRADE"].to_numpy(float)


def worker_library(X, y) -> dict:
    started = time.perf_counter()
    import jax

    jax.config.update("jax_enable_compilation_cache", False)
    import bayes_rglm as br

    imported = time.perf_counter()
    fit = br.RGLM("bernoulli").fit(X, y)
    first = time.perf_counter()
    br.RGLM("bernoulli").fit(X, y[::-1].copy())
    second = time.perf_counter()
    return {
        "import": imported - started,
        "first": first - imported,
        "second": second - first,
        "b0": float(fit.params["b0"][0]),
    }


def worker_jax(X, y) -> dict:
    started = time.perf_counter()
    import jax

    jax.config.update("jax_enable_compilation_cache", False)
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    imported = time.perf_counter()

    def nll(beta, A, t):
        eta = A @ beta
        return jnp.sum(jax.nn.softplus(eta) - t * eta)

    @jax.jit
    def newton(A, t):
        def cond(state):
            beta, it = state
            return (jnp.linalg.norm(jax.grad(nll)(beta, A, t)) > 1e-10) & (it < 50)

        def body(state):
            beta, it = state
            step = jnp.linalg.solve(jax.hessian(nll)(beta, A, t), jax.grad(nll)(beta, A, t))
            return beta - step, it + 1

        return jax.lax.while_loop(cond, body, (jnp.zeros(A.shape[1]), 0))[0]

    import numpy as np

    A = jnp.asarray(np.column_stack([X, np.ones(len(y))]))
    beta = newton(A, jnp.asarray(y)).block_until_ready()
    first = time.perf_counter()
    newton(A, jnp.asarray(y[::-1].copy())).block_until_ready()
    second = time.perf_counter()
    return {"import": imported - started, "first": first - imported, "second": second - first, "b0": float(beta[-1])}


def run_worker(side: str, data_path: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", side, "--data", data_path]
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as a user's installed package: bytecode cached
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = next((x for x in proc.stdout.splitlines() if x.startswith(RESULT_PREFIX)), None)
    if line is None:
        raise RuntimeError(f"worker {side} failed: {(proc.stderr or proc.stdout)[-500:]}")
    return json.loads(line[len(RESULT_PREFIX) :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "BENCHMARKS.md"))
    parser.add_argument("--worker")
    parser.add_argument("--data")
    args = parser.parse_args()
    if args.worker:
        import numpy as np  # only numpy before the timed imports: no pandas or scipy preloaded

        with np.load(args.data) as saved:
            X, y = saved["X"], saved["y"]
        result = (worker_library if args.worker == "bayes_rglm" else worker_jax)(X, y)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return
    processes = 2 if args.quick else 7
    load = load_average()
    started_at = _dt.datetime.now(_dt.UTC)
    runs = {"bayes_rglm": [], "bare JAX": []}
    import tempfile

    import numpy as np

    with tempfile.TemporaryDirectory() as folder:
        data_path = str(Path(folder) / "spector.npz")
        X, y = spector()
        np.savez(data_path, X=X, y=y)
        run_worker("bayes_rglm", data_path)  # once untimed: writes the bytecode caches an installation has
        for _ in range(processes):  # interleaved, so that drifts in the machine's speed hit both sides alike
            for side in runs:
                runs[side].append(run_worker("bayes_rglm" if side == "bayes_rglm" else "jax", data_path))
    print(json.dumps(runs), flush=True)
    agree = abs(runs["bayes_rglm"][0]["b0"] - runs["bare JAX"][0]["b0"])

    def med(side, key):
        return statistics.median(r[key] for r in runs[side])

    def spread(side, key):
        values = [r[key] for r in runs[side]]
        return f"{min(values):.2f}-{max(values):.2f}"

    lines = [
        START,
        "## Start-up: import and the first fit (`benchmarks/startup.py`)",
        "",
        f"Run {started_at:%Y-%m-%d %H:%M} UTC. {processes} fresh processes per side, interleaved, persistent "
        "compilation cache off; the first fit is logistic regression on spector's 32 rows with an intercept "
        "(the whole call, compilation included). Bare JAX is a hand-written jitted Newton loop for the same "
        f"model; the two intercepts agree to {agree:.1e}. Median (min-max) seconds.",
        "",
        "| side | import (target <= 2.0) | first fit (target <= 1.5) | second fit | import + first fit |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for side in runs:
        total = statistics.median(r["import"] + r["first"] for r in runs[side])
        lines.append(
            f"| {side} | {med(side, 'import'):.2f} ({spread(side, 'import')}) | {med(side, 'first'):.2f} "
            f"({spread(side, 'first')}) | {med(side, 'second'):.3f} | {total:.2f} |"
        )
    ratio = statistics.median(r["import"] + r["first"] for r in runs["bayes_rglm"]) / statistics.median(
        r["import"] + r["first"] for r in runs["bare JAX"]
    )
    lines += ["", f"Import + first fit: bayes_rglm / bare JAX = {ratio:.2f}."]
    import jax

    lines += footer(load, jax.default_backend(), versions(["jax", "numpyro"]), END)
    write_section(Path(args.out), "\n".join(lines) + "\n", START, END)


if __name__ == "__main__":
    main()
