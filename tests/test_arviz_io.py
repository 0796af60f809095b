"""ArviZ conversion (groups, dims, coords; loo/waic/compare) and exact save/load round trips.

Small fits reused across tests: a depth-0 Poisson model on n = 60 rows with a
DataFrame ``X`` (columns ``age``, ``dose``) by Laplace, SVI and NUTS (2 chains
x 200 draws); a categorical (K = 3) and a one-hidden-layer fit for dims; an
MLE fit for the point-estimate round trip.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az

import bayes_rglm as br

N = 60
FEATURES = ["age", "dose"]
PRIOR = br.GaussianPrior(scale=2.5, bias_scale=5.0)

pytestmark = pytest.mark.filterwarnings(
    "ignore:Shape validation failed",  # ArviZ on single-chain (Laplace, SVI) posteriors
    "ignore::UserWarning:arviz",  # loo/waic pointwise warnings on small data
)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    X = pd.DataFrame(rng.standard_normal((N, 2)), columns=FEATURES)
    y = pd.Series(rng.poisson(np.exp(0.4 + 0.5 * X["age"] - 0.3 * X["dose"])).astype(float), name="count")
    return X, y


def _fit(data, method, **options):
    X, y = data
    return br.RGLM("poisson", prior=PRIOR).fit(X, y, method=method, seed=0, progress=False, **options)


@pytest.fixture(scope="module")
def laplace_fit(data):
    return _fit(data, "laplace", num_samples=400)


@pytest.fixture(scope="module")
def svi_fit(data):
    return _fit(data, "svi", num_steps=1500, learning_rate=0.02, num_samples=400)


@pytest.fixture(scope="module")
def nuts_fit(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", br.DiagnosticsWarning)  # 2 x 200 draws: ESS may fall below 100
        return _fit(data, "nuts", num_warmup=200, num_samples=200, num_chains=2)


@pytest.fixture
def fits(request):
    """``fits[method]``: the module's fit by that method, built on first use (each takes ~10-20 s)."""

    class Fits(dict):
        def __missing__(self, method):
            self[method] = request.getfixturevalue(f"{method}_fit")
            return self[method]

    return Fits()


@pytest.fixture(scope="module")
def mle_fit(data):
    return _fit(data, "mle")


BAYES = ["laplace", "svi", "nuts"]


# --- InferenceData: groups, values ----------------------------------------------------------------


@pytest.mark.parametrize("method", BAYES)
def test_groups(fits, method):
    idata = fits[method].to_arviz()
    groups = set(idata.groups())
    assert {"posterior", "log_likelihood", "observed_data", "constant_data"} <= groups
    assert ("sample_stats" in groups) == (method == "nuts")
    assert "posterior_predictive" not in groups
    assert "posterior_predictive" in fits[method].to_arviz(posterior_predictive=True).groups()


def test_nuts_sample_stats(fits):
    stats = fits["nuts"].to_arviz().sample_stats
    for name in ("diverging", "energy", "tree_depth", "step_size"):
        assert name in stats, name
        assert stats[name].shape == (2, 200), (name, stats[name].shape)
    assert stats["diverging"].dtype == bool
    assert np.all(stats["tree_depth"] >= 1) and np.all(stats["tree_depth"] <= 10)
    assert np.all(stats["step_size"] > 0)
    # Energy: for a 3-parameter posterior, E-BFMI (ArviZ) is well above the 0.3 danger line.
    assert np.all(az.bfmi(fits["nuts"].to_arviz()) > 0.3)


@pytest.mark.parametrize("method", BAYES)
def test_posterior_and_data_values(fits, data, method):
    fit = fits[method]
    X, y = data
    idata = fit.to_arviz()
    chains = 2 if method == "nuts" else 1
    draws = 200 if method == "nuts" else 400
    np.testing.assert_array_equal(idata.posterior["w0"].values, fit.samples["w0"])
    np.testing.assert_array_equal(idata.posterior["b0"].values, fit.samples["b0"])
    assert idata.log_likelihood["y"].shape == (chains, draws, N)
    np.testing.assert_allclose(idata.log_likelihood["y"].values, fit.log_likelihood(X, y), rtol=1e-12)
    np.testing.assert_array_equal(idata.observed_data["y"].values, y.to_numpy())
    np.testing.assert_array_equal(idata.constant_data["X"].values, X.to_numpy())


