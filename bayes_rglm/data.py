"""Input checks and conversion, run in plain numpy before anything reaches JAX.

Every check raises ``ValueError`` or ``TypeError`` naming the argument, the
problem (with the first offending index or value) and what is allowed.

Examples
--------
>>> import numpy as np
>>> X, names = as_design(np.ones((3, 2)))
>>> names
['x0', 'x1']
"""

from __future__ import annotations

import numbers
import sys

import numpy as np


def is_dataframe(X) -> bool:
    """``X`` is a pandas DataFrame (pandas is only imported where the user already has: no cost otherwise)."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(X, pd.DataFrame)


def _is_series(X) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(X, pd.Series)


def _numeric(column) -> bool:
    return sys.modules["pandas"].api.types.is_numeric_dtype(column)


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _first_bad(mask: np.ndarray, first_row: int = 0) -> tuple[tuple, str]:
    """The index of ``mask``'s first True entry, and where it is in words (``"row 3, column 1"``), its row
    counted from ``first_row``."""
    where = tuple(int(i) for i in np.argwhere(mask)[0])
    return where, f"row {first_row + where[0]}" + (f", column {where[1]}" if len(where) > 1 else "")


# The largest magnitude accepted in X, y, offset, trials and weights: the fits square values and sum
# squares over rows (cross-products, residuals), which overflows float64 (1.8e308) past about 1e150.
LARGEST = 1e100


def check_finite(values: np.ndarray, argument: str, first_row: int = 0) -> None:
    """A ValueError naming ``argument`` and the first entry that is NaN, infinite or past :data:`LARGEST`.

    ``first_row``: the row number of ``values``'s first row in the whole argument (for a block of it)."""
    values = np.asarray(values)
    if values.size == 0 or (values.max() <= LARGEST and values.min() >= -LARGEST):
        # Two reductions and no temporaries (NaN propagates through max and min and fails both tests):
        # 5 ms instead of 17 ms on 100,000 x 50. The entry to name is looked for only on failure.
        return
    bad = ~np.isfinite(values)
    if bad.any():
        where, at = _first_bad(bad, first_row)
        raise ValueError(
            f"{argument} has a non-finite value ({float(values[where])}) at {at}; "
            f"{int(bad.sum())} in all. Remove or impute NaN/inf before fitting."
        )
    huge = np.abs(values) > LARGEST
    if huge.any():
        where, at = _first_bad(huge, first_row)
        raise ValueError(
            f"{argument} has a value of {float(values[where]):.3g} at {at}, beyond the {LARGEST:.0e} in size that "
            f"a fit can square and sum in float64 ({int(huge.sum())} in all); rescale it, e.g. divide the "
            "column by its standard deviation"
        )


def match_columns(X, columns: list[str], argument: str = "X"):
    """``X``'s columns in the order of ``columns``, matched by name (as scikit-learn does for DataFrames).

    A DataFrame whose columns are the training columns in another order is
    reordered; a missing, unknown or duplicated column is a ``ValueError``
    that names it.  Anything that is not a DataFrame is returned unchanged
    (arrays are matched by position).

    Examples
    --------
    >>> import pandas as pd
    >>> match_columns(pd.DataFrame({"b": [1.0], "a": [2.0]}), ["a", "b"]).columns.tolist()
    ['a', 'b']
    """
    if not is_dataframe(X):
        return X
    given = [str(c) for c in X.columns]
    seen, duplicated = set(), []
    for name in given:
        if name in seen and name not in duplicated:
            duplicated.append(name)
        seen.add(name)
    if duplicated:
        raise ValueError(f"{argument} has duplicated column {duplicated[0]!r}; each column name must appear once")
    missing = [c for c in columns if c not in seen]
    if missing:
        raise ValueError(
            f"{argument} is missing column {missing[0]!r} ({len(missing)} missing in all); the model was fitted "
            f"on columns {columns}"
        )
    unknown = [c for c in given if c not in set(columns)]
    if unknown:
        raise ValueError(
            f"{argument} has column {unknown[0]!r}, which the model was not fitted on; "
            f"pass exactly the training columns {columns} (in any order)"
        )
    if given == columns:
        return X
    frame = X.copy(deep=False)
    frame.columns = given
    return frame[columns]


