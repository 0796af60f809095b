"""float64 (the default) against ``dtype="float32"``: the accuracy each costs and the speed each gives.

Usage::

    python benchmarks/precision.py           # writes its section of BENCHMARKS.md (about 2 minutes on 2 cores)
    python benchmarks/precision.py --quick   # small sizes, prints only (or writes --out)

Cases, each fitted in float64 then float32 in this one process, once to compile (*first call*) and once
more with another seed (*refit*, which compiles nothing):

- a logistic MLE on 100,000 x 20: the float32 coefficients' distance from the float64 ones in float64
  standard errors, and the relative gaps of the log-likelihood and of the standard errors;
- minibatch SVI of a 20-50-1 tanh Gaussian net on 100,000 rows (batch 1,024, 3,000 steps): steady
  steps per second (``fit.info``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from _common import footer, load_average, timed, versions, write_section

START, END = "<!-- precision:start -->", "<!-- precision:end -->"
REPO = Path(__file__).resolve().parents[1]
DTYPES = ("float64", "float32")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", help="default: BENCHMARKS.md (with --quick: print only, unless --out is given)")
    args = parser.parse_args()
    import jax

    import bayes_rglm as br

    warnings.simplefilter("ignore")
    load, started = load_average(), time.time()
    n = 10_000 if args.quick else 100_000
    rows = []

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 20))
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.2 + X @ rng.normal(0, 0.3, 20))))).astype(float)
    glm, fits = br.RGLM("bernoulli"), {}
    for dtype in DTYPES:
        first, _ = timed(lambda: glm.fit(X, y, method="mle", dtype=dtype))  # noqa: B023 - called at once
        again, fits[dtype] = timed(lambda: glm.fit(X, y, method="mle", seed=1, dtype=dtype))  # noqa: B023
        rows.append((f"logistic MLE, {n:,} x 20", dtype, first, again))
    a, b = fits["float64"], fits["float32"]
    coef = float(np.max(np.abs(a.params["w0"] - b.params["w0"]) / a.bse["w0"]))
    loglik = abs(b.stats["loglik"] / a.stats["loglik"] - 1)
    se = float(np.max(np.abs(b.bse["w0"] / a.bse["w0"] - 1)))
    rows[-1] += (f"coefficients within {coef:.1e} SE; log-likelihood {loglik:.1e}, SEs {se:.1e} relative",)
    rows[-2] += ("reference",)

    rng = np.random.default_rng(1)
    X = rng.standard_normal((n, 20))
    eta = np.tanh(X @ rng.normal(0, 1 / np.sqrt(20), (20, 50))) @ rng.normal(0, 1 / np.sqrt(50), 50)
    y = eta + 0.3 * rng.standard_normal(n)
    net = br.RGLM("gaussian", hidden=(50,), activation="tanh", prior=br.GaussianPrior(scale=1.0))
    kw = {"method": "svi", "batch_size": 1024, "num_samples": 10, "progress": False}
    rates = {}
    for dtype in DTYPES:
        first, _ = timed(lambda: net.fit(X, y, num_steps=1000, dtype=dtype, **kw))  # noqa: B023
        again, fit = timed(lambda: net.fit(X, y, num_steps=3000, seed=1, dtype=dtype, **kw))  # noqa: B023
        rates[dtype] = fit.info["steps_per_second"]
        note = f"{rates[dtype]:,.0f} steps/s"
        if dtype == "float32":
            note += f" ({rates['float32'] / rates['float64']:.2f}x float64)"
        rows.append((f"SVI 20-50-1 tanh net, {n:,} rows, batch 1,024", dtype, first, again, note))

    lines = [
        START,
        "## Precision: float64 against float32 (`benchmarks/precision.py`)",
        "",
        f"Run {_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M} UTC, {time.time() - started:.0f} s in all. "
        + next(p for p in __doc__.split("\n\n") if p.startswith("Cases")).replace("\n", " "),
        "",
        "| fit | dtype | first call s | refit s | accuracy or rate |",
        "|---|---|---:|---:|---|",
    ]
    lines += [f"| {a} | {t} | {f:.2f} | {r:.2f} | {note} |" for a, t, f, r, note in rows]
    lines += footer(load, jax.default_backend(), versions(["jax", "jaxlib", "numpyro"]), END)
    out = args.out or (None if args.quick else REPO / "BENCHMARKS.md")
    if out is not None:
        write_section(Path(out), "\n".join(lines) + "\n", START, END)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
