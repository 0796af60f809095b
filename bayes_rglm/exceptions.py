"""Warnings raised by bayes_rglm (filter them with the standard ``warnings`` module)."""


class ConvergenceWarning(UserWarning):
    """An optimiser or sampler stopped before its convergence criterion was met."""


class SeparationWarning(UserWarning):
    """The maximum likelihood estimate does not exist (perfect or quasi-complete separation)."""


class DiagnosticsWarning(UserWarning):
    """MCMC diagnostics (divergences, r-hat, effective sample size) signal an unreliable posterior."""


class AliasingWarning(UserWarning):
    """Columns of the design are linearly dependent on earlier ones: their coefficients are not estimated."""
