"""The GPU run: MAP, SVI, depth-0 MLE and NUTS with vectorised chains on JAX's default device.

Usage::

    bash benchmarks/gpu.sh            # on a machine with a GPU (jax[cuda12]); under ten minutes
    python benchmarks/gpu.py --quick  # small sizes, any device (smoke test)

Each case fits once (compilation included: *first call*), then again with new run-time options
(*refit*, which compiles nothing); SVI also reports its steady rate (``fit.info``).  MAP and SVI
run in float64 (the default) and in float32 (``dtype="float32"``), with the float32 objective's
relative difference from the float64 one; the MLE and NUTS run in float64.  The section written to
BENCHMARKS.md names the device (``jax.devices()[0].device_kind``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
import time
from pathlib import Path

import numpy as np
from _common import footer, load_average, timed, versions, write_section

START, END = "<!-- gpu:start -->", "<!-- gpu:end -->"
REPO = Path(__file__).resolve().parents[1]


def _net(n, p, family, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    eta = np.tanh(X @ rng.normal(0, 1 / np.sqrt(p), (p, 50))) @ rng.normal(0, 1 / np.sqrt(50), 50)
    if family == "bernoulli":
        return X, (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    return X, eta + 0.3 * rng.standard_normal(n)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=str(REPO / "BENCHMARKS.md"))
    args = parser.parse_args()
    import jax

    import bayes_rglm as br

    load, started = load_average(), time.time()
    q = args.quick
    rows = []
    prior = br.GaussianPrior(scale=1.0)

    X, y = _net(20_000 if q else 200_000, 20, "bernoulli")
    mlp = br.RGLM("bernoulli", hidden=(50,), activation="tanh", prior=prior)
    objective = {}
    for dtype in ("float64", "float32"):
        first, _ = timed(lambda: mlp.fit(X, y, method="map", dtype=dtype))  # noqa: B023 - called at once
        again, fit = timed(lambda: mlp.fit(X, y, method="map", seed=1, dtype=dtype))  # noqa: B023
        objective[dtype] = fit.info["objective"]
        note = f"objective {fit.info['objective']:.6g}"
        if dtype == "float32":
            note += f" ({abs(objective['float32'] / objective['float64'] - 1):.1e} from float64)"
        rows.append(("MAP 20-50-1 tanh Bernoulli", dtype, f"{len(y):,} rows", first, again, note))

    X, y = _net(100_000 if q else 1_000_000, 20, "gaussian")
    net = br.RGLM("gaussian", hidden=(50,), activation="tanh", prior=prior)
    kw = {"method": "svi", "batch_size": 1024, "num_samples": 10, "progress": False}
    for dtype in ("float64", "float32"):
        first, _ = timed(lambda: net.fit(X, y, num_steps=1000, dtype=dtype, **kw))  # noqa: B023
        again, fit = timed(lambda: net.fit(X, y, num_steps=2000 if q else 5000, seed=1, dtype=dtype, **kw))  # noqa: B023
        rows.append(
            (
                "SVI 20-50-1 tanh Gaussian, batch 1,024",
                dtype,
                f"{len(y):,} rows",
                first,
                again,
                f"{fit.info['steps_per_second']:,.0f} steps/s",
            )
        )

    rng = np.random.default_rng(2)
    X = rng.standard_normal((100_000 if q else 1_000_000, 50))
    y = rng.poisson(np.exp(0.5 + X @ rng.normal(0, 0.05, 50))).astype(float)
    glm = br.RGLM("poisson")
    first, _ = timed(lambda: glm.fit(X, y, method="mle"))
    again, fit = timed(lambda: glm.fit(X, y, method="mle", seed=1))
    rows.append(
        (
            "MLE Poisson GLM, 50 columns",
            "float64",
            f"{len(y):,} rows",
            first,
            again,
            f"{fit.info['iterations']} Newton steps",
        )
    )

    rng = np.random.default_rng(3)
    x = rng.uniform(-3, 3, (100, 1))
    y = np.sin(2 * x[:, 0]) + 0.3 * x[:, 0] + 0.1 * rng.standard_normal(100)
    bnn = br.RGLM("gaussian", hidden=(10,), activation="tanh", prior=prior)
    kw = {"method": "nuts", "num_chains": 4, "chain_method": "vectorized", "progress": False}
    if q:
        kw.update(num_warmup=200, num_samples=200)
    first, _ = timed(lambda: bnn.fit(x, y, **kw))
    again, fit = timed(lambda: bnn.fit(x, y, seed=1, **kw))
    rows.append(
        (
            "NUTS 1-10-1 tanh BNN, 4 vectorised chains x (1,000 + 1,000)",
            "float64",
            "100 rows",
            first,
            again,
            f"{fit.info.get('divergences', 0)} divergences",
        )
    )

    device = jax.devices()[0]
    lines = [
        START,
        "## GPU run (`benchmarks/gpu.sh`)",
        "",
        f"Run {_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M} UTC on **{device.device_kind}** ({device.platform}), "
        f"{time.time() - started:.0f} s in all. "
        + next(p for p in __doc__.split("\n\n") if p.startswith("Each case")).replace("\n", " "),
        "",
        "| fit | dtype | size | first call s | refit s | note |",
        "|---|---|---:|---:|---:|---|",
    ]
    lines += [f"| {a} | {t} | {b} | {c:.2f} | {d:.2f} | {e} |" for a, t, b, c, d, e in rows]
    lines += footer(load, jax.default_backend(), versions(["jax", "jaxlib"]), END)
    if not q:
        write_section(Path(args.out), "\n".join(lines) + "\n", START, END)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
