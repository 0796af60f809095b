"""Train/test splits from a spec's data table, and held-out metrics for any fit.

Held-out log predictive density per observation is
``mean_i log( mean_s p(y_i | theta_s) )`` (the plug-in density for mle/map);
error is accuracy for classifiers and RMSE otherwise; classifiers also get the
expected calibration error (10 equal-width bins of the top-class probability).

Examples
--------
>>> import numpy as np
>>> expected_calibration_error(np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]))
0.15
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from . import datasets
from .precision import scoped


class Split(NamedTuple):
    X_train: pd.DataFrame
    y_train: pd.Series
    X_test: pd.DataFrame
    y_test: pd.Series
    trials_train: np.ndarray | None
    trials_test: np.ndarray | None
    description: str


def split_data(data_table: dict, classes: bool, seed: int | None = None) -> Split:
    """Load the spec's dataset, pick features, split train/test, standardise by training statistics."""
    from sklearn.model_selection import train_test_split

    if str(data_table["dataset"]).startswith("npy:"):
        return _split_npy(data_table)
    data = datasets.load(data_table["dataset"], data_table.get("target"), encode="formula" not in data_table)
    X = data.X
    features = data_table.get("features")
    if features:
        missing = [f for f in features if f not in X.columns]
        if missing:
            raise ValueError(f"data.features: {missing[0]!r} is not a column; columns: {list(X.columns)}")
        X = X[features]
    seed = data_table.get("split_seed", 0) if seed is None else seed
    rows = np.arange(len(X))
    stratify = data.y if classes and data.y.value_counts().min() >= 2 else None
    train, test = train_test_split(
        rows, test_size=data_table.get("test_size", 0.25), random_state=seed, stratify=stratify
    )
    X_train, X_test = X.iloc[train], X.iloc[test]
    if "formula" in data_table:  # the formula picks and transforms the columns; it needs the response beside them
        X_train = X_train.assign(**{str(data.y.name): data.y.iloc[train]})
        X_test = X_test.assign(**{str(data.y.name): data.y.iloc[test]})
    elif data_table.get("standardise", True):
        X_test = datasets.standardise(X_test, X_train)
        X_train = datasets.standardise(X_train)
    trials = None if data.trials is None else data.trials.to_numpy()
    return Split(
        X_train,
        data.y.iloc[train],
        X_test,
        data.y.iloc[test],
        None if trials is None else trials[train],
        None if trials is None else trials[test],
        data.description,
    )


MAX_NPY_TEST = 100_000  # held-out rows of an npy: dataset, at most (read into memory)


def _split_npy(data_table: dict) -> Split:
    """``dataset = "npy:X.npy,y.npy"``: ``X`` memory-mapped (fitted out of core by SVI), the last
    ``test_size`` share of the rows (at most :data:`MAX_NPY_TEST`) held out and read into memory."""
    import os

    paths = data_table["dataset"][4:].split(",")
    if len(paths) != 2:
        raise ValueError(f"data.dataset {data_table['dataset']!r}: write npy:X_PATH,Y_PATH (two .npy files)")
    for path in paths:
        if not os.path.isfile(path):
            raise ValueError(f"data.dataset: npy file {path!r} does not exist")
    unsupported = [key for key in ("features", "formula", "target") if key in data_table]
    if unsupported:
        raise ValueError(f"data.{unsupported[0]} is not available with an npy: dataset (X and y are given as files)")
    X = np.load(paths[0], mmap_mode="r")
    y = np.load(paths[1], mmap_mode="r")
    if X.ndim != 2 or len(y) != len(X):
        raise ValueError(f"{paths[0]} must be 2-D with one row per value of {paths[1]}; got {X.shape} and {y.shape}")
    n_test = min(int(round(data_table.get("test_size", 0.25) * len(X))), MAX_NPY_TEST)
    cut = len(X) - n_test
    names = [f"x{j}" for j in range(X.shape[1])]
    return Split(
        X[:cut],
        np.asarray(y[:cut], dtype=np.float64),
        pd.DataFrame(np.asarray(X[cut:], dtype=np.float64), columns=names),
        pd.Series(np.asarray(y[cut:], dtype=np.float64)),
        None,
        None,
        f"memory-mapped X ({os.path.basename(paths[0])}, {len(X):,} rows) and y ({os.path.basename(paths[1])})",
    )


def expected_calibration_error(y, proba, bins: int = 10) -> float:
    """``sum_b (n_b / n) |accuracy_b - confidence_b|`` over equal-width bins of the top-class probability."""
    y = np.asarray(y).astype(int)
    confidence = proba.max(axis=1)
    hit = proba.argmax(axis=1) == y
    which = np.clip((confidence * bins).astype(int), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(hit[mask].mean() - confidence[mask].mean())
    return float(round(total, 12))


@scoped
def held_out_metrics(fit, X, y, trials=None) -> dict:
    """Log predictive density per observation, accuracy or RMSE, and calibration for classifiers."""
    y = np.asarray(y, dtype=float)
    ll = np.asarray(fit.log_likelihood(X, y, trials=trials))
    if ll.ndim == 3:
        ll = ll.reshape(-1, ll.shape[-1])
        lpd = logsumexp(ll, axis=0) - np.log(ll.shape[0])
    else:
        lpd = ll
    metrics = {"test_lpd": float(np.mean(lpd)), "n_test": int(len(y))}
    family = fit.model.family
    if family.has_classes:
        proba = fit.predict_proba(X)
        metrics["accuracy"] = float(np.mean(proba.argmax(axis=1) == y.astype(int)))
        metrics["ece"] = expected_calibration_error(y, proba)
    else:
        mean = fit.predict(X, trials=trials)
        metrics["rmse"] = float(np.sqrt(np.mean((mean - y) ** 2)))
    return metrics
