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


def jit(fun, small: bool):
    """``jax.jit(fun)``, compiled at XLA's backend optimisation level 0 when ``small`` (see :data:`SMALL_WORK`).

    ``small`` must be fixed by the shapes (e.g. :func:`is_small`), so that refits of one shape bucket share
    one program.
    """
    return jax.jit(fun, compiler_options=_QUICK) if small else jax.jit(fun)


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
