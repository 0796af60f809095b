"""NUTS chain methods: ``"parallel"`` (the default) runs one-chain programs in host threads on CPU when there
are fewer devices than chains, one thread per core; the chains really overlap, the draws do not depend on
the threads' timing, and they sample the posterior that ``"sequential"`` samples."""

from __future__ import annotations

import threading
import time
import warnings

import jax
import numpy as np
import pytest

import bayes_rglm as br
from bayes_rglm.inference import nuts

OPTIONS = {"num_warmup": 200, "num_samples": 300, "num_chains": 3, "progress": False}


def _data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    y = rng.poisson(np.exp(0.5 + 0.4 * X[:, 0] - 0.3 * X[:, 1])).astype(float)
    return X, y


def _fit(**options):
    X, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", br.DiagnosticsWarning)
        return br.RGLM("poisson").fit(X, y, method="nuts", seed=1, **{**OPTIONS, **options})


@pytest.fixture
def cores(monkeypatch):
    """Pretend the process may use ``n`` cores (the number of host threads follows it)."""

    def use(n):
        monkeypatch.setattr(nuts.os, "sched_getaffinity", lambda pid: set(range(n)), raising=False)

    return use


@pytest.fixture
def calls(monkeypatch):
    """Record (thread name, start, end) of every call of the sampler's chunk program."""
    record = []
    lock = threading.Lock()
    build = nuts._compiled_sampler

    def wrapped(*args, **kwargs):
        init, chunk = build(*args, **kwargs)

        def timed(*a):
            started = time.perf_counter()
            out = chunk(*a)
            jax.block_until_ready(out)
            with lock:
                record.append((threading.current_thread().name, started, time.perf_counter()))
            return out

        return init, timed

    monkeypatch.setattr(nuts, "_compiled_sampler", wrapped)
    return record


def test_parallel_is_the_default_and_runs_a_thread_per_core(cores, calls):
    cores(2)
    fit = _fit()
    assert fit.info["chain_method"] == "parallel"
    assert fit.info["chain_threads"] == 2
    assert fit.samples["w0"].shape == (3, 300, 2, 1)
    threads = {name for name, _, _ in calls if name != "bayes_rglm-nuts-compile"}
    assert threads == {"bayes_rglm-chain_0", "bayes_rglm-chain_1"}
    # XLA runs the programs without Python's lock: calls from the two threads overlap in time.
    by_thread = {t: [(s, e) for name, s, e in calls if name == t] for t in threads}
    first, second = by_thread.values()
    assert any(s1 < e2 and s2 < e1 for s1, e1 in first for s2, e2 in second)


def test_one_core_runs_the_chains_in_one_program(cores, calls):
    cores(1)
    fit = _fit()
    assert fit.info["chain_method"] == "sequential"
    assert fit.info["chain_threads"] == 1
    assert {name for name, _, _ in calls} == {"bayes_rglm-nuts-compile", threading.current_thread().name}


def test_threaded_draws_do_not_depend_on_timing_and_match_sequential(cores):
    cores(2)
    a, b = _fit(), _fit()
    for name in a.samples:
        np.testing.assert_array_equal(a.samples[name], b.samples[name])
    # The same posterior as the one-program sequential chains: means within Monte Carlo error.
    sequential = _fit(chain_method="sequential", num_samples=600)
    for name in ("w0", "b0"):
        draws = np.concatenate([a.samples[name], sequential.samples[name]], axis=1)
        sd = draws.std(axis=(0, 1))
        mcse = sd / np.sqrt(3 * 300 / 2)  # a conservative ESS: half the threaded run's draws
        gap = np.abs(a.samples[name].mean(axis=(0, 1)) - sequential.samples[name].mean(axis=(0, 1)))
        assert np.all(gap < 4 * mcse), (name, gap, mcse)


def test_an_error_in_one_chain_stops_the_fit(cores, monkeypatch):
    cores(2)
    build = nuts._compiled_sampler

    def failing(*args, **kwargs):
        init, chunk = build(*args, **kwargs)
        seen = []

        def chunk_failing(*a):
            seen.append(1)
            if len(seen) == 3:
                raise RuntimeError("chain failed on purpose")
            return chunk(*a)

        return init, chunk_failing

    monkeypatch.setattr(nuts, "_compiled_sampler", failing)
    with pytest.raises(RuntimeError, match="on purpose"):
        _fit()


def test_one_chain_runs_the_sequential_program_not_a_pmap(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("one chain needs no pmap")

    monkeypatch.setattr(nuts.jax, "pmap", refuse)
    nuts._compiled_sampler.cache_clear()
    fit = _fit(num_chains=1)
    assert fit.info["chain_method"] == "sequential"
    assert fit.samples["w0"].shape == (1, 300, 2, 1)
