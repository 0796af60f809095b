"""PNG plots a user wants after a fit: traces/ranks, ELBO, posterior predictive check, coefficients,
calibration.  Each function writes one file and returns its path (or None when it does not apply).

Importing it leaves matplotlib's backend as the user has it (figures are saved and closed, never shown);
the ``bayes-rglm`` command selects the non-interactive Agg backend itself.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .diagnostics import function_draws, one_chain_is_expected
from .precision import scoped
from .predictive import evaluate


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@scoped
def elbo_curve(fit, path: Path) -> Path | None:
    """The SVI objective against the step (running mean over 1% of the steps)."""
    if "elbo" not in fit.info:
        return None
    elbo = np.asarray(fit.info["elbo"], dtype=float)
    window = max(1, len(elbo) // 100)
    smooth = np.convolve(elbo, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(elbo, color="0.8", lw=0.5, label="per step")
    ax.plot(np.arange(window - 1, len(elbo)), smooth, color="C0", label=f"running mean ({window})")
    ax.set_xlabel("step")
    ax.set_ylabel("ELBO")
    lo, hi = np.nanpercentile(elbo[len(elbo) // 10 :], [1, 100]) if len(elbo) > 10 else (None, None)
    if lo is not None and np.isfinite(lo) and hi > lo:
        ax.set_ylim(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo))
    ax.legend(loc="lower right")
    ax.set_title("SVI: evidence lower bound")
    return _save(fig, path)


@scoped
def trace_or_rank(fit, idata, path: Path) -> Path | None:
    """Trace plots of the parameters at depth 0; rank plots of E[y|x] at probe rows with hidden layers."""
    if fit.method != "nuts":
        return None
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fit.model.depth == 0:
            names = [n for n in ("w0", "b0", "sigma", "concentration", "cutpoints") if n in fit.samples]
            axes = az.plot_trace(idata, var_names=names, compact=True, figsize=(9, 2.2 * len(names)))
        else:
            draws = function_draws(fit)
            name = next(iter(draws.data_vars))
            subset = draws.isel(probe=slice(0, 4))
            axes = az.plot_rank(subset, var_names=[name], figsize=(9, 5))
    fig = np.ravel(axes)[0].figure
    return _save(fig, path)


@scoped
def predictive_check(fit, path: Path, max_rows: int = 2000, max_draws: int = 100, seed: int = 0) -> Path | None:
    """Observed y against posterior predictive draws (ArviZ's PPC) on at most ``max_rows`` training rows
    and ``max_draws`` posterior draws (or plug-in replicates for mle/map), so it stays quick on big data."""
    if fit.data is None and fit.samples is not None:
        return None
    import arviz as az
    import jax

    data = fit.data
    if data is None:
        return None
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(data.y), size=min(max_rows, len(data.y)), replace=False))
    draws = fit._draws()
    n_draws = next(iter(draws.values())).shape[0]
    keep = (
        rng.choice(n_draws, size=min(max_draws, n_draws), replace=False)
        if n_draws > 1
        else np.zeros(max_draws, dtype=int)
    )
    draws = {k: v[keep] for k, v in draws.items()}
    y_rep = evaluate(
        fit.model,
        "sample",
        draws,
        data.X[rows],
        None,
        data.offset[rows],
        data.trials[rows],
        key=jax.random.PRNGKey(seed),
        weights=None if data.weights is None else data.weights[rows],
        anchor=fit.anchor,
    )
    if fit.model.family.has_classes:
        return _class_frequencies(np.asarray(data.y[rows]), np.asarray(y_rep), fit.data_summary.n_classes, path)
    with one_chain_is_expected():  # the replicates stacked as one chain
        idata = az.from_dict(posterior_predictive={"y": y_rep[None]}, observed_data={"y": data.y[rows]})
    discrete = fit.model.family.discrete
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ax = az.plot_ppc(
            idata, num_pp_samples=min(50, len(keep)), kind="cumulative" if discrete else "kde", figsize=(6, 4)
        )
    fig = np.ravel(ax)[0].figure
    np.ravel(ax)[0].set_title(f"posterior predictive check ({len(rows)} training rows)")
    return _save(fig, path)


def _class_frequencies(y: np.ndarray, y_rep: np.ndarray, n_classes: int, path: Path) -> Path:
    """The posterior predictive check of a class outcome: the observed share of each class (bars) against the
    replicated data's shares (median and 90% interval over replicates), not a density of 0/1 values."""
    classes = np.arange(n_classes)
    observed = np.array([np.mean(y == k) for k in classes])
    replicated = np.stack([np.mean(y_rep == k, axis=1) for k in classes], axis=1)  # (replicates, classes)
    median = np.median(replicated, axis=0)
    low, high = np.quantile(replicated, [0.05, 0.95], axis=0)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(classes, observed, width=0.6, color="C0", alpha=0.6, label="observed")
    ax.errorbar(
        classes,
        median,
        yerr=[median - low, high - median],
        fmt="o",
        color="C1",
        capsize=4,
        label="replicated: median, 90% interval",
    )
    ax.set_xticks(classes)
    ax.set_xlabel("class")
    ax.set_ylabel("share of rows")
    ax.set_title(f"posterior predictive check: class shares ({len(y)} training rows)")
    ax.legend()
    return _save(fig, path)


@scoped
def coefficients(fit, path: Path) -> Path | None:
    """Forest plot of depth-0 coefficients: 95% intervals (Wald for mle/map, posterior for the rest)."""
    if fit.model.depth != 0:
        return None
    labels, centre, lo, hi = [], [], [], []
    names = fit.parameter_names
    if fit.samples is None:
        if fit.bse is None:
            return None
        table = fit.summary()
        centre, lo, hi = table["estimate"], table.iloc[:, 4], table.iloc[:, 5]
        labels = list(table.index)
    else:
        flat = np.concatenate(
            [
                np.asarray(fit.samples[k]).reshape(-1, int(np.prod(np.shape(fit.params[k]) or (1,))))
                for k in sorted(fit.params)
            ],
            axis=1,
        )
        centre, lo, hi = flat.mean(0), np.percentile(flat, 2.5, axis=0), np.percentile(flat, 97.5, axis=0)
        labels = names
    keep = [i for i, label in enumerate(labels) if label.startswith(("w0", "b0"))]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(keep) + 1.2))
    y = np.arange(len(keep))[::-1]
    c, l_, h = (np.asarray(v)[keep] for v in (centre, lo, hi))
    ax.errorbar(c, y, xerr=[c - l_, h - c], fmt="o", color="C0", capsize=2)
    ax.axvline(0, color="0.6", lw=0.8)
    ax.set_yticks(y, [labels[i] for i in keep])
    ax.set_xlabel("coefficient (95% interval)")
    ax.set_title(f"{fit.model.family.name} / {fit.model.link.name}: coefficients ({fit.method})")
    return _save(fig, path)


