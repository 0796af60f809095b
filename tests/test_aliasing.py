"""Aliased columns, as R's ``glm``: detected before fitting, named in a warning, reported as NaN.

Reference: ``tests/reference/glm_surface.R``, case ``aliased`` (mtcars, ``am ~ wt + wt2 + hp + one``
with ``wt2 = 2 wt`` and a constant column; R: ``wt2`` and ``one`` are NA, "not defined because of
singularities").
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pandas as pd
import pytest
from test_weights import CASES, load

import bayes_rglm as br
from bayes_rglm import aliasing as aliasing_module
from bayes_rglm import inference
from bayes_rglm.aliasing import _full_rank, aliased_columns


@pytest.fixture(scope="module")
def aliased_fit():
    X, y, _, _ = load("aliased")
    X = pd.DataFrame(X, columns=CASES["aliased"]["columns"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = br.RGLM("bernoulli").fit(X, y, method="mle")
    return X, fit, caught


def test_aliased_columns_are_named_and_not_estimated(aliased_fit):
    X, fit, caught = aliased_fit
    messages = [str(w.message) for w in caught if issubclass(w.category, br.AliasingWarning)]
    assert len(messages) == 1 and "wt2, one" in messages[0]
    assert fit.info["aliased"] == ["wt2", "one"]
    w0, bse = np.ravel(fit.params["w0"]), np.ravel(fit.bse["w0"])
    assert np.isnan(w0[[1, 3]]).all() and np.isnan(bse[[1, 3]]).all()
    assert fit.summary().loc[["w0[wt2]", "w0[one]"], "estimate"].isna().all()


def test_the_rest_is_r_fit(aliased_fit):
    X, fit, _ = aliased_fit
    ref = CASES["aliased"]
    ours = np.r_[np.ravel(fit.params["b0"]), np.ravel(fit.params["w0"])[[0, 2]]]
    se = np.r_[np.ravel(fit.bse["b0"]), np.ravel(fit.bse["w0"])[[0, 2]]]
    np.testing.assert_allclose(ours, ref["coef"], atol=0.01 * np.min(ref["se_glm"]))
    np.testing.assert_allclose(se, ref["se_glm"], rtol=0.02)
    np.testing.assert_allclose(fit.predict(X), ref["fitted"], rtol=1e-6)
    stats = fit.stats
    assert (stats["df_residual"], stats["n_params"]) == (ref["df_residual"], 3)
    np.testing.assert_allclose(stats["deviance"], ref["deviance"], rtol=1e-6)
    np.testing.assert_allclose(stats["aic"], ref["aic"], rtol=1e-6)


def test_more_columns_than_rows_never_reports_false_certainty():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((20, 30))
    y = rng.poisson(5.0, 20).astype(float) + 1.0  # no zero counts: the saturated MLE exists
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = br.RGLM("poisson").fit(X, y, method="mle")
    assert any(issubclass(w.category, br.AliasingWarning) for w in caught)
    w0, bse = np.ravel(fit.params["w0"]), np.ravel(fit.bse["w0"])
    assert np.isnan(w0).sum() == 11  # rank 20 = the intercept and 19 columns
    kept = ~np.isnan(w0)
    assert np.all(bse[kept] > 0) and np.all(np.isfinite(w0[kept] / bse[kept]))
    np.testing.assert_allclose(fit.predict(X), y, rtol=1e-6)  # saturated: mu = y


def test_a_saturated_dispersion_model_is_refused(monkeypatch):
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((20, 30)), rng.normal(size=20)
    built = []
    monkeypatch.setattr(inference, "build", lambda *a, **k: built.append(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", br.AliasingWarning)
        with pytest.raises(ValueError, match="maximum-likelihood dispersion is 0"):
            br.RGLM("gaussian").fit(X, y, method="mle")
        with pytest.raises(ValueError, match="maximum-likelihood dispersion is 0"):
            br.RGLM("gamma").fit(X, np.exp(y), method="mle")
    assert built == []  # refused before the data are standardised, padded or anything is compiled


def test_the_screen_runs_beside_the_standardisation(monkeypatch):
    # Depth-0 MLE: the aliasing screen runs in a worker thread while the target is built, and the target is
    # built again without the aliased columns only where there are some.
    threads, builds, started = [], [], threading.Event()
    real_screen, real_build = inference.aliased_columns, inference.build

    def screen(*args):
        # Waits (in its thread) until the build has begun: it did only if the two run side by side.
        threads.append((threading.current_thread().name, started.wait(timeout=10)))
        return real_screen(*args)

    def build(model, data, **kwargs):
        started.set()
        builds.append(data.X.shape[1])
        return real_build(model, data, **kwargs)

    monkeypatch.setattr(inference, "aliased_columns", screen)
    monkeypatch.setattr(inference, "build", build)
    rng = np.random.default_rng(5)
    X = rng.standard_normal((200, 3))
    y = rng.poisson(np.exp(0.3 * X[:, 0]))
    br.RGLM("poisson").fit(X, y, method="mle")
    assert threads == [("bayes_rglm-screen_0", True)] and builds == [3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", br.AliasingWarning)
        fit = br.RGLM("poisson").fit(np.c_[X, X[:, 1]], y, method="mle")
    assert builds == [3, 4, 3]
    reference = br.RGLM("poisson").fit(X, y, method="mle")
    np.testing.assert_allclose(np.ravel(fit.params["w0"])[:3], np.ravel(reference.params["w0"]), rtol=1e-10)


def test_detection_follows_r_order_and_tolerance():
    x = np.linspace(0.0, 1.0, 30)
    assert aliased_columns(np.c_[x, 2 * x + 1, x**2], intercept=True).tolist() == [False, True, False]
    assert aliased_columns(np.c_[x, 2 * x + 1, x**2], intercept=False).tolist() == [False, False, False]
    # A column 1e-5 away (relative) from the span of the earlier ones is kept, as by R's tol of 1e-7.
    near = x + 1e-5 * np.random.default_rng(0).standard_normal(30)
    assert aliased_columns(np.c_[x, near], intercept=True).tolist() == [False, False]
    # ... and one 1e-9 away is aliased (through the QR: the Gram screen cannot rule it out).
    nearer = x + 1e-9 * np.random.default_rng(0).standard_normal(30)
    assert not _full_rank(np.c_[x, nearer], intercept=True)
    assert aliased_columns(np.c_[x, nearer], intercept=True).tolist() == [False, True]


def test_gram_screen_skips_the_qr_only_where_no_column_can_be_aliased(monkeypatch):
    rng = np.random.default_rng(3)
    well = rng.standard_normal((200, 6))
    assert _full_rank(well, intercept=True) and _full_rank(well, intercept=False)
    # Near-dependent but not aliased (1e-5, as R keeps it), constant, zero or too few rows: the QR decides.
    near = np.c_[well[:, :2], well[:, 0] + 1e-5 * rng.standard_normal(200)]
    assert not _full_rank(near, intercept=True)
    assert aliased_columns(near, intercept=True).tolist() == [False, False, False]
    assert not _full_rank(np.c_[well, np.ones(200)], intercept=True)
    assert not _full_rank(np.c_[well, np.zeros(200)], intercept=False)
    assert not _full_rank(well[:5], intercept=True)
    # Where the screen passes, the QR would have found nothing either.
    monkeypatch.setattr(aliasing_module, "_full_rank", lambda X, intercept: False)
    assert not aliased_columns(well, intercept=True).any()


def test_map_with_a_proper_prior_identifies_every_column():
    X, y, _, _ = load("aliased")
    with warnings.catch_warnings():
        warnings.simplefilter("error", br.AliasingWarning)
        fit = br.RGLM("bernoulli").fit(X, y, method="map")
    assert np.all(np.isfinite(fit.params["w0"])) and np.all(np.isfinite(fit.bse["w0"]))


def test_the_screen_runs_on_one_blas_thread(monkeypatch):
    # OpenBLAS workers spin after a threaded call and slow the compiled solve that follows; the screen's
    # Gram matrix (and the QR) must run inside runtime.one_blas_thread.
    from threadpoolctl import threadpool_info

    real, seen = aliasing_module.one_blas_thread, []

    class Spy:
        def __enter__(self):
            self.inner = real()
            self.inner.__enter__()
            seen.append({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"})

        def __exit__(self, *exc):
            return self.inner.__exit__(*exc)

    monkeypatch.setattr(aliasing_module, "one_blas_thread", Spy)
    x = np.random.default_rng(0).standard_normal((300, 4))
    aliased_columns(x, intercept=True)  # the screen
    aliased_columns(np.c_[x, x[:, :1]], intercept=True)  # the screen, then the QR
    assert len(seen) == 3 and all(threads == {1} for threads in seen)
