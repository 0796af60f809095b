"""Compiled programs: counting XLA compilations, and a guard on the memory mappings they hold; ArviZ on demand.

Every program XLA compiles for the CPU keeps about six memory mappings (its
code and data sections) for as long as JAX caches it, and JAX caches every
program for the life of the process.  Linux caps the mappings of one process
at ``vm.max_map_count`` (65,530 by default); past it, LLVM can neither map a
new program nor serialise one for the persistent cache, and the process dies
with ``Fatal Python error: Aborted`` or a segmentation fault.  A long session
that fits many models of many shapes (a test suite, a cross-validation sweep
over several sizes) reaches that cap after about 10,000 programs.

:func:`guard_mappings`, called at the start of every fit, checks the count
once every few hundred compilations and, when more than half of the cap is
used, drops JAX's in-memory caches (:func:`clear_caches`): the next fits
compile again (or read JAX's persistent cache, where it is on), and the
process keeps running.

Examples
--------
>>> import jax, jax.numpy as jnp
>>> with compilations() as counter:
...     _ = jax.jit(lambda x: x + 1)(jnp.ones(3))
>>> counter.count >= 1
True
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import threading
import warnings

import jax
import numpy as np

logger = logging.getLogger("bayes_rglm")

_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
CHECK_EVERY = 256  # compilations between two counts of the process's memory mappings
MAPPING_SHARE = 0.5  # clear the caches when this share of vm.max_map_count is in use

_lock = threading.Lock()
_state = {"listening": False, "compiles": 0, "checked_at": 0}
_counters: list[Counter] = []
_caches: list = []


class Counter:
    """Counts XLA backend compilations while it is active (see :func:`compilations`)."""

    def __init__(self):
        self.count = 0
        self.seconds = 0.0


def _listen(event: str, duration: float, **kwargs) -> None:
    if event != _COMPILE_EVENT:
        return
    with _lock:
        _state["compiles"] += 1
        for counter in _counters:
            counter.count += 1
            counter.seconds += duration


def _start_listening() -> None:
    with _lock:
        if _state["listening"]:
            return
        jax.monitoring.register_event_duration_secs_listener(_listen)
        _state["listening"] = True


class compilations:
    """Context manager counting the XLA compilations made inside it: ``with compilations() as c: ...; c.count``."""

    def __enter__(self) -> Counter:
        _start_listening()
        self.counter = Counter()
        with _lock:
            _counters.append(self.counter)
        return self.counter

    def __exit__(self, *exc) -> None:
        with _lock:
            _counters.remove(self.counter)


def arviz():
    """ArviZ, imported when first used (``import bayes_rglm`` does not pay for it), without its 1.0 notice."""
    with warnings.catch_warnings():
        # ArviZ announces its 1.0 refactor on import; we pin the 0.x InferenceData API.
        warnings.simplefilter("ignore", FutureWarning)
        import arviz

    return arviz


def bucket(n: int) -> int:
    """``n`` rounded up to one of 8 sizes per power of two (at most 12.5% more; 16 at least).

    Arrays whose leading size varies (rows, draws, batch sizes) are padded to
    their bucket, so sizes in one bucket share one compiled program.
    """
    if n <= 16:
        return 16
    step = 1 << (int(np.floor(np.log2(n))) - 3)
    return int(-(-n // step) * step)


SMALL_WORK = 100_000  # rows x parameters at or below which a program is compiled for quick compilation

# XLA's CPU backend at optimisation level 0: measured on the depth-0 Newton program of a 32-row GLM,
# compilation takes 0.70 s instead of 0.99 s and a run 0.31 ms instead of 0.27 ms. Where a fit is
# small the compile time is all the user waits for; where it is large the optimised code pays.
_QUICK = {"xla_backend_optimization_level": 0}

# XLA's CPU backend emits each fused kernel through MLIR ("fusion emitters") by default; its older
# elemental emitter compiles them in about half the time. Measured on this project's programs (2-core
# machine, fresh processes): the NUTS sampler of spector's logit model compiles in 1.1-1.5 s instead of
# 2.9-3.0 s; the depth-0 Newton program at 100,000 x 50 in 1.1-1.4 s instead of 1.7-2.2 s, with the
# same warm time (its work is in matrix products and LAPACK, which neither emitter generates). Where
# the work is elementwise and large the MLIR kernels run faster: the MAP of a 20-50-1 tanh net on
# 50,000 rows (2,000 L-BFGS steps) took 56 s with the elemental emitter against 39 s, so programs
# with hidden layers keep the default unless small.
_SIMPLE_KERNELS = {"xla_cpu_use_fusion_emitters": False}


@functools.cache
def _accepted(name: str, value) -> bool:
    """Whether this jaxlib's XLA knows the compiler option ``name`` (a trivial program compiled once with it).

    XLA's debug options come and go between releases; an unknown one is an error at compile time, so an
    option this jaxlib does not know is left out rather than failing every fit.
    """
    try:
        jax.jit(lambda x: x + 1, compiler_options={name: value}).lower(np.zeros((), np.float32)).compile()
    except Exception:  # noqa: BLE001 - jaxlib reports an unknown option as a runtime error
        return False
    return True


def compiler_options(small: bool, matmul_bound: bool = False) -> dict:
    """The XLA compiler options of :func:`jit` (only those this jaxlib accepts)."""
    options = {}
    if small or matmul_bound:
        options.update(_SIMPLE_KERNELS)
    if small:
        options.update(_QUICK)
    return {name: value for name, value in options.items() if _accepted(name, value)}


def jit(fun, small: bool, matmul_bound: bool = False):
    """``jax.jit(fun)`` with compiler options for quick compilation where they cost no run time.

    ``small`` (see :data:`SMALL_WORK`): XLA's backend optimisation level 0 and its elemental kernel
    emitter. ``matmul_bound`` (programs whose time is spent in matrix products and factorisations, such
    as depth-0 Newton): the elemental emitter at any size. Both must be fixed by the shapes (e.g.
    :func:`is_small`), so that refits of one shape bucket share one program.
    """
    options = compiler_options(small, matmul_bound)
    return jax.jit(fun, compiler_options=options) if options else jax.jit(fun)


def is_small(rows: int, parameters: int) -> bool:
    """Whether a program over ``rows`` (padded) and ``parameters`` is small enough for :func:`jit`'s quick mode."""
    return rows * parameters <= SMALL_WORK


