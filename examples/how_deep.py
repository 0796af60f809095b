"""How deep should the recursive GLM be?  Depth 0, 1 and 2 compared by PSIS-LOO (``az.compare``).

Fits the same family on one dataset with ``hidden=()``, ``(8,)`` and ``(8, 8)``
by a Bayesian method (Laplace by default; ``--method nuts`` for the real
posterior), ranks them by expected log predictive density estimated with
Pareto-smoothed importance-sampling leave-one-out cross-validation, and says
which depth the data support: the shallowest model whose elpd is within two
standard errors of the best.

    python examples/how_deep.py [--quick] [--out DIR] [--dataset NAME] [--method laplace|nuts|svi]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

import bayes_rglm as br
from bayes_rglm import datasets

FAMILY = {
    "breast_cancer": "bernoulli",
    "diabetes": "gaussian",
    "iris": "categorical",
    "wine": "categorical",
    "spector": "bernoulli",
    "cpunish": "poisson",
}


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows and draws")
    parser.add_argument("--out", default="how_deep_out")
    parser.add_argument("--dataset", default="diabetes", choices=sorted(FAMILY))
    parser.add_argument("--method", default="laplace", choices=["laplace", "nuts", "svi"])
    parser.add_argument("--width", type=int, default=8)
    args = parser.parse_args(argv)
    if args.width < 1:
        parser.error(f"--width must be a positive integer, got {args.width}")
    return args


def main(argv=None) -> int:
    import arviz as az

    args = parse(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = datasets.load(args.dataset)
    X, y = datasets.standardise(data.X), data.y.to_numpy()
    if args.quick:
        keep = np.random.default_rng(0).choice(len(y), size=min(len(y), 150), replace=False)
        X, y = X.iloc[keep], y[keep]
    options = {
        "laplace": {"num_samples": 300 if args.quick else 2000},
        "nuts": {"num_warmup": 100, "num_samples": 100, "num_chains": 2}
        if args.quick
        else {"num_warmup": 1000, "num_samples": 1000},
        "svi": {"num_steps": 500 if args.quick else 5000, "num_samples": 300 if args.quick else 2000},
    }
    fits = {}
    for depth, hidden in enumerate([(), (args.width,), (args.width, args.width)]):
        model = br.RGLM(FAMILY[args.dataset], hidden=hidden, activation="tanh")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits[f"depth {depth}"] = model.fit(X, y, method=args.method, seed=0, progress=False, **options[args.method])
        print(f"depth {depth}: fitted by {args.method}", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PSIS warns about high Pareto k; the table shows it
        table = az.compare({name: fit.to_arviz() for name, fit in fits.items()}, ic="loo")
    best = table.index[0]
    supported = min(
        (name for name in table.index if table.loc[name, "elpd_diff"] <= 2 * max(table.loc[name, "dse"], 1e-12)),
        key=lambda name: int(name.split()[1]),
    )
    verdict = (
        f"The data support **{supported}**: it is the shallowest model within two standard errors of "
        f"the best elpd_loo ({best})."
    )
    evidence = {name: fit.info.get("log_evidence") for name, fit in fits.items()}
    lines = [
        f"# How deep? {args.dataset} ({FAMILY[args.dataset]}), {args.method}",
        "",
        table.round(3).to_string(),
        "",
        verdict,
    ]
    if args.method == "laplace":
        lines += [
            "",
            "Laplace log evidence: "
            + ", ".join(f"{k}: {v:.2f}" if v is not None else f"{k}: n/a" for k, v in evidence.items()),
        ]
    (out / "how_deep.md").write_text("\n".join(lines) + "\n")
    print(table.round(3).to_string())
    print(verdict)
    print(f"results written to {out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
