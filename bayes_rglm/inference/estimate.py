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
