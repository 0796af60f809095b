"""``GaussianPrior(hierarchical=True)``: per-layer weight scales ``prior_scale{l} ~ HalfNormal(scale_l)`` are
estimated by SVI and NUTS (MAP and Laplace refuse: the joint density has no maximum as a scale goes to 0).

The check that can fail: the posterior of the output layer's scale follows the data.  With 10 standardised
inputs and y generated from coefficients of size 1, the scale must be near the coefficients' size; with y
unrelated to X, it must be much smaller (the weights are shrunk together).
"""

from __future__ import annotations

import numpy as np
import pytest

import bayes_rglm as br

N, P = 200, 10


def _data(signal: bool):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((N, P))
    beta = rng.choice([-1.0, 1.0], P) if signal else np.zeros(P)
    return X, X @ beta + rng.standard_normal(N)


@pytest.fixture(scope="module", params=[True, False], ids=["signal", "noise"])
def svi_fit(request):
    X, y = _data(request.param)
    model = br.RGLM("gaussian", prior=br.GaussianPrior(scale=2.0, hierarchical=True))
    fit = model.fit(
        X, y, method="svi", guide="normal", num_steps=3000, learning_rate=0.02, num_samples=2000, progress=False
    )
    return request.param, fit


def test_svi_draws_the_scales(svi_fit):
    _, fit = svi_fit
    draws = fit.samples["prior_scale0"]
    assert draws.shape == (1, 2000)
    # The data inform the scale: its posterior is far narrower than its HalfNormal(2) prior (sd 1.21).
    assert draws.std() < 0.5 * 2.0 * np.sqrt(1 - 2 / np.pi), draws.std()
    assert fit.params["prior_scale0"] == pytest.approx(draws.mean(), rel=1e-12)


def test_svi_scale_follows_the_data(svi_fit):
    signal, fit = svi_fit
    scale = float(np.median(fit.samples["prior_scale0"]))
    if signal:
        assert 0.6 < scale < 1.6, scale  # |beta_j| = 1 for all j
    else:
        assert scale < 0.25, scale  # shrunk: no coefficient is needed


@pytest.mark.slow
def test_nuts_hierarchical_agrees_with_svi_on_the_signal(svi_fit):
    signal, fit = svi_fit
    if not signal:
        pytest.skip("one case is enough")
    X, y = _data(True)
    model = br.RGLM("gaussian", prior=br.GaussianPrior(scale=2.0, hierarchical=True))
    nuts = model.fit(X, y, method="nuts", num_warmup=300, num_samples=300, num_chains=2, progress=False)
    assert nuts.samples["prior_scale0"].shape == (2, 300)
    np.testing.assert_allclose(nuts.params["w0"][:, 0], fit.params["w0"][:, 0], atol=0.05)
    np.testing.assert_allclose(
        np.median(nuts.samples["prior_scale0"]), np.median(fit.samples["prior_scale0"]), rtol=0.2
    )


def test_map_refuses_hierarchical():
    X, y = _data(True)
    model = br.RGLM("gaussian", prior=br.GaussianPrior(scale=2.0, hierarchical=True))
    with pytest.raises(ValueError, match="hierarchical"):
        model.fit(X, y, method="map")
