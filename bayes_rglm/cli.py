"""The ``bayes-rglm`` command.

``bayes-rglm fit`` fits the default model (a one-hidden-layer Bayesian
logistic regression on scikit-learn's breast-cancer data, MAP) and writes
``summary.csv``, ``metrics.json`` and ``report.md`` into an output folder;
``bayes-rglm info`` prints versions and JAX devices.

Exit codes: 0 success, 2 usage error (one line, no traceback), 1 failure
while fitting.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


class UsageError(Exception):
    """A problem with the command line or a spec: exit code 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bayes-rglm", description="Bayesian recursive GLMs: fit ready models.")
    sub = parser.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit", help="fit the default model and write results into --out")
    fit.add_argument("--method", default="map", choices=["mle", "map"], help="estimation method")
    fit.add_argument("--out", default="bayes_rglm_out", help="output folder (replaced atomically)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--quiet", action="store_true", help="print only the output folder")
    sub.add_parser("info", help="versions and JAX devices")
    return parser


def _info() -> int:
    import arviz
    import jax
    import numpyro

    import bayes_rglm

    print(f"bayes_rglm {bayes_rglm.__version__}")
    for module in (jax, numpyro, arviz, np):
        print(f"{module.__name__} {module.__version__}")
    print("devices:", ", ".join(str(d) for d in jax.devices()))
    return 0


def _write_atomically(out: Path, write) -> None:
    """Write into a temporary folder beside ``out``, then swap it in; a failure leaves ``out`` untouched."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write(tmp)
        if out.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, backup / out.name)
            os.replace(tmp, out)
            shutil.rmtree(backup)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def _fit_default(args) -> int:
    from sklearn.model_selection import train_test_split

    import bayes_rglm as br
    from bayes_rglm import datasets

    data = datasets.load("breast_cancer")
    X_train, X_test, y_train, y_test = train_test_split(data.X, data.y, test_size=0.25, random_state=args.seed,
                                                        stratify=data.y)
    X_test = datasets.standardise(X_test, X_train)
    X_train = datasets.standardise(X_train)
    model = br.RGLM(family="bernoulli", hidden=(8,), activation="tanh")
    started = time.perf_counter()
    fit = model.fit(X_train, y_train, method=args.method, seed=args.seed)
    elapsed = time.perf_counter() - started
    proba = fit.predict_proba(X_test)[:, 1]
    metrics = {
        "dataset": "breast_cancer",
        "model": "bernoulli, logit link, hidden=(8,), tanh",
        "method": args.method,
        "fit_seconds": round(elapsed, 3),
        "test_accuracy": float(np.mean((proba > 0.5) == (y_test.to_numpy() == 1))),
        "test_log_predictive_density": float(np.mean(fit.log_likelihood(X_test, y_test))),
        "converged": fit.info["converged"],
    }

    def write(folder: Path) -> None:
        fit.summary().to_csv(folder / "summary.csv")
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
        report = ["# bayes-rglm fit: default model", "", f"- data: {data.description}", ""]
        report += [f"- {k}: {v}" for k, v in metrics.items()]
        report += ["", "Files: [summary.csv](summary.csv), [metrics.json](metrics.json)"]
        (folder / "report.md").write_text("\n".join(report) + "\n")

    out = Path(args.out)
    _write_atomically(out, write)
    if not args.quiet:
        print(f"{metrics['model']} on {metrics['dataset']} by {args.method}: test accuracy "
              f"{metrics['test_accuracy']:.3f}, log predictive density {metrics['test_log_predictive_density']:.3f}")
    print(f"results written to {out.resolve()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        return int(stop.code or 0)
    try:
        if args.command == "info":
            return _info()
        return _fit_default(args)
    except UsageError as err:
        print(f"bayes-rglm: error: {err}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, FloatingPointError, OSError) as err:
        print(f"bayes-rglm: fitting failed: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
