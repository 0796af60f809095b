"""Does a Gaussian prior fix maximum likelihood's overfitting?  MLE vs MAP vs Bayes across training sizes.

For several families on real shipped data, fit a depth-0 GLM and a network with
one hidden layer by MLE, MAP and Laplace (for the network both the linearised
predictive, the default, and weight draws sampled through it), and NUTS too at
small n (up to 120 rows at depth 0, 60 for the network) unless --quick, on
training sets from a few dozen rows upward, and score every fit on one fixed
held-out set: log predictive density per observation (lpd), error (RMSE or
misclassification) and, for classifiers, expected calibration error.  Repeated
over random training subsets.  Where the MLE does not exist (separable classes)
the table says so instead of a number.

    python examples/map_vs_mle.py [--quick] [--out DIR] [--family F] [--reps R]

Writes ``DIR/map_vs_mle.md`` (tables) and ``DIR/map_vs_mle_<family>.png``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayes_rglm as br
from bayes_rglm import datasets
from bayes_rglm.experiment import held_out_metrics

# family -> (dataset, hidden activation, training sizes, held-out rows)
SETTINGS = {
    "bernoulli": ("breast_cancer", [30, 60, 120, 240, 400], 150),
    "poisson": ("randhie", [30, 100, 300, 1000, 3000], 2000),
    "gaussian": ("diabetes", [30, 60, 120, 240], 150),
    "categorical": ("wine", [30, 60, 120], 50),
}
QUICK_SIZES = {"bernoulli": [30, 120], "poisson": [30, 300], "gaussian": [30, 120], "categorical": [30, 100]}


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="two sizes, one repetition, no NUTS")
    parser.add_argument("--out", default="map_vs_mle_out", help="output folder")
    parser.add_argument(
        "--family", choices=list(SETTINGS), action="append", help="family to run (repeatable; default all)"
    )
    parser.add_argument("--reps", type=int, default=None, help="random training subsets per size")
    parser.add_argument("--hidden", type=int, default=8, help="width of the hidden layer")
    args = parser.parse_args(argv)
    if args.reps is not None and args.reps < 1:
        parser.error(f"--reps must be a positive integer, got {args.reps}")
    if args.hidden < 1:
        parser.error(f"--hidden must be a positive integer, got {args.hidden}")
    return args


def one_fit(model, method, X_tr, y_tr, X_te, y_te, seed, options):
    """Fit and score; a MLE that does not exist or a failed fit is reported, not raised."""
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = model.fit(X_tr, y_tr, method=method, seed=seed, progress=False, **options)
        except (FloatingPointError, ValueError) as err:
            return {"status": f"failed: {err}"[:80]}
    seconds = time.perf_counter() - started
    status = "ok"
    if method == "mle" and not fit.info.get("mle_exists", True):
        status = "MLE does not exist (separation)"
    elif any(issubclass(w.category, br.ConvergenceWarning) for w in caught):
        status = "not converged"
    metrics = held_out_metrics(fit, X_te, y_te)
    return {"status": status, "seconds": seconds, **metrics}


def run_family(family, args, rng):
    dataset, sizes, n_test = SETTINGS[family]
    sizes = QUICK_SIZES[family] if args.quick else sizes
    data = datasets.load(dataset)
    X, y = data.X.to_numpy(), data.y.to_numpy()
    order = rng.permutation(len(y))
    test, pool = order[:n_test], order[n_test:]
    reps = args.reps or (1 if args.quick else 3)
    depths = {"depth 0": (), f"hidden ({args.hidden},)": (args.hidden,)}
    rows = []
    for size in [s for s in sizes if s <= len(pool)]:
        for rep in range(reps):
            train = rng.choice(pool, size=size, replace=False)
            if family in ("bernoulli", "categorical") and len(np.unique(y[train])) < len(np.unique(y)):
                continue  # a class missing from a tiny subset
            mean, sd = X[train].mean(0), X[train].std(0) + 1e-12
            X_tr, X_te = (X[train] - mean) / sd, (X[test] - mean) / sd
            for depth_name, hidden in depths.items():
                model = br.RGLM(family=family, hidden=hidden, activation="tanh")
                methods = {"mle": {}, "map": {}, "laplace": {"num_samples": 300}}
                if hidden:  # the linearised predictive (the default for nets) against sampling the weights
                    methods["laplace (weights sampled)"] = {"num_samples": 300, "predictive": "sample"}
                if not args.quick and size <= (60 if hidden else 120):
                    methods["nuts"] = {"num_warmup": 300, "num_samples": 300, "num_chains": 2}
                for label, options in methods.items():
                    method = label.split(" ")[0]
                    if hidden:
                        options = {**options, "num_restarts": 2} if method != "nuts" else options
                    result = one_fit(model, method, X_tr, y[train], X_te, y[test], rep, options)
                    rows.append(
                        {
                            "family": family,
                            "dataset": dataset,
                            "model": depth_name,
                            "n_train": size,
                            "rep": rep,
                            "method": label,
                            **result,
                        }
                    )
    return pd.DataFrame(rows)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Medians per (model, size, method); a note counts fits whose MLE did not exist or that failed."""
    keys = ["model", "n_train", "method"]
    metrics = [c for c in ("test_lpd", "accuracy", "rmse", "ece", "seconds") if c in table.columns]
    summary = table.groupby(keys)[metrics].median().reset_index()
    notes = table[table["status"] != "ok"].groupby(keys)["status"].agg(lambda s: f"{len(s)}x {s.iloc[0]}")
    summary["notes"] = [notes.get(tuple(k), "") for k in summary[keys].itertuples(index=False)]
    return summary.sort_values(keys).reset_index(drop=True)


