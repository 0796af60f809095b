"""``fit(..., devices=)``: rows sharded over several devices reach the one-device answers.

The fits run in a subprocess with four forced CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=4``, tests/devices_worker.py), so the rest of
the suite keeps one device.  The bad inputs are checked here, on this process's one device.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bayes_rglm as br
from bayes_rglm.inference import devices as devices_module
from bayes_rglm.inference.devices import resolve_devices

WORKER = Path(__file__).with_name("devices_worker.py")


@pytest.fixture(scope="module")
def sharded():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    done = subprocess.run([sys.executable, str(WORKER)], capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def test_the_worker_saw_four_devices(sharded):
    assert sharded["device_count"] == 4
    assert sharded["mle-4"]["devices"] == 4 and sharded["mle-None"]["devices"] == 1


@pytest.mark.parametrize("method", ["mle", "map"])
def test_glm_optimum_and_standard_errors_match_one_device(sharded, method):
    one, four = sharded[f"{method}-None"], sharded[f"{method}-4"]
    # 1,001 rows padded to 1,008 (a multiple of 4, weight-0 rows): the same optimum to 1e-5 relative.
    assert four["loglik"] == pytest.approx(one["loglik"], rel=1e-10)
    np.testing.assert_allclose(four["params"], one["params"], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(four["bse"], one["bse"], rtol=1e-8)


def test_laplace_matches_one_device(sharded):
    one, four = sharded["laplace-None"], sharded["laplace-4"]
    np.testing.assert_allclose(four["params"], one["params"], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(four["sd"], one["sd"], rtol=1e-8)


@pytest.mark.parametrize("devices", [2, 4])
def test_network_map_matches_one_device(sharded, devices):
    one, many = sharded["net-None"], sharded[f"net-{devices}"]
    assert many["objective"] == pytest.approx(one["objective"], rel=1e-8)
    np.testing.assert_allclose(many["params"], one["params"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(many["bse"], one["bse"], rtol=1e-5)


def test_sharded_refits_compile_nothing(sharded):
    assert sharded["net-refit-compilations"] == 0
    assert sharded["svi-refit-compilations"] == 0


def test_sharded_svi_is_statistically_the_same(sharded):
    mle, se = np.array(sharded["mle-None"]["params"]), np.array(sharded["mle-None"]["bse"])
    one, four = np.array(sharded["svi-None"]), np.array(sharded["svi-4"])
    # Each device draws its share of the batch from its own rows: the mean over three seeds lies within a
    # fraction of a standard error of the MLE (flat-ish prior, 1,001 rows), as on one device.
    assert np.all(np.abs(four.mean(axis=0) - mle) / se < 0.4)
    assert np.all(np.abs(one.mean(axis=0) - mle) / se < 0.4)
    assert np.all(np.abs(four.mean(axis=0) - one.mean(axis=0)) / se < 0.4)
    # The same posterior sds: each device's share of the batch is scaled to its rows (a wrong scale, e.g. by
    # the device count, would change them by its square root).
    sd_one, sd_four = np.mean(sharded["svi-sd-None"], axis=0), np.mean(sharded["svi-sd-4"], axis=0)
    np.testing.assert_allclose(sd_four, sd_one, rtol=0.15)


def test_nuts_chains_run_one_per_device(sharded):
    parallel, sequential = sharded["nuts-parallel"], sharded["nuts-sequential"]
    assert parallel["chain_method"] == "parallel"  # four devices for four chains: one pmap program
    assert sharded["nuts-refit-compilations"] == 0
    # Same seed, same chains: the draws agree up to floating-point order, so the summaries agree closely
    # (well inside the Monte Carlo error of 1,200 draws, about 0.03 posterior sd).
    sd = np.array(sequential["sd"])
    assert np.all(np.abs(np.array(parallel["mean"]) - sequential["mean"]) / sd < 0.05)
    np.testing.assert_allclose(parallel["sd"], sd, rtol=0.1)


# --- bad input (one device here) ---------------------------------------------------------------------


def _xy():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 2))
    return X, rng.poisson(1.0, 40).astype(float)


@pytest.mark.parametrize(
    "devices, error, match",
    [
        (2, ValueError, "more devices than exist"),
        (0, ValueError, "at least 1"),
        (-1, ValueError, "at least 1"),
        (True, TypeError, "devices must be None"),
        (1.5, TypeError, "devices must be None"),
        ("cpu", TypeError, "devices must be None"),
        ([], ValueError, "devices is empty"),
        (["cpu:0"], TypeError, "jax devices"),
        ({"a": 1}, TypeError, "devices must be None"),
    ],
)
def test_bad_devices_are_named(devices, error, match):
    X, y = _xy()
    with pytest.raises(error, match=match):
        br.RGLM("poisson").fit(X, y, method="map", devices=devices)


def test_a_device_listed_twice_is_refused():
    import jax

    with pytest.raises(ValueError, match="more than once"):
        resolve_devices([jax.devices()[0], jax.devices()[0]])


def test_mixed_platforms_are_refused(monkeypatch):
    class Fake:
        def __init__(self, platform, i):
            self.platform, self.i = platform, i

        def __repr__(self):
            return f"{self.platform}:{self.i}"

    monkeypatch.setattr(devices_module.jax, "Device", Fake)
    with pytest.raises(ValueError, match="mixes platforms"):
        resolve_devices([Fake("cpu", 0), Fake("gpu", 0)])


def test_one_device_runs_unsharded():
    import jax

    X, y = _xy()
    fit = br.RGLM("poisson").fit(X, y, method="mle", devices=1)
    assert fit.info["devices"] == 1
    assert resolve_devices([jax.devices()[0]]) == (jax.devices()[0],)
    assert devices_module.mesh_of(resolve_devices(1)) is None


def test_nuts_points_to_parallel_chains():
    X, y = _xy()
    with pytest.raises(ValueError, match="chain_method='parallel'"):
        br.RGLM("poisson").fit(X, y, method="nuts", devices=1)
