"""Shared fixtures; JAX's persistent compilation cache so repeated runs skip XLA compilation."""

import os

import jax
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update(
    "jax_compilation_cache_dir",
    os.environ.get("BAYES_RGLM_JAX_CACHE", os.path.expanduser("~/.cache/bayes_rglm/jax")),
)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


@pytest.fixture(scope="session")
def rng():
    return np.random.default_rng(20261129)
