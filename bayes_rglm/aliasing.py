"""Aliased columns, as R's ``glm`` finds them: columns linearly dependent on earlier ones.

The design ``[1, X]`` (without the intercept for families that have none) is factored by Householder
QR without pivoting; column ``j`` is aliased when the part of it that the earlier columns do not
span is below ``tol`` of its norm, ``|R_jj| <= tol ||x_j||`` (R's ``dqrdc2`` criterion, ``tol =
1e-7``).  A constant column duplicates the intercept; with more columns than rows, the columns past
the rank are aliased.  The MLE is fitted on the remaining columns and the aliased coefficients are
reported as NaN ("not estimated"), as R reports NA; they count as 0 in predictions.

Examples
--------
>>> import numpy as np
>>> x = np.arange(6.0)
>>> aliased_columns(np.c_[x, 2 * x, np.ones(6), x**2], intercept=True).tolist()
[False, True, True, False]
"""

from __future__ import annotations

import numpy as np

TOL = 1e-7  # R's glm.control / lm.fit tolerance for the QR rank


def aliased_columns(X: np.ndarray, intercept: bool, tol: float = TOL) -> np.ndarray:
    """A mask over the columns of ``X``: True where a column is linearly dependent on earlier ones."""
    design = np.c_[np.ones(X.shape[0]), X] if intercept else np.asarray(X)
    norms = np.linalg.norm(design, axis=0)
    r = np.linalg.qr(design, mode="r")
    diagonal = np.zeros(design.shape[1])
    diagonal[: min(r.shape)] = np.abs(np.diag(r))
    dependent = (diagonal <= tol * norms) | (norms == 0)
    return dependent[1:] if intercept else dependent
