"""Warnings raised by bayes_rglm (filter them with the standard ``warnings`` module)."""

import os
import sys


class ConvergenceWarning(UserWarning):
    """An optimiser or sampler stopped before its convergence criterion was met."""


class SeparationWarning(UserWarning):
    """The maximum likelihood estimate does not exist (perfect or quasi-complete separation)."""


class DiagnosticsWarning(UserWarning):
    """MCMC diagnostics (divergences, r-hat, effective sample size) signal an unreliable posterior."""


class AliasingWarning(UserWarning):
    """Columns of the design are linearly dependent on earlier ones: their coefficients are not estimated."""


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes ``warnings.warn``, called from bayes_rglm, point at the user's line: the
    first frame outside the bayes_rglm package (however many of its own calls and wrappers lie between)."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 1  # the caller of this function is warnings.warn's caller: level 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level
