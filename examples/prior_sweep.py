"""The regularisation path: held-out log predictive density of MAP against the prior scale.

For a one-hidden-layer network (or ``--depth 0``) on one dataset, fit MAP for
a grid of weight prior scales and plot the held-out log predictive density
per observation.  Marks the scale chosen by 5-fold cross-validation on the
training rows, by the Laplace evidence (marginal likelihood) and by PSIS-LOO
of the Laplace posterior: three ways to pick a prior without the test set.

    python examples/prior_sweep.py [--quick] [--out DIR] [--dataset NAME] [--depth 0|1]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayes_rglm as br
from bayes_rglm import datasets
from bayes_rglm.experiment import held_out_metrics

FAMILY = {"breast_cancer": "bernoulli", "diabetes": "gaussian", "wine": "categorical"}


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="prior_sweep_out")
    parser.add_argument("--dataset", default="breast_cancer", choices=sorted(FAMILY))
    parser.add_argument("--depth", type=int, default=1, choices=[0, 1])
    parser.add_argument("--n-train", type=int, default=120)
    args = parser.parse_args(argv)
    if args.n_train < 20:
        parser.error(f"--n-train must be at least 20, got {args.n_train}")
    return args


def main(argv=None) -> int:
    import arviz as az
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args = parse(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = datasets.load(args.dataset)
    X, y = data.X.to_numpy(), data.y.to_numpy()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    n_train = min(args.n_train, len(y) // 2)
    train, test = order[:n_train], order[n_train:]
    mean, sd = X[train].mean(0), X[train].std(0) + 1e-12
    X_tr, X_te = (X[train] - mean) / sd, (X[test] - mean) / sd
    scales = np.geomspace(0.03, 10.0, 5 if args.quick else 12)
    hidden = (8,) if args.depth else ()
    folds = np.array_split(rng.permutation(n_train), 3 if args.quick else 5)
    rows = []
    for scale in scales:
        model = br.RGLM(
            FAMILY[args.dataset],
            hidden=hidden,
            activation="tanh",
            prior=br.GaussianPrior(scale=float(scale), bias_scale=5.0),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = model.fit(X_tr, y[train], method="map", seed=0, num_restarts=1 if args.quick else 3)
            cv = []
            for k, fold in enumerate(folds):
                inner = np.setdiff1d(np.arange(n_train), fold)
                part = model.fit(X_tr[inner], y[train][inner], method="map", seed=k)
                cv.append(held_out_metrics(part, X_tr[fold], y[train][fold])["test_lpd"])
            laplace = model.fit(X_tr, y[train], method="laplace", seed=0, num_samples=300 if args.quick else 1000)
            loo = az.loo(laplace.to_arviz()).elpd_loo / n_train
        rows.append(
            {
                "prior_scale": scale,
                "test_lpd": held_out_metrics(fit, X_te, y[test])["test_lpd"],
                "cv_lpd": float(np.mean(cv)),
                "laplace_log_evidence": laplace.info["log_evidence"],
                "psis_loo_lpd": float(loo),
            }
        )
        print(f"scale {scale:.3g}: held-out lpd {rows[-1]['test_lpd']:.4f}", flush=True)
    table = pd.DataFrame(rows)
    choice = {
        "held-out (oracle)": table.loc[table["test_lpd"].idxmax(), "prior_scale"],
        "5-fold CV": table.loc[table["cv_lpd"].idxmax(), "prior_scale"],
        "Laplace evidence": table.loc[table["laplace_log_evidence"].fillna(-np.inf).idxmax(), "prior_scale"],
        "PSIS-LOO": table.loc[table["psis_loo_lpd"].idxmax(), "prior_scale"],
    }
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(table["prior_scale"], table["test_lpd"], marker="o", color="k", label="held-out lpd (MAP)")
    ax.plot(table["prior_scale"], table["cv_lpd"], marker=".", color="C0", alpha=0.6, label="CV lpd")
    for (name, scale), colour in zip(list(choice.items())[1:], ["C0", "C1", "C2"], strict=True):
        ax.axvline(scale, color=colour, ls="--", label=f"{name}: {scale:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("weight prior scale s (w ~ N(0, s^2))")
    ax.set_ylabel("log predictive density / obs")
    ax.set_title(f"{args.dataset}, depth {args.depth}, n_train={n_train}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "prior_sweep.png", dpi=100)
    plt.close(fig)
    from bayes_rglm.cli import markdown_table

    lines = ["# Prior-scale sweep (MAP)", "", markdown_table(table), "", "Chosen prior scale:", ""]
    lines += [f"- {name}: {scale:.3g}" for name, scale in choice.items()]
    (out / "prior_sweep.md").write_text("\n".join(lines) + "\n![sweep](prior_sweep.png)\n")
    print("\n".join(lines[-len(choice) :]))
    print(f"results written to {out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
