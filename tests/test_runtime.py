"""Compilation counting and the guard on the memory mappings that compiled programs hold."""

import jax
import jax.numpy as jnp
import pytest

from bayes_rglm import runtime


def test_compilations_counts_new_programs_only():
    f = jax.jit(lambda x: jnp.sin(x) * 3.0 + 1.0)
    x = jnp.ones(7)
    with runtime.compilations() as first:
        f(x)
    with runtime.compilations() as again:
        f(x)
    assert first.count == 1
    assert again.count == 0


def _compile_many(k: int):
    functions = [jax.jit(lambda x, i=i: jnp.cos(x) * i + jnp.sum(x)) for i in range(k)]
    for f in functions:
        f(jnp.ones(5)).block_until_ready()
    return functions


@pytest.mark.skipif(runtime.mapping_count() is None, reason="needs Linux's /proc")
@pytest.mark.parametrize("share, clears", [(0.0, True), (1.0, False)], ids=["over-threshold", "under-threshold"])
def test_guard_clears_compiled_programs_only_past_the_threshold(monkeypatch, share, clears):
    cached = runtime.compiled_cache(maxsize=4)(lambda k: jax.jit(lambda x: x * k))
    cached(2.0)(jnp.ones(3))
    monkeypatch.setattr(runtime, "MAPPING_SHARE", share)
    monkeypatch.setattr(runtime, "CHECK_EVERY", 1)
    functions = _compile_many(40)  # about six mappings each
    before = runtime.mapping_count()[0]
    runtime.guard_mappings()
    after = runtime.mapping_count()[0]
    if clears:
        assert before - after > 100
        assert cached.cache_info().currsize == 0
        assert functions[0]._cache_size() == 0
    else:
        assert abs(before - after) < 20
        assert cached.cache_info().currsize == 1
        assert functions[0]._cache_size() == 1


def test_compiler_options_by_program_kind():
    """Small programs: optimisation level 0 and the elemental kernel emitter; depth-0 (matmul-bound)
    programs: the emitter only; others: XLA's defaults."""
    quick = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}
    assert runtime.compiler_options(small=True) == quick
    assert runtime.compiler_options(small=False, matmul_bound=True) == {"xla_cpu_use_fusion_emitters": False}
    assert runtime.compiler_options(small=False) == {}


def test_an_option_this_jaxlib_does_not_know_is_left_out(monkeypatch):
    monkeypatch.setattr(runtime, "_SIMPLE_KERNELS", {"xla_cpu_no_such_option_here": True})
    assert runtime.compiler_options(small=False, matmul_bound=True) == {}
    assert runtime.compiler_options(small=True) == {"xla_backend_optimization_level": 0}
    # and the program compiles and runs
    assert float(runtime.jit(lambda x: x * 2.0, small=True, matmul_bound=True)(jnp.ones(()))) == 2.0
