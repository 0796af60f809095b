"""Checks of the response ``y`` for each family, run in numpy before any tracing.

Each ``validate_*`` returns a :class:`DataSummary` (class count, location,
scale, class frequencies) or raises ``ValueError`` naming the family, its
support and the first offending index and value.  ``fitting=False`` checks
the support only (new data may lack some classes).

Examples
--------
>>> import numpy as np
>>> validate_bernoulli(np.array([0.0, 1.0, 1.0]), None).n_classes
2
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .data import first_violation


class DataSummary(NamedTuple):
    """What a family learns from ``y`` before fitting: class count, location and scale."""

    n_classes: int
    y_mean: float
    y_scale: float
    class_freq: tuple[float, ...] = ()


def _summary(y: np.ndarray, n_classes: int = 1) -> DataSummary:
    scale = float(np.std(y)) if y.size > 1 and np.std(y) > 0 else 1.0
    return DataSummary(n_classes, float(np.mean(y)), scale)


def reweighted(summary: DataSummary, y: np.ndarray, trials: np.ndarray | None, weights: np.ndarray) -> DataSummary:
    """``summary`` with its mean, scale and class frequencies weighted by the rows' ``weights``.

    Integer weights then give the summary of the repeated rows, so the priors that scale with
    ``sd(y)`` and the starts are those of the repeated data.
    """
    total = float(weights.sum())
    mean = float(weights @ y / (total if trials is None else float(weights @ trials)))
    if not summary.class_freq:  # a real or count response: its weighted sd
        sd = float(np.sqrt(weights @ np.square(y - mean) / total))
        return summary._replace(y_mean=mean, y_scale=sd if y.size > 1 and sd > 0 else 1.0)
    if trials is not None:  # binomial: the pooled proportion
        freq = (1.0 - mean, mean)
    else:
        freq = tuple(np.bincount(y.astype(int), weights=weights, minlength=len(summary.class_freq)) / total)
    return summary._replace(y_mean=mean, class_freq=tuple(float(f) for f in freq))


def _check_integers(y, family, argument="y", lower=0.0):
    bad = (y < lower) | (y != np.round(y))
    if bad.any():
        raise ValueError(
            f"{argument} must be integers >= {lower:g} for family {family!r}; first violation at "
            f"{first_violation(bad, y)}"
        )


def validate_real(name):
    return lambda y, trials, fitting=True: _summary(y)


def validate_positive(name):
    def validate(y, trials, fitting=True):
        bad = y <= 0
        if bad.any():
            raise ValueError(f"y must be > 0 for family {name!r}; first violation at {first_violation(bad, y)}")
        return _summary(y)

    return validate


def validate_counts(name):
    def validate(y, trials, fitting=True):
        _check_integers(y, name)
        return _summary(y)

    return validate


def validate_bernoulli(y, trials, fitting=True):
    bad = (y != 0) & (y != 1)
    if bad.any():
        raise ValueError(f"y must be 0 or 1 for family 'bernoulli'; first violation at {first_violation(bad, y)}")
    if fitting and np.all(y == y[0]):
        raise ValueError(f"y has a single class ({y[0]:g}) for family 'bernoulli'; both 0 and 1 must occur")
    return DataSummary(2, float(y.mean()), 1.0, (1 - float(y.mean()), float(y.mean())))


def validate_binomial(y, trials, fitting=True):
    if trials is None:
        raise ValueError("trials is required for family 'binomial': pass trials= (number of trials per row)")
    _check_integers(trials, "binomial", argument="trials")
    _check_integers(y, "binomial")
    bad = y > trials
    if bad.any():
        raise ValueError(
            f"y (successes) exceeds trials for family 'binomial' at {first_violation(bad, y)}; need 0 <= y <= trials"
        )
    p = float(y.sum() / max(trials.sum(), 1.0))
    return DataSummary(2, p, 1.0, (1 - p, p))


def validate_labels(name):
    def validate(y, trials, fitting=True):
        _check_integers(y, name)
        n_classes = int(y.max()) + 1
        counts = np.bincount(y.astype(int), minlength=n_classes)
        if not fitting:
            return DataSummary(n_classes, float(y.mean()), 1.0)
        if n_classes < 2:
            raise ValueError(f"y has a single class (0) for family {name!r}; at least two classes must occur")
        missing = np.flatnonzero(counts == 0)
        if missing.size:
            raise ValueError(
                f"y has no observation of class {int(missing[0])} for family {name!r}; labels must be "
                f"integers 0..K-1 with every class present (here K = {n_classes})"
            )
        return DataSummary(n_classes, float(y.mean()), 1.0, tuple(counts / counts.sum()))

    return validate


def validate_tobit(lower, upper):
    def validate(y, trials, fitting=True):
        bad = (y < lower) | (y > upper)
        if bad.any():
            raise ValueError(
                f"y must lie in [{lower:g}, {upper:g}] for family 'tobit' (censored there); first violation at "
                f"{first_violation(bad, y)}"
            )
        return _summary(y)

    return validate
