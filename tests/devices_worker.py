"""Run by tests/test_devices.py in a subprocess with four forced CPU devices; prints one JSON line.

Each case fits the same data on one device and sharded over 2 or 4 (rows padded to a multiple of
the device count) and reports what the test compares: log-likelihoods, standard errors,
posterior summaries and compilation counts.
"""

import json
import os
import sys
import warnings

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"

import jax  # noqa: E402
import numpy as np  # noqa: E402

import bayes_rglm as br  # noqa: E402
from bayes_rglm.runtime import compilations  # noqa: E402

warnings.simplefilter("ignore")


def glm_data(n=1001, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    return X, rng.poisson(np.exp(0.4 * X[:, 0] - 0.3 * X[:, 1] + 0.2)).astype(float)


def net_data(n=601, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    return X, (np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] + 0.3 * rng.standard_normal(n) > 0).astype(float)


def flat(d):
    return np.concatenate([np.ravel(d[k]) for k in sorted(d)]).tolist()


def main():
    out = {"device_count": jax.device_count()}
    X, y = glm_data()
    for method in ("mle", "map", "laplace"):
        for devices in (None, 4):
            fit = br.RGLM("poisson").fit(X, y, method=method, devices=devices, seed=0)
            row = {"params": flat(fit.params), "devices": fit.info["devices"]}
            if method == "laplace":
                row["sd"] = flat({k: np.std(v, axis=(0, 1)) for k, v in fit.samples.items()})
            else:
                row["loglik"] = fit.stats["loglik"]
                row["bse"] = flat(fit.bse)
            out[f"{method}-{devices}"] = row
    Xn, yn = net_data()
    net = br.RGLM("bernoulli", hidden=(4,), activation="tanh")
    for devices in (None, 2, 4):
        fit = net.fit(Xn, yn, method="map", devices=devices)
        out[f"net-{devices}"] = {"objective": fit.info["objective"], "bse": flat(fit.bse), "params": flat(fit.params)}
    with compilations() as counter:
        net.fit(Xn, yn, method="map", devices=4, seed=3)
    out["net-refit-compilations"] = counter.count
    for devices in (None, 4):
        means, sds = [], []
        for seed in range(3):
            fit = br.RGLM("poisson").fit(
                X, y, method="svi", batch_size=128, num_steps=4000, devices=devices, seed=seed, progress=False
            )
            means.append(flat(fit.params))
            sds.append(flat({k: np.std(v, axis=(0, 1)) for k, v in fit.samples.items()}))
        out[f"svi-{devices}"] = means
        out[f"svi-sd-{devices}"] = sds
    with compilations() as counter:
        br.RGLM("poisson").fit(
            X, y, method="svi", batch_size=128, num_steps=300, learning_rate=0.02, devices=4, seed=9, progress=False
        )
    out["svi-refit-compilations"] = counter.count
    nuts = {"num_warmup": 300, "num_samples": 300, "num_chains": 4, "progress": False}
    for method in ("parallel", "sequential"):
        fit = br.RGLM("poisson").fit(X, y, method="nuts", chain_method=method, seed=0, **nuts)
        out[f"nuts-{method}"] = {
            "chain_method": fit.info["chain_method"],
            "mean": flat(fit.params),
            "sd": flat({k: np.std(v, axis=(0, 1)) for k, v in fit.samples.items()}),
        }
    with compilations() as counter:
        br.RGLM("poisson").fit(X, y, method="nuts", chain_method="parallel", seed=5, **nuts)
    out["nuts-refit-compilations"] = counter.count
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
