"""Aliased columns, as R's ``glm`` finds them: columns linearly dependent on earlier ones.

The design ``[1, X]`` (without the intercept for families that have none) is factored by Householder
QR without pivoting; column ``j`` is aliased when the part of it that the earlier columns do not
span is below ``tol`` of its norm, ``|R_jj| <= tol ||x_j||`` (R's ``dqrdc2`` criterion, ``tol =
1e-7``).  A constant column duplicates the intercept; with more columns than rows, the columns past
the rank are aliased.  The MLE is fitted on the remaining columns and the aliased coefficients are
reported as NaN ("not estimated"), as R reports NA; they count as 0 in predictions.

The QR costs ``2 n p^2`` flops at the speed of a level-2 factorisation, which at 100,000 x 50 is more
than a whole Newton solve.  A screen comes first: the smallest eigenvalue ``lambda_min`` of the Gram
matrix of the design with columns scaled to unit norm is the squared smallest singular value, and
every ``|R_jj| / ||x_j||`` (the distance of a unit column from the span of the earlier ones) is at
least ``sqrt(lambda_min)``.  Where ``lambda_min > 1e-6`` no column can be aliased at ``tol = 1e-7``,
with four orders of magnitude to spare for the rounding of the Gram matrix (Weyl: an eigenvalue moves
by at most the perturbation's norm, about ``p n eps`` here), and the QR is skipped.  The Gram matrix
is one level-3 product (a fraction of the QR's time).

Examples
--------
>>> import numpy as np
>>> x = np.arange(6.0)
>>> aliased_columns(np.c_[x, 2 * x, np.ones(6), x**2], intercept=True).tolist()
[False, True, True, False]
"""

from __future__ import annotations

import numpy as np

from .runtime import one_blas_thread

TOL = 1e-7  # R's glm.control / lm.fit tolerance for the QR rank
SCREEN = 1e-6  # smallest eigenvalue of the unit-column Gram matrix above which no column is aliased


def aliased_columns(X: np.ndarray, intercept: bool, tol: float = TOL) -> np.ndarray:
    """A mask over the columns of ``X``: True where a column is linearly dependent on earlier ones."""
    if _full_rank(np.asarray(X, dtype=np.float64), intercept):
        return np.zeros(X.shape[1], dtype=bool)
    design = np.c_[np.ones(X.shape[0]), X] if intercept else np.asarray(X)
    norms = np.linalg.norm(design, axis=0)
    with one_blas_thread():  # no BLAS threads left spinning while the fit's compiled solve runs
        r = np.linalg.qr(design, mode="r")
    diagonal = np.zeros(design.shape[1])
    diagonal[: min(r.shape)] = np.abs(np.diag(r))
    dependent = (diagonal <= tol * norms) | (norms == 0)
    return dependent[1:] if intercept else dependent


def _full_rank(X: np.ndarray, intercept: bool) -> bool:
    """True when the unit-column Gram matrix of ``[1, X]`` (or ``X``) has its smallest eigenvalue above SCREEN."""
    n, p = X.shape
    if n < p + intercept:
        return False
    with one_blas_thread():  # no BLAS threads left spinning while the fit's compiled solve runs
        gram = X.T @ X
    if intercept:
        sums = X.sum(axis=0)
        gram = np.block([[np.full((1, 1), float(n)), sums[None, :]], [sums[:, None], gram]])
    norms = np.sqrt(np.diag(gram))
    if not np.all(norms > 0) or not np.all(np.isfinite(gram)):
        return False
    unit = gram / np.outer(norms, norms)
    return bool(np.linalg.eigvalsh(unit)[0] > SCREEN)
