"""bayes_rglm: Bayesian recursive generalised linear models (deep nets as stacks of GLMs).

Examples
--------
>>> import bayes_rglm as br
>>> model = br.RGLM(family="bernoulli", hidden=(8,), activation="tanh", prior=br.GaussianPrior(scale=1.0))
"""

import jax

jax.config.update("jax_enable_x64", True)

from . import families, links  # noqa: E402
from .anova import anova  # noqa: E402
from .evidence import tune_prior_scale  # noqa: E402
from .exceptions import AliasingWarning, ConvergenceWarning, DiagnosticsWarning, SeparationWarning  # noqa: E402
from .inference import fit  # noqa: E402
from .model import RGLM, load  # noqa: E402
from .priors import GaussianPrior  # noqa: E402
from .results import Fit  # noqa: E402
from .runtime import clear_caches  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "RGLM",
    "GaussianPrior",
    "Fit",
    "fit",
    "load",
    "anova",
    "tune_prior_scale",
    "clear_caches",
    "families",
    "links",
    "AliasingWarning",
    "ConvergenceWarning",
    "SeparationWarning",
    "DiagnosticsWarning",
    "__version__",
]
