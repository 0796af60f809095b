"""The floating-point precision bayes_rglm computes in, scoped to its own calls.

JAX's default dtype is one process-wide flag, ``jax_enable_x64``.  bayes_rglm
never sets it: importing the library changes no JAX setting, and a user's own
float32 JAX code keeps its precision and speed.  Instead every public entry
point (:func:`bayes_rglm.fit` and ``RGLM.fit``, the methods of
:class:`~bayes_rglm.Fit`, :func:`~bayes_rglm.load`, the scikit-learn
estimators, the command) runs its work inside :func:`scope`, which turns x64 on or off for the duration
of the call only (``jax.enable_x64`` as a context manager; it is thread-local,
so a worker thread enters the scope again).  The model's JAX-level building
blocks (``RGLM.numpyro_model``, ``log_likelihood``, ``linear_predictor``) are
not scoped: they run inside the caller's own JAX programs (numpyro's ``MCMC``,
a user's ``jax.jit``) and compute in the caller's precision.

``dtype="float64"`` (the default) is what the R parity tests hold to many
digits.  ``dtype="float32"`` runs the whole fit with x64 off: data, parameters
and every intermediate are float32, which halves memory and is several times
faster on GPUs, at the cost of about 7 significant digits (log-likelihoods of
large data sums lose more; see the README's "Precision" section).  A fit
remembers its dtype (``fit.info["dtype"]``) and predicts in it.

Examples
--------
>>> import jax, jax.numpy as jnp
>>> with scope("float64"):
...     jnp.ones(2).dtype == jnp.float64
True
>>> jax.config.jax_enable_x64  # the user's setting is untouched outside
False
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator

import jax
import numpy as np

DTYPES = ("float64", "float32")

_active: contextvars.ContextVar[str | None] = contextvars.ContextVar("bayes_rglm_dtype", default=None)


def check_dtype(dtype) -> str:
    """``dtype`` as one of :data:`DTYPES` (``"float64"``, ``"float32"``, or the numpy/JAX dtype objects).

    Raises a ValueError naming ``dtype`` and what is allowed.
    """
    if isinstance(dtype, str):
        name = dtype
    elif dtype is None or isinstance(dtype, bool | int | float):
        name = None
    else:
        try:
            name = np.dtype(dtype).name  # np.float32, jnp.float32, np.dtype("float64"), float
        except TypeError:
            name = None
    if name not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is not supported; use dtype='float64' (the default) or dtype='float32'")
    return name


def current() -> str | None:
    """The dtype of the innermost active :func:`scope`, or None outside every scope."""
    return _active.get()


@contextlib.contextmanager
def scope(dtype: str = "float64") -> Iterator[None]:
    """Run the block with JAX's x64 on (``"float64"``) or off (``"float32"``), restoring the user's setting after."""
    token = _active.set(dtype)
    try:
        with jax.enable_x64(dtype == "float64"):
            yield
    finally:
        _active.reset(token)


def inherit() -> contextlib.AbstractContextManager:
    """The current scope again (in a worker thread, which does not inherit JAX's thread-local x64 setting), or
    float64 outside every scope."""
    return scope(current() or "float64")


# float32 resolves relative changes of about 1e-7 (a sum over many rows, less): a stopping tolerance below this
# floor could never be met, and an optimiser would run to max_iter. float64 tolerances are left as given.
FLOAT32_TOLERANCE = 1e-6


def tolerance(tol: float) -> float:
    """A relative stopping tolerance the current scope's dtype can meet: ``tol`` in float64, at least
    :data:`FLOAT32_TOLERANCE` in float32."""
    return float(max(tol, FLOAT32_TOLERANCE)) if current() == "float32" else float(tol)


def require() -> None:
    """Fail loudly where library code runs outside its precision scope (an internal error, never user input).

    Inside a :func:`scope` JAX's x64 flag must match it; outside every scope it must be on (a caller of the
    internals that enabled x64 itself).  Without this check an unscoped path would silently run in float32.
    """
    wanted = (current() or "float64") == "float64"
    if bool(jax.config.jax_enable_x64) != wanted:
        raise RuntimeError(
            "bayes_rglm ran outside its precision scope (JAX x64 is "
            f"{'on' if jax.config.jax_enable_x64 else 'off'}, {current() or 'float64'} was expected); "
            "this is a bug in bayes_rglm: please report it"
        )


def fit_dtype(fit) -> str | None:
    """The dtype a fit was made in (``fit.info["dtype"]``; float64 for files written before it was kept), or
    None for anything that is not a fit."""
    info = getattr(fit, "info", None)
    if not isinstance(info, dict) or "method" not in vars(fit):
        return None
    return info.get("dtype") or "float64"


def scoped(function: Callable) -> Callable:
    """Decorate a public function: run it in the dtype of the fit given as its first argument, else in the
    current scope, else in float64."""

    @functools.wraps(function)
    def run(*args, **kwargs):
        dtype = (fit_dtype(args[0]) if args else None) or current() or "float64"
        if current() == dtype:
            return function(*args, **kwargs)
        with scope(dtype):
            return function(*args, **kwargs)

    return run


def scoped_methods(dtype_of: Callable[[object], str] | None = None) -> Callable[[type], type]:
    """Class decorator: every public method and property runs in ``dtype_of(self)`` (default: the current
    scope, else float64).  Private names (``_x``) are left alone: they are reached from scoped code."""

    def wrap(function: Callable) -> Callable:
        @functools.wraps(function)
        def run(self, *args, **kwargs):
            dtype = (dtype_of(self) if dtype_of is not None else None) or current() or "float64"
            if current() == dtype:
                return function(self, *args, **kwargs)
            with scope(dtype):
                return function(self, *args, **kwargs)

        return run

    def decorate(cls: type) -> type:
        for name, value in list(vars(cls).items()):
            if name.startswith("_"):
                continue
            if isinstance(value, property):
                setattr(
                    cls,
                    name,
                    property(
                        wrap(value.fget) if value.fget else None,
                        wrap(value.fset) if value.fset else None,
                        value.fdel,
                        value.__doc__,
                    ),
                )
            elif isinstance(value, staticmethod | classmethod):
                continue
            elif callable(value) and not isinstance(value, type):
                setattr(cls, name, wrap(value))
        return cls

    return decorate
