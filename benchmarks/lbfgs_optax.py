"""bayes_rglm's own L-BFGS against ``optax.lbfgs`` on the MAP objective of the 20-50-1 tanh net.

Usage::

    python benchmarks/lbfgs_optax.py             # 50,000 rows, 100/200/400 iterations
    python benchmarks/lbfgs_optax.py --quick     # 5,000 rows, 50/100 iterations (smoke test)
    python benchmarks/lbfgs_optax.py --out PATH  # where the markdown section goes (default BENCHMARKS.md)

Both minimise the same jitted objective (:func:`bayes_rglm.inference.objective.negative_log_density`
on the standardised problem, the data of ``benchmarks/mlp_map.py``) from the same start for a fixed
number of iterations inside one ``jax.jit`` (ours: ``lax.while_loop``; optax: its documented
``update(..., value=, grad=, value_fn=)`` loop in a ``lax.scan`` with
``value_and_grad_from_state``).  Reported: the first call (compile included), the median of three
warm calls, and the objective per row reached (mean log loss + ||W||^2 / (2n)).  The issue asks to
keep our own L-BFGS only where a measurement beats optax's; this is that measurement.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import statistics
import time
from pathlib import Path

import numpy as np
from _common import footer, load_average, versions, write_section
from mlp_map import BIAS_SCALE, UNITS, make_data, objective_per_row

START, END = "<!-- lbfgs_optax:start -->", "<!-- lbfgs_optax:end -->"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "BENCHMARKS.md"))
    args = parser.parse_args()

    import jax
    import jax.numpy as jnp
    import optax

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_enable_compilation_cache", False)
    import bayes_rglm as br
    from bayes_rglm.inference import objective as obj
    from bayes_rglm.inference.optimize import lbfgs
    from bayes_rglm.inference.problem import to_original
    from bayes_rglm.inference.target import build as build_target

    n, budgets = (5_000, (50, 100)) if args.quick else (50_000, (100, 200, 400))
    load = load_average()
    started_at = _dt.datetime.now(_dt.UTC)
    X, y = make_data(n)
    model = br.RGLM(
        "bernoulli", hidden=(UNITS,), activation="tanh", prior=br.GaussianPrior(scale=1.0, bias_scale=BIAS_SCALE)
    )
    data = model.prepare(X, y)
    layout, problem, _ = build_target(model, data, scales=False)
    f = obj.negative_log_density(layout, True, unconstrained=True)
    theta0 = jnp.asarray(layout.ravel(layout.initial(data, problem, np.random.default_rng(0))))

    def per_row(x):
        p = {k: np.asarray(v) for k, v in to_original(layout.unravel(x), problem.shift, problem.scale).items()}
        return objective_per_row(X, y, p["w0"], p["b0"], p["w1"], p["b1"])

    solver = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(f)

    def ours(iterations):
        return jax.jit(lambda t0, pr: lbfgs(lambda t: f(t, pr), t0, gtol=1e-12, max_iter=iterations).x)

    def theirs(iterations):
        def run(t0, pr):
            def body(carry, _):
                x, state = carry
                value, grad = value_and_grad(x, pr, state=state)
                updates, state = solver.update(grad, state, x, value=value, grad=grad, value_fn=lambda t: f(t, pr))
                return (optax.apply_updates(x, updates), state), None

            (x, _), _ = jax.lax.scan(body, (t0, solver.init(t0)), None, length=iterations)
            return x

        return jax.jit(run)

    rows = []
    for iterations in budgets:
        for name, build in (("bayes_rglm lbfgs", ours), ("optax.lbfgs", theirs)):
            run = build(iterations)
            started = time.perf_counter()
            x = run(theta0, problem).block_until_ready()
            first = time.perf_counter() - started
            warm = []
            for _ in range(3):
                started = time.perf_counter()
                x = run(theta0, problem).block_until_ready()
                warm.append(time.perf_counter() - started)
            rows.append((name, iterations, first, statistics.median(warm), per_row(x)))
            print(rows[-1], flush=True)
    lines = [
        START,
        "## L-BFGS: our own against `optax.lbfgs` (`benchmarks/lbfgs_optax.py`)",
        "",
        f"Run {started_at:%Y-%m-%d %H:%M} UTC. MAP objective of the 20-50-1 tanh Bernoulli net on {n:,} rows, "
        "the same start, a fixed number of iterations in one jitted call each.",
        "",
        "| optimiser | iterations | first call s (compile included) | warm s (median of 3) | objective / row |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [f"| {a} | {b} | {c:.2f} | {d:.2f} | {e:.5f} |" for a, b, c, d, e in rows]
    lines += footer(load, jax.default_backend(), versions(["jax", "optax"]), END)
    write_section(Path(args.out), "\n".join(lines) + "\n", START, END)


if __name__ == "__main__":
    main()
