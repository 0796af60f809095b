"""One of two processes of a ``jax.distributed`` run on localhost (tests/test_multihost.py; README "Scaling out").

Usage: ``python tests/multihost_worker.py PROCESS_ID PORT``.  Each process reads its own half of the
rows, and the two fit one model together over both processes' devices: the rows are sharded over
the processes, the parameters replicated, and the sums all-reduced (gloo collectives on CPU).
Process 0 prints one JSON line with the results.
"""

import json
import sys

import jax
import numpy as np

import bayes_rglm as br


def data(n=901, seed=0):
    """The whole data set (every process can make it; each keeps only its own rows)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, -2.0]
    y = rng.poisson(np.exp(0.3 * X[:, 0] - 0.2 * X[:, 1] + 0.1)).astype(float)
    return X, y


def main():
    process_id, port = int(sys.argv[1]), int(sys.argv[2])
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=process_id)
    X, y = data()
    # Unequal halves: the processes agree on one padded size and on the standardisation.
    mine = slice(0, 500) if process_id == 0 else slice(500, None)
    out = {"processes": jax.process_count(), "devices": jax.device_count()}
    for method in ("mle", "map"):
        fit = br.RGLM("poisson").fit(X[mine], y[mine], method=method, devices=jax.devices())
        out[method] = {
            "params": np.concatenate([np.ravel(fit.params[k]) for k in sorted(fit.params)]).tolist(),
            "bse": np.concatenate([np.ravel(fit.bse[k]) for k in sorted(fit.bse)]).tolist(),
            "objective": float(fit.info["objective"]),
            "devices": fit.info["devices"],
        }
    laplace = br.RGLM("poisson").fit(X[mine], y[mine], method="laplace", devices=jax.devices())
    out["laplace"] = np.ravel(laplace.params["w0"]).tolist()
    svi = br.RGLM("poisson").fit(
        X[mine], y[mine], method="svi", batch_size=128, num_steps=3000, tol=None, progress=False, devices=jax.devices()
    )
    out["svi"] = np.ravel(svi.params["w0"]).tolist()
    out["svi_sd"] = np.ravel(np.std(svi.samples["w0"], axis=(0, 1))).tolist()
    net = br.RGLM("bernoulli", hidden=(3,), activation="tanh")
    fit = net.fit(X[mine], (y[mine] > 1).astype(float), method="map", devices=jax.devices())
    out["net"] = {"objective": float(fit.info["objective"])}
    if process_id == 0:
        print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