def calibration(y_true, proba, path: Path, bins: int = 10) -> Path | None:
    """Reliability diagram: observed frequency against predicted probability (held-out rows)."""
    y_true = np.asarray(y_true).astype(int)
    proba = np.asarray(proba)
    if proba.ndim != 2:
        return None
    # Binary: the probability of class 1; several classes: the top class and whether it was right.
    if proba.shape[1] == 2:
        p, hit = proba[:, 1], y_true == 1
    else:
        p, hit = proba.max(axis=1), proba.argmax(axis=1) == y_true
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    mids, freq, counts = [], [], []
    for b in range(bins):
        mask = which == b
        if mask.any():
            mids.append(p[mask].mean())
            freq.append(hit[mask].mean())
            counts.append(mask.sum())
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
    ax.scatter(mids, freq, s=20 + 180 * np.asarray(counts) / max(counts), color="C0")
    ax.plot(mids, freq, color="C0")
    ax.set_xlabel("predicted probability" if proba.shape[1] == 2 else "confidence (top class)")
    ax.set_ylabel("observed frequency")
    ax.set_title("calibration (held-out)")
    return _save(fig, path)


def method_comparison(table, path: Path) -> Path:
    """Bars of held-out log predictive density per method, with time as labels."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(table["method"], table["test_lpd"], color="C0")
    for i, (v, t) in enumerate(zip(table["test_lpd"], table["seconds"], strict=True)):
        ax.annotate(f"{t:.1f}s", (i, v), ha="center", va="bottom" if v >= 0 else "top", fontsize=8)
    ax.set_ylabel("held-out log predictive density / obs")
    ax.set_title("methods compared on the same split")
    return _save(fig, path)
