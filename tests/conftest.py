"""Shared fixtures; JAX's persistent compilation cache so repeated runs (and subprocesses) skip XLA compiles."""

import os

CACHE = os.environ.get("BAYES_RGLM_JAX_CACHE", os.path.expanduser("~/.cache/bayes_rglm/jax"))
# Environment first, so the example and CLI subprocesses that tests start use the same cache.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", CACHE)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

# No jax_enable_x64 here: the suite runs with JAX's default (x64 off), as a user's process does, so every
# public call goes through bayes_rglm's own precision scope. Modules that test internals directly (links,
# families, objectives) take the x64 marker below.
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


@pytest.fixture(scope="module", autouse=True)
def _bounded_compiled_programs():
    """After each test module, drop the compiled programs if the process nears its memory-mapping cap.

    Each XLA CPU program holds about six memory mappings for as long as JAX caches it, and Linux's
    ``vm.max_map_count`` (65,530) kills the process past the cap: the whole suite in one process
    compiles well over 10,000 programs. ``bayes_rglm.runtime.guard_mappings`` (also run by every fit)
    keeps it under half the cap.
    """
    yield
    from bayes_rglm.runtime import guard_mappings

    guard_mappings()


def pytest_configure(config):
    config.addinivalue_line("markers", "x64: run the test with JAX's x64 on (tests of internals, called directly)")


@pytest.fixture(autouse=True)
def _x64_for_internals(request):
    """Tests marked ``x64`` call bayes_rglm's internals (which run inside its precision scope when reached
    through the public API) directly, so they turn x64 on for themselves."""
    if request.node.get_closest_marker("x64") is None:
        yield
        return
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="session")
def rng():
    return np.random.default_rng(20261129)
