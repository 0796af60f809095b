"""A refit with the same shapes compiles nothing, whatever its run-time options (counted by jax.monitoring)."""

import warnings

import numpy as np
import pytest

import bayes_rglm as br
from bayes_rglm.inference.target import build
from bayes_rglm.runtime import compilations

pytestmark = pytest.mark.x64  # builds targets directly (see conftest)


@pytest.fixture(autouse=True)
def _fresh_programs():
    """Start each test with no compiled program in memory.

    Every fit runs :func:`bayes_rglm.runtime.guard_mappings`, which clears the caches when the process
    nears its memory-mapping cap; late in a whole-suite run that can fall between a test's first fit
    and its refit and make the refit compile (as the clean-clone CI run saw once, 11 compilations).
    Cleared here, the few programs a test compiles stay far below that cap.
    """
    br.clear_caches()


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = rng.poisson(np.exp(0.4 * X[:, 0] - 0.3 * X[:, 1])).astype(float)
    return X, y


@pytest.mark.parametrize(
    "model, method, first, refit",
    [
        (br.RGLM("poisson"), "mle", {}, {"seed": 3}),
        (br.RGLM("poisson"), "map", {"tol": 1e-10}, {"tol": 1e-10, "seed": 5}),
        (
            br.RGLM("poisson", hidden=(3,), activation="tanh"),
            "map",
            {"num_restarts": 1},
            {"num_restarts": 2, "seed": 7},
        ),
        (
            br.RGLM("poisson", hidden=(3,), activation="tanh"),
            "laplace",
            {"num_samples": 200},
            {"num_samples": 200, "seed": 2},
        ),
        (
            br.RGLM("poisson", hidden=(3,), activation="tanh"),
            "svi",
            {"num_steps": 300, "batch_size": 64, "learning_rate": 0.01, "num_samples": 100},
            {"num_steps": 777, "batch_size": 62, "learning_rate": 0.03, "num_samples": 900, "seed": 4},
        ),
        (
            br.RGLM("poisson"),
            "svi",
            {"num_steps": 200, "num_samples": 100},
            {"num_epochs": 3, "learning_rate": 0.002, "num_samples": 1000, "seed": 1},
        ),
    ],
    ids=["mle", "map-glm", "map-net", "laplace-net", "svi-minibatch", "svi-full-batch"],
)
def test_refit_with_new_options_compiles_nothing(model, method, first, refit):
    X, y = _data()
    model.fit(X, y, method=method, progress=False, **first)
    X2, y2 = _data(seed=1)  # other data of the same shapes
    with compilations() as counter:
        fit = model.fit(X2, y2, method=method, progress=False, **refit)
    assert counter.count == 0
    if method == "svi":
        stop = fit.info["stopping_step"]  # the stopping rule may end the run early (inference.svi)
        planned = refit.get("num_steps", 3)
        assert len(fit.info["elbo"]) == (planned if stop is None else int(np.ceil(stop / 0.75)))
        assert fit.samples["w0"].shape[1] == refit["num_samples"]


def test_svi_batch_size_in_another_bucket_compiles_once():
    X, y = _data()
    model = br.RGLM("poisson")
    model.fit(X, y, method="svi", num_steps=100, batch_size=64, num_samples=50, progress=False)
    with compilations() as counter:
        model.fit(X, y, method="svi", num_steps=100, batch_size=200, num_samples=50, progress=False)
    assert counter.count >= 1


@pytest.mark.parametrize("chain_method", ["sequential", "parallel", "vectorized"])
def test_nuts_refit_with_a_new_seed_and_target_accept_compiles_nothing(chain_method):
    X, y = _data(n=40)
    model = br.RGLM("poisson")
    options = {"num_warmup": 100, "num_samples": 100, "num_chains": 2, "chain_method": chain_method}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", br.DiagnosticsWarning)  # 2 x 100 draws may be short for the ESS check
        model.fit(X, y, method="nuts", seed=0, target_accept=0.8, progress=False, **options)
        X2, y2 = _data(n=40, seed=1)
        with compilations() as counter:
            fit = model.fit(X2, y2, method="nuts", seed=5, target_accept=0.9, progress=False, **options)
    assert counter.count == 0
    assert fit.samples["w0"].shape == (2, 100, 3, 1)


def test_nuts_of_a_glm_starts_from_the_map_program_of_method_map(monkeypatch):
    # Depth 0: one MAP serves every chain, and it is the program a MAP fit of the same shapes compiled.
    from bayes_rglm.inference import nuts

    def refuse(*args, **kwargs):
        raise AssertionError("a GLM's chains do not need one MAP each")

    monkeypatch.setattr(nuts, "optimise_batch", refuse)
    X, y = _data(40, seed=11)
    model = br.RGLM("poisson")
    map_fit = model.fit(X, y, method="map", seed=0)
    target = build(model, model.prepare(X, y))
    with compilations() as counter:
        starts = nuts._map_starts(target, 0, 4)
    assert counter.count == 0
    # Every chain starts within its jitter (1% of each value) of the one MAP, in the standardised
    # coordinates (weights times the column scales), and no two chains start alike.
    w0 = np.asarray(starts["w0"])[:, :, 0]  # (chains, features)
    expected = map_fit.params["w0"][:, 0] * np.asarray(target.problem.scale)[: X.shape[1]]
    assert np.all(np.ptp(w0, axis=0) > 0)
    np.testing.assert_allclose(w0, np.broadcast_to(expected, w0.shape), rtol=0.05, atol=1e-3)