def compiled_cache(maxsize: int):
    """``functools.lru_cache(maxsize)`` for functions that build compiled programs; emptied by :func:`clear_caches`."""

    def decorate(function):
        cached = functools.lru_cache(maxsize=maxsize)(function)
        _caches.append(cached)
        return cached

    return decorate


def clear_caches() -> None:
    """Drop every compiled program held in memory (JAX's caches and bayes_rglm's), releasing their mappings.

    Later fits compile again, or load from JAX's persistent compilation cache
    where it is turned on.  Results are unaffected.
    """
    for cached in _caches:
        cached.cache_clear()
    jax.clear_caches()
    gc.collect()


def mapping_count() -> tuple[int, int] | None:
    """``(mappings in use, vm.max_map_count)`` for this process, or None where Linux's ``/proc`` is not there."""
    try:
        with open("/proc/sys/vm/max_map_count") as f:
            limit = int(f.read())
        with open(f"/proc/{os.getpid()}/maps", "rb") as f:
            used = sum(1 for _ in f)
    except (OSError, ValueError):
        return None
    return used, limit


def guard_mappings() -> None:
    """Clear the compiled-program caches when the process nears its memory-mapping cap (see the module text)."""
    _start_listening()
    with _lock:
        due = _state["compiles"] - _state["checked_at"] >= CHECK_EVERY
        if due:
            _state["checked_at"] = _state["compiles"]
    if not due:
        return
    counts = mapping_count()
    if counts is None:
        return
    used, limit = counts
    if used > MAPPING_SHARE * limit:
        logger.info(
            "%d of %d memory mappings in use (vm.max_map_count) after %d compilations; clearing JAX's caches",
            used,
            limit,
            _state["compiles"],
        )
        clear_caches()


@functools.cache
def _blas_controller():
    from threadpoolctl import ThreadpoolController  # a dependency of scikit-learn's; loaded when first needed

    return ThreadpoolController()


def one_blas_thread():
    """A context in which numpy's BLAS and LAPACK calls run on the calling thread alone.

    OpenBLAS's worker threads keep spinning for a while after each threaded
    call, taking a core from the XLA program that runs next: a host-side Gram
    matrix of 100,000 x 50 before a depth-0 Newton solve made the solve 25 ms
    (15%) slower, while its second thread saved 2 ms.

    Examples
    --------
    >>> import numpy as np
    >>> with one_blas_thread():
    ...     gram = np.ones((3, 2)).T @ np.ones((3, 2))
    >>> gram.tolist()
    [[3.0, 3.0], [3.0, 3.0]]
    """
    return _blas_controller().limit(limits=1, user_api="blas")