@pytest.mark.parametrize("method", BAYES)
def test_posterior_predictive(fits, data, method):
    """Replicated ``y``: one Poisson count per draw and row, with mean ``E[mu | data]``.

    Given the draws, ``sum(y_rep)`` of draw s is Poisson with mean ``sum(mu_s)``,
    so its average over the S draws differs from ``sum(fit.predict(X))`` (the
    same draws) only by Poisson noise with sd ``sqrt(sum(predict) / S)``.
    """
    X, _ = data
    fit = fits[method]
    y_rep = fit.to_arviz(posterior_predictive=True, seed=3).posterior_predictive["y"].values
    assert y_rep.shape == fit.samples["w0"].shape[:2] + (N,)
    assert np.all(y_rep >= 0) and np.all(y_rep == np.round(y_rep))
    totals = y_rep.reshape(-1, N).sum(axis=1)
    expected = fit.predict(X).sum()
    se = np.sqrt(expected / totals.size)
    assert abs(totals.mean() - expected) < 4 * se, (totals.mean(), expected, se)
    # A different seed gives different replicates.
    other = fit.to_arviz(posterior_predictive=True, seed=4).posterior_predictive["y"].values
    assert np.any(other != y_rep)


# --- dims and coords --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", BAYES)
def test_feature_coords(fits, method):
    posterior = fits[method].to_arviz().posterior
    assert posterior["w0"].dims == ("chain", "draw", "feature", "output")
    assert list(posterior["w0"].coords["feature"].values) == FEATURES
    assert posterior["b0"].dims == ("chain", "draw", "output")


def test_categorical_class_coord():
    rng = np.random.default_rng(5)
    X = pd.DataFrame(rng.standard_normal((N, 2)), columns=FEATURES)
    y = (np.arange(N) % 3).astype(float)
    fit = br.RGLM("categorical", prior=PRIOR).fit(X, y, method="laplace", num_samples=200, progress=False)
    posterior = fit.to_arviz().posterior
    assert posterior["w0"].dims == ("chain", "draw", "feature", "class")
    assert list(posterior["w0"].coords["class"].values) == [1, 2]
    assert list(posterior["w0"].coords["feature"].values) == FEATURES
    assert posterior["b0"].dims == ("chain", "draw", "class")
    assert fit.samples["w0"].shape == (1, 200, 2, 2)


def test_hidden_layer_dims(data):
    X, y = data
    model = br.RGLM("poisson", hidden=(3,), activation="tanh", prior=br.GaussianPrior(scale=1.0))
    fit = model.fit(X, y, method="laplace", num_samples=200, progress=False)
    posterior = fit.to_arviz().posterior
    assert posterior["w0"].dims == ("chain", "draw", "feature", "hidden0")
    assert posterior["b0"].dims == ("chain", "draw", "hidden0")
    assert posterior["w1"].dims == ("chain", "draw", "hidden0", "output")
    assert posterior["b1"].dims == ("chain", "draw", "output")
    assert list(posterior["hidden0"].values) == [0, 1, 2]
    assert posterior["w0"].shape == (1, 200, 2, 3)


# --- loo, waic, compare -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", BAYES)
def test_loo_and_waic(fits, method):
    """Finite elpd; for a 3-parameter well-specified GLM the effective number of parameters is ~3."""
    idata = fits[method].to_arviz()
    loo = az.loo(idata, pointwise=True)
    assert np.isfinite(loo.elpd_loo) and np.isfinite(loo.se) and loo.n_data_points == N
    assert 1.5 < loo.p_loo < 5.0, loo.p_loo
    assert np.all(loo.pareto_k.values < 0.7)
    waic = az.waic(idata)
    assert np.isfinite(waic.elpd_waic)
    assert abs(waic.elpd_waic - loo.elpd_loo) < 1.0, (waic.elpd_waic, loo.elpd_loo)
    # In-sample log pointwise predictive density bounds elpd_loo from above (by p_loo).
    ll = idata.log_likelihood["y"].values.reshape(-1, N)
    lppd = np.sum(np.log(np.mean(np.exp(ll), axis=0)))
    assert loo.elpd_loo < lppd
    assert lppd - loo.elpd_loo == pytest.approx(loo.p_loo, rel=1e-6)


def test_compare(fits):
    """Laplace and NUTS approximate the same posterior: their elpd_loo agree to well within its standard error."""
    table = az.compare({"laplace": fits["laplace"].to_arviz(), "nuts": fits["nuts"].to_arviz()})
    assert set(table.index) == {"laplace", "nuts"}
    assert np.all(np.isfinite(table["elpd_loo"]))
    assert np.all(np.abs(table["elpd_diff"]) < 0.5 * table["se"].max())
    assert abs(table.loc["laplace", "elpd_loo"] - table.loc["nuts", "elpd_loo"]) < 1.0


# --- save / load ------------------------------------------------------------------------------------


def _assert_same_predictions(fit, loaded, X):
    np.testing.assert_array_equal(loaded.predict(X), fit.predict(X))
    lower, upper = loaded.predict_interval(X, prob=0.8, seed=1)
    expected_lower, expected_upper = fit.predict_interval(X, prob=0.8, seed=1)
    np.testing.assert_array_equal(lower, expected_lower)
    np.testing.assert_array_equal(upper, expected_upper)


