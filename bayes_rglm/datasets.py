"""Real data sets that ship inside scikit-learn and statsmodels, by name; nothing is downloaded.

``load(name)`` returns a :class:`Data`: ``X`` (DataFrame with column names),
``y`` (Series), ``description`` (one line) and, for binomial data,
``trials``.  ``load("csv:PATH", target="col")`` reads a CSV file.

Examples
--------
>>> from bayes_rglm import datasets
>>> data = datasets.load("spector")
>>> list(data.X.columns), data.y.name
(['GPA', 'TUCE', 'PSI'], 'GRADE')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import pandas as pd


class Data(NamedTuple):
    """A loaded data set."""

    X: pd.DataFrame
    y: pd.Series
    description: str
    trials: pd.Series | None = None


def _sklearn(name: str, description: str) -> Callable[[], Data]:
    def load() -> Data:
        import sklearn.datasets as skd

        bunch = getattr(skd, f"load_{name}")(as_frame=True)
        return Data(bunch.data.astype(float), bunch.target.astype(float).rename("target"), description)

    return load


def _statsmodels(name: str, target: str, description: str, drop: tuple[str, ...] = ()) -> Callable[[], Data]:
    def load() -> Data:
        import importlib

        frame = importlib.import_module(f"statsmodels.datasets.{name}").load_pandas().data
        frame = frame.drop(columns=[c for c in drop if c in frame.columns])
        y = frame[target].astype(float)
        X = frame.drop(columns=[target]).astype(float)
        return Data(X, y, description)

    return load


def _star98() -> Data:
    from statsmodels.datasets import star98

    frame = star98.load_pandas().data
    y = frame["NABOVE"].astype(float)
    trials = (frame["NABOVE"] + frame["NBELOW"]).astype(float).rename("trials")
    X = frame.drop(columns=["NABOVE", "NBELOW"]).astype(float)
    return Data(X, y, "California schools 1998: students above the national math median (binomial)", trials)


def _anes96() -> Data:
    from statsmodels.datasets import anes96

    frame = anes96.load_pandas().data
    y = frame["PID"].astype(float)
    X = frame[["logpopul", "selfLR", "age", "educ", "income"]].astype(float)
    return Data(X, y, "1996 US election survey: party identification, 7 ordered levels (0 strong Democrat)")


DATASETS: dict[str, Callable[[], Data]] = {
    "breast_cancer": _sklearn("breast_cancer", "Wisconsin breast cancer: malignant (0) or benign (1), 30 features"),
    "diabetes": _sklearn("diabetes", "Diabetes progression after one year (real), 10 standardised features"),
    "iris": _sklearn("iris", "Iris species (3 classes) from 4 flower measurements"),
    "wine": _sklearn("wine", "Wine cultivar (3 classes) from 13 chemical measurements"),
    "spector": _statsmodels("spector", "GRADE", "Spector & Mazzeo: grade improvement (binary) after PSI teaching"),
    "star98": _star98,
    "cpunish": _statsmodels("cpunish", "EXECUTIONS", "US states 1997: number of executions (counts)"),
    "scotland": _statsmodels("scotland", "YES", "Scottish parliament referendum 1997: percent YES (positive real)"),
    "fair": _statsmodels("fair", "affairs", "Fair's affairs survey: time in affairs, censored at zero (tobit)"),
    "anes96": _anes96,
    "randhie": _statsmodels("randhie", "mdvis", "RAND health insurance experiment: doctor visits (counts, 20k rows)"),
}


def names() -> list[str]:
    """Names accepted by :func:`load` (plus ``csv:PATH``)."""
    return sorted(DATASETS)


def load(name: str, target: str | None = None, encode: bool = True) -> Data:
    """Load a shipped data set by name, or a CSV file as ``csv:PATH`` with ``target=`` its response column.

    ``encode``: a CSV's text columns become dummy columns; ``False`` keeps them raw (for a formula).
    """
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string such as 'iris' or 'csv:data.csv', got {name!r}")
    if name.startswith("csv:"):
        return _load_csv(name[4:], target, encode)
    if name not in DATASETS:
        raise ValueError(f"dataset {name!r} is not known; valid: {', '.join(names())}, or csv:PATH")
    data = DATASETS[name]()
    if target is not None and target != data.y.name:
        frame = pd.concat([data.X, data.y], axis=1)
        if target not in frame.columns:
            raise ValueError(f"target {target!r} is not a column of dataset {name!r}; columns: {list(frame.columns)}")
        return Data(frame.drop(columns=[target]), frame[target], data.description, data.trials)
    return data


def _load_csv(path: str, target: str | None, encode: bool = True) -> Data:
    import os

    if not os.path.isfile(path):
        raise ValueError(f"csv file {path!r} does not exist")
    if target is None:
        raise ValueError(f"csv:{path} needs a target column (target=...)")
    frame = pd.read_csv(path)
    if target not in frame.columns:
        raise ValueError(f"target {target!r} is not a column of {path!r}; columns: {list(frame.columns)}")
    X = frame.drop(columns=[target])
    non_numeric = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    if non_numeric and encode:
        X = pd.get_dummies(X, columns=non_numeric, drop_first=True, dtype=float)
    X = X.astype(float) if encode else X
    return Data(X, frame[target].astype(float), f"CSV file {os.path.basename(path)}")


def standardise(X: pd.DataFrame, reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """Centre and scale columns (by ``reference``'s mean and sd, e.g. the training rows)."""
    reference = X if reference is None else reference
    sd = reference.std(ddof=0).replace(0.0, 1.0)
    return (X - reference.mean()) / sd


__all__ = ["Data", "DATASETS", "load", "names", "standardise"]
