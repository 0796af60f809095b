"""bayes_rglm: Bayesian recursive generalised linear models (deep nets as stacks of GLMs).

Examples
--------
>>> import bayes_rglm as br
>>> model = br.RGLM(family="bernoulli", hidden=(8,), activation="tanh", prior=br.GaussianPrior(scale=1.0))
"""

# Importing bayes_rglm changes no JAX setting: its calls run in float64 inside their own scope
# (bayes_rglm.precision), whatever the user's jax_enable_x64.
from . import families, links
from .anova import anova
from .evidence import tune_prior_scale
from .exceptions import AliasingWarning, ConvergenceWarning, DiagnosticsWarning, SeparationWarning
from .inference import fit
from .model import RGLM, load
from .priors import GaussianPrior
from .results import Fit
from .runtime import clear_caches

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