@pytest.mark.parametrize("method", BAYES)
def test_save_load_bayes(fits, data, method, tmp_path):
    fit = fits[method]
    X, y = data
    path = tmp_path / f"{method}.nc"
    fit.save(path)
    loaded = br.load(path)
    assert loaded.method == method
    assert loaded.feature_names == FEATURES
    assert loaded.model == fit.model
    assert set(loaded.samples) == set(fit.samples) and set(loaded.params) == set(fit.params)
    for name in fit.samples:
        assert loaded.samples[name].dtype == np.asarray(fit.samples[name]).dtype
        np.testing.assert_array_equal(loaded.samples[name], fit.samples[name])
    for name in fit.params:
        np.testing.assert_array_equal(loaded.params[name], fit.params[name])
    _assert_same_predictions(fit, loaded, X)
    np.testing.assert_array_equal(loaded.log_likelihood(X, y), fit.log_likelihood(X, y))
    pd.testing.assert_frame_equal(loaded.summary(), fit.summary())


def test_save_load_keeps_info(fits, tmp_path):
    """``info`` survives: the NUTS sample stats and the SVI ELBO trace come back exactly."""
    for method, keys in (("nuts", ("divergences", "num_samples", "num_chains")), ("svi", ("num_steps",))):
        fit = fits[method]
        loaded = br.load(fit.save(tmp_path / f"{method}.nc"))
        for key in keys:
            assert loaded.info[key] == fit.info[key], key
    nuts = br.load(tmp_path / "nuts.nc")
    for name, value in fits["nuts"].info["sample_stats"].items():
        np.testing.assert_array_equal(np.asarray(nuts.info["sample_stats"][name]), value)
    svi = br.load(tmp_path / "svi.nc")
    np.testing.assert_array_equal(np.asarray(svi.info["elbo"]), fits["svi"].info["elbo"])


def test_loaded_fit_converts_to_arviz(fits, tmp_path):
    fit = fits["nuts"]
    loaded = br.load(fit.save(tmp_path / "nuts.nc"))
    idata, expected = loaded.to_arviz(), fit.to_arviz()
    np.testing.assert_array_equal(idata.log_likelihood["y"].values, expected.log_likelihood["y"].values)
    np.testing.assert_array_equal(idata.observed_data["y"].values, expected.observed_data["y"].values)
    pd.testing.assert_frame_equal(loaded.summary(kind="function"), fit.summary(kind="function"))


def test_save_load_mle(mle_fit, data, tmp_path):
    X, _ = data
    loaded = br.load(mle_fit.save(tmp_path / "mle.nc"))
    assert loaded.method == "mle" and loaded.samples is None
    for name in mle_fit.params:
        np.testing.assert_array_equal(loaded.params[name], mle_fit.params[name])
        np.testing.assert_array_equal(loaded.bse[name], mle_fit.bse[name])
    np.testing.assert_array_equal(loaded.covariance, mle_fit.covariance)
    _assert_same_predictions(mle_fit, loaded, X)
    pd.testing.assert_frame_equal(loaded.summary(), mle_fit.summary())


def test_save_overwrites_atomically(fits, tmp_path):
    """Saving over an existing file replaces it with the new fit (and leaves no temporary files)."""
    path = tmp_path / "fit.nc"
    fits["laplace"].save(path)
    fits["nuts"].save(path)
    assert br.load(path).method == "nuts"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.nc"]


def test_a_failed_save_keeps_the_good_file(fits, tmp_path, monkeypatch):
    """A write that dies halfway (disk full, Ctrl-C) leaves the earlier file byte for byte, and no partial one."""
    import xarray as xr

    path = tmp_path / "fit.nc"
    fits["laplace"].save(path)
    good = path.read_bytes()

    def dies_halfway(self, target, *args, **kwargs):
        with open(target, "wb") as f:
            f.write(good[: len(good) // 2])
        raise OSError("No space left on device")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", dies_halfway)
    with pytest.raises(OSError, match="No space left"):
        fits["nuts"].save(path)
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.nc"]


def test_nuts_diagnostics_match_arviz_summary(nuts_fit):
    """fit.info's max r-hat and min bulk ESS are ArviZ's (depth 0: judged on the parameters)."""
    table = nuts_fit.summary()
    assert nuts_fit.info["diagnosed_on"] == "parameters"
    assert nuts_fit.info["max_r_hat"] == pytest.approx(table["r_hat"].max(), abs=0.011)  # summary rounds to 2 dp
    assert nuts_fit.info["min_ess_bulk"] == pytest.approx(table["ess_bulk"].min(), abs=1.0)


def test_nuts_diagnostics_warn_on_short_chains(data):
    """Two chains of 20 draws cannot reach a bulk ESS of 100: the fit must say so."""
    with pytest.warns(br.DiagnosticsWarning, match="bulk ESS"):
        fit = _fit(data, "nuts", num_warmup=20, num_samples=20, num_chains=2)
    assert fit.info["min_ess_bulk"] < 100
