"""What every engine returns: an :class:`Estimate`, from which :func:`bayes_rglm.inference.fit` assembles the Fit.

Examples
--------
>>> import numpy as np
>>> est = Estimate({"w0": np.ones((2, 1))}, None, None, {"converged": True})
>>> est.draws is None
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np


class Estimate(NamedTuple):
    """An engine's result, in the original coordinates and on the constrained scale.

    ``params``: point estimates (mle/map) or posterior means; ``draws``: ``{site: (chain, draw, ...)}``
    or None; ``covariance``: of the flat original parameters (sites in sorted order), a callable
    ``() -> (covariance, note)`` computed when first asked for, or None; ``info``: the method's
    ``fit.info``.
    """

    params: dict[str, np.ndarray]
    draws: dict[str, np.ndarray] | None
    covariance: np.ndarray | Callable[[], tuple[Any, str]] | None
    info: dict


def expand_aliased(estimate: Estimate, shapes: dict, aliased: np.ndarray) -> Estimate:
    """The estimate of the full design from the estimate fitted without the ``aliased`` columns.

    ``w0``'s rows for aliased columns are NaN; so are their rows and columns of the covariance (the
    flat vector of sites in sorted order).
    """
    kept = ~aliased
    params = dict(estimate.params)
    full_w0 = np.full(shapes["w0"], np.nan)
    full_w0[kept] = params["w0"]
    params["w0"] = full_w0
    positions, start = [], 0
    for name in sorted(shapes):
        size = int(np.prod(shapes[name], dtype=int))
        index = np.arange(start, start + size)
        if name == "w0":
            index = index.reshape(shapes["w0"])[kept].ravel()
        positions.append(index)
        start += size
    positions = np.concatenate(positions)

    def widen(covariance):
        if covariance is None:
            return None
        full = np.full((start, start), np.nan)
        full[np.ix_(positions, positions)] = covariance
        return full

    covariance = estimate.covariance
    if callable(covariance):
        lazy = covariance
        covariance = lambda: (lambda c, note: (widen(c), note))(*lazy())  # noqa: E731
    else:
        covariance = widen(covariance)
    return Estimate(params, estimate.draws, covariance, estimate.info)
