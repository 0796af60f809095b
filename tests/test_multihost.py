"""Two processes joined by ``jax.distributed`` on localhost fit one model together (CPU, gloo collectives).

Each process passes its own rows (500 and 401 of 901); the MLE and MAP they reach together must be
the single-process optimum on all 901 rows.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bayes_rglm as br

WORKER = Path(__file__).with_name("multihost_worker.py")
sys.path.insert(0, str(Path(__file__).parent))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def together():
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(i), str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in (0, 1)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    line = next(line for line in outs[0][0].splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


@pytest.fixture(scope="module")
def alone():
    from multihost_worker import data

    X, y = data()
    return X, y


def _flat(d):
    return np.concatenate([np.ravel(d[k]) for k in sorted(d)])


def test_two_processes_share_their_devices(together):
    assert together["processes"] == 2 and together["devices"] == 2
    assert together["map"]["devices"] == 2


@pytest.mark.parametrize("method", ["mle", "map"])
def test_two_processes_reach_the_single_process_optimum(together, alone, method):
    X, y = alone
    single = br.RGLM("poisson").fit(X, y, method=method)
    assert together[method]["objective"] == pytest.approx(single.info["objective"], rel=1e-10)
    np.testing.assert_allclose(together[method]["params"], _flat(single.params), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(together[method]["bse"], _flat(single.bse), rtol=1e-7)


def test_two_processes_fit_a_network_to_the_single_process_optimum(together, alone):
    X, y = alone
    single = br.RGLM("bernoulli", hidden=(3,), activation="tanh").fit(X, (y > 1).astype(float), method="map")
    assert together["net"]["objective"] == pytest.approx(single.info["objective"], rel=1e-5)


def test_two_processes_run_laplace_and_svi(together, alone):
    X, y = alone
    single = br.RGLM("poisson").fit(X, y, method="laplace")
    # Laplace: the same mode and precision, and the same seed for its draws.
    np.testing.assert_allclose(together["laplace"], np.ravel(single.params["w0"]), rtol=1e-6, atol=1e-9)
    # SVI: each process's device draws its share of every batch from its own rows; the posterior mean
    # lies within a fraction of a standard error of the MLE, as on one process.
    mle = br.RGLM("poisson").fit(X, y, method="mle")
    z = (np.array(together["svi"]) - np.ravel(mle.params["w0"])) / np.ravel(mle.bse["w0"])
    assert np.all(np.abs(z) < 0.6)
    # ... and its sds are those of the same SVI on one process (a likelihood scaled wrongly over the processes,
    # by 1/2, would make them sqrt(2) times larger)
    one = br.RGLM("poisson").fit(X, y, method="svi", batch_size=128, num_steps=3000, tol=None, progress=False)
    np.testing.assert_allclose(together["svi_sd"], np.ravel(np.std(one.samples["w0"], axis=(0, 1))), rtol=0.2)


def test_several_processes_without_jax_distributed_are_refused(monkeypatch):
    monkeypatch.setenv("JAX_NUM_PROCESSES", "2")
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="jax.distributed is not initialised"):
        br.RGLM("poisson").fit(rng.normal(size=(20, 2)), rng.poisson(1.0, 20), method="map", devices=1)