def plot(summary: pd.DataFrame, family: str, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    error = "accuracy" if "accuracy" in summary.columns else "rmse"
    models = list(dict.fromkeys(summary["model"]))
    fig, axes = plt.subplots(2, len(models), figsize=(5 * len(models), 7), squeeze=False)
    for j, model in enumerate(models):
        part = summary[summary["model"] == model]
        for method, rows in part.groupby("method"):
            rows = rows.dropna(subset=["test_lpd"])
            rows = rows[np.isfinite(rows["test_lpd"])]
            axes[0, j].plot(rows["n_train"], rows["test_lpd"], marker="o", label=method)
            axes[1, j].plot(rows["n_train"], rows[error], marker="o", label=method)
        axes[0, j].set_title(f"{family}: {model}")
        axes[0, j].set_ylabel("held-out log predictive density / obs")
        axes[1, j].set_ylabel(error)
        for ax in axes[:, j]:
            ax.set_xscale("log")
            ax.set_xlabel("training rows")
            ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def markdown(summary: pd.DataFrame) -> str:
    from bayes_rglm.cli import markdown_table

    return markdown_table(summary.astype(object).fillna(""))


def main(argv=None) -> int:
    args = parse(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    sections = [
        "# MAP vs MLE (vs Laplace/NUTS) against training size",
        "",
        "Medians over repetitions, on a fixed held-out set. test_lpd: held-out log predictive "
        "density per observation (higher is better).",
        "",
    ]
    for family in args.family or list(SETTINGS):
        table = run_family(family, args, rng)
        summary = summarise(table)
        table.to_csv(out / f"map_vs_mle_{family}.csv", index=False)
        plot(summary, family, out / f"map_vs_mle_{family}.png")
        sections += [
            f"## {family} ({SETTINGS[family][0]})",
            "",
            markdown(summary),
            f"![{family}](map_vs_mle_{family}.png)",
            "",
        ]
        print(f"{family}: {len(table)} fits", flush=True)
    (out / "map_vs_mle.md").write_text("\n".join(sections))
    print(f"results written to {out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
