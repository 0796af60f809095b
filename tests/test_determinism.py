"""Determinism: on CPU the same seed gives bit-identical results for every method, in one process and across
processes (NUTS with vectorised chains, SVI on minibatches included); another seed gives other draws."""

import hashlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

SCRIPT = textwrap.dedent(
    """
    import hashlib, sys
    import numpy as np
    import bayes_rglm as br

    def data():
        rng = np.random.default_rng(11)
        X = rng.standard_normal((120, 3))
        y = (rng.random(120) < 1 / (1 + np.exp(-X @ np.array([1.0, -0.5, 0.3])))).astype(float)
        return X, y

    CASES = {
        "mle": ("bernoulli", (), {}),
        "map": ("bernoulli", (4,), {"num_restarts": 3}),
        "laplace": ("bernoulli", (4,), {"predictive": "sample", "num_samples": 200}),
        "svi": ("bernoulli", (), {"batch_size": 32, "num_steps": 300, "num_samples": 100}),
        "nuts": ("bernoulli", (), {"num_chains": 2, "chain_method": "vectorized", "num_warmup": 100,
                                   "num_samples": 100}),
    }

    def digest(method, seed):
        family, hidden, options = CASES[method]
        model = br.RGLM(family, hidden=hidden, activation="tanh", prior=br.GaussianPrior(scale=1.0))
        X, y = data()
        fit = model.fit(X, y, method=method, seed=seed, progress=False, **options)
        h = hashlib.sha256()
        for source in (fit.params, fit.samples or {}):
            for name in sorted(source):
                h.update(name.encode())
                h.update(np.ascontiguousarray(source[name]).tobytes())
        return h.hexdigest()

    if __name__ == "__main__":
        print(" ".join(digest(m, 0) for m in ("svi", "nuts")))
    """
)


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    path = tmp_path_factory.mktemp("determinism") / "harness.py"
    path.write_text(SCRIPT)
    namespace: dict = {}
    exec(compile(SCRIPT, str(path), "exec"), namespace)  # noqa: S102 - our own script, also run as a subprocess
    return path, namespace["digest"]


@pytest.mark.parametrize("method", ["mle", "map", "laplace", "svi", "nuts"])
def test_same_seed_gives_identical_results(harness, method):
    _, digest = harness
    assert digest(method, 0) == digest(method, 0)


@pytest.mark.parametrize("method", ["map", "laplace", "svi", "nuts"])
def test_another_seed_gives_other_results(harness, method):
    _, digest = harness
    assert digest(method, 0) != digest(method, 1)


def test_identical_across_processes(harness):
    path, digest = harness
    runs = [
        subprocess.run([sys.executable, str(path)], capture_output=True, text=True, check=True, timeout=600).stdout
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    assert runs[0].split() == [digest("svi", 0), digest("nuts", 0)]


def test_digest_sees_a_one_ulp_change():
    """The comparison is bit-exact: a change in the last bit of one draw changes the digest."""
    a = np.linspace(0.0, 1.0, 5)
    b = a.copy()
    b[2] = np.nextafter(b[2], 2.0)
    assert hashlib.sha256(a.tobytes()).hexdigest() != hashlib.sha256(b.tobytes()).hexdigest()