def as_design(X, argument: str = "X", n_features: int | None = None) -> tuple[np.ndarray, list[str]]:
    """Check a design matrix and return it as float64 with its column names.

    Parameters
    ----------
    X : array-like or pandas.DataFrame, shape (n, p)
    argument : str
        Name used in error messages.
    n_features : int, optional
        Required number of columns (prediction on a fitted model).
    """
    if is_dataframe(X):
        non_numeric = [c for c in X.columns if not _numeric(X[c])]
        if non_numeric:
            raise TypeError(
                f"{argument} has non-numeric column {non_numeric[0]!r} (dtype {X[non_numeric[0]].dtype}); "
                "encode it first, e.g. pandas.get_dummies(X, drop_first=True, dtype=float)"
            )
        names = [str(c) for c in X.columns]
        values = X.to_numpy(dtype=np.float64)
    else:
        if isinstance(X, str | bytes) or X is None:
            raise TypeError(f"{argument} must be a 2-D numeric array or DataFrame, got {type(X).__name__}")
        try:
            values = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise TypeError(
                f"{argument} must be a 2-D numeric array or DataFrame; it could not be converted to float ({err})"
            ) from None
        names = None
    if values.ndim != 2:
        raise ValueError(
            f"{argument} must be 2-D (rows x features), got {values.ndim}-D with shape {values.shape}; "
            "for one feature use X.reshape(-1, 1)"
        )
    if values.shape[0] == 0:
        raise ValueError(f"{argument} is empty (0 rows); at least one observation is needed")
    if n_features is not None and values.shape[1] != n_features:
        raise ValueError(f"{argument} has {values.shape[1]} columns but the model was fitted with {n_features}")
    check_finite(values, argument)
    if names is None:
        names = [f"x{j}" for j in range(values.shape[1])]
    return values, names


def as_vector(values, n: int, argument: str, allow_none: bool = False) -> np.ndarray | None:
    """Check a per-observation vector (``y``, ``offset``, ``trials``): 1-D, numeric, finite, length ``n``."""
    if values is None:
        if allow_none:
            return None
        raise ValueError(f"{argument} is required")
    if is_dataframe(values):
        if values.shape[1] != 1:
            raise ValueError(f"{argument} must be 1-D, got a DataFrame with {values.shape[1]} columns")
        values = values.iloc[:, 0]
    if _is_series(values) and not _numeric(values):
        raise TypeError(f"{argument} must be numeric, got dtype {values.dtype}; encode labels as integers 0..K-1")
    if isinstance(values, numbers.Number):
        values = np.full(n, float(values))
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raw = np.ravel(np.asarray(values, dtype=object))
        bad = next((i for i, v in enumerate(raw) if not _is_number(v)), 0)
        raise TypeError(
            f"{argument} must be numeric; index {bad} is {raw[bad]!r}. Encode labels as numbers "
            "(e.g. 0/1 for bernoulli, 0..K-1 for categorical)"
        ) from None
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{argument} must be 1-D with one value per row, got shape {array.shape}")
    if array.shape[0] != n:
        raise ValueError(f"{argument} has length {array.shape[0]} but X has {n} rows; they must match")
    check_finite(array, argument)
    return array


def as_weights(weights, n: int) -> np.ndarray | None:
    """Check prior weights: one finite, non-negative number per row, not all zero (None passes)."""
    if isinstance(weights, str | bytes):
        raise TypeError(f"weights must be numeric, one per row (e.g. weights=df['count']), got {weights!r}")
    weights = as_vector(weights, n, "weights", allow_none=True)
    if weights is None:
        return None
    if np.any(weights < 0):
        raise ValueError(f"weights must be non-negative; first violation at {first_violation(weights < 0, weights)}")
    if not np.any(weights > 0):
        raise ValueError("weights are all zero; at least one row needs a positive weight (e.g. weights=np.ones(n))")
    return weights


def first_violation(mask: np.ndarray, values: np.ndarray) -> str:
    """Describe the first entry where ``mask`` is True: ``'index 3 (value 2.0)'``."""
    i = int(np.argmax(mask))
    return f"index {i} (value {values[i]:g}); {int(mask.sum())} in all"
