"""Precision scope: importing or calling bayes_rglm changes no JAX setting; ``dtype="float32"`` on request.

The suite itself runs with JAX's x64 off (tests/conftest.py), as a user's process does, so every public
call here and elsewhere goes through :mod:`bayes_rglm.precision`.
"""

import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import statsmodels.api as sm

import bayes_rglm as br
from bayes_rglm import precision


@pytest.fixture(scope="module")
def logistic():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 3))
    y = (rng.random(300) < 1 / (1 + np.exp(-(0.3 + X @ np.array([1.0, -0.5, 0.25]))))).astype(float)
    return X, y


@pytest.fixture(scope="module")
def fits(logistic):
    X, y = logistic
    model = br.RGLM("bernoulli")
    return {
        "float64": model.fit(X, y, method="mle"),
        "float32": model.fit(X, y, method="mle", dtype="float32"),
    }


def test_import_and_fit_leave_the_users_jax_settings_alone():
    code = textwrap.dedent(
        """
        import jax, jax.numpy as jnp, numpy as np
        before = (jax.config.jax_enable_x64, jax.config.jax_default_matmul_precision)
        import bayes_rglm as br
        after_import = (jax.config.jax_enable_x64, jax.config.jax_default_matmul_precision)
        rng = np.random.default_rng(0)
        X = rng.standard_normal((40, 2)); y = X[:, 0] + rng.standard_normal(40)
        fit = br.RGLM("gaussian").fit(X, y, method="mle")
        print(before == after_import, jax.config.jax_enable_x64, jnp.ones(2).dtype, fit.params["w0"].dtype)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.split() == ["True", "False", "float32", "float64"]


def test_a_user_with_x64_on_keeps_it_on(logistic):
    X, y = logistic
    with jax.enable_x64(True):
        fit = br.RGLM("bernoulli").fit(X, y, method="mle", dtype="float32")
        assert jax.config.jax_enable_x64
        assert jnp.ones(2).dtype == jnp.float64
    assert fit.params["w0"].dtype == np.float32


def test_float64_fit_matches_statsmodels_with_x64_off_globally(fits, logistic):
    X, y = logistic
    assert not jax.config.jax_enable_x64
    ref = sm.GLM(y, sm.add_constant(X), family=sm.families.Binomial()).fit()
    fit = fits["float64"]
    assert fit.info["dtype"] == "float64"
    assert fit.params["w0"].dtype == np.float64
    np.testing.assert_allclose(fit.params["w0"][:, 0], ref.params[1:], rtol=1e-8)
    np.testing.assert_allclose(fit.bse["w0"][:, 0], ref.bse[1:], rtol=1e-5)  # statsmodels stops at 1e-8
    np.testing.assert_allclose(fit.stats["loglik"], ref.llf, rtol=1e-10)


def test_float32_fit_is_float32_throughout_and_close_to_float64(fits, logistic):
    X, y = logistic
    f64, f32 = fits["float64"], fits["float32"]
    assert f32.info["dtype"] == "float32"
    assert f32.params["w0"].dtype == np.float32
    assert f32.predict(X).dtype == np.float32
    # About 7 significant digits: within 1e-3 standard errors of the float64 optimum.
    se = f64.bse["w0"][:, 0]
    assert np.max(np.abs(f32.params["w0"][:, 0] - f64.params["w0"][:, 0]) / se) < 1e-3
    np.testing.assert_allclose(f32.predict(X), f64.predict(X), atol=1e-5)
    assert not np.allclose(f32.predict(X), f64.predict(X), rtol=0, atol=1e-12)  # really computed in float32


def test_float32_round_trips_through_save_and_load(fits, logistic, tmp_path):
    X, _ = logistic
    loaded = br.load(fits["float32"].save(tmp_path / "f32.nc"))
    assert loaded.info["dtype"] == "float32"
    assert loaded.predict(X).dtype == np.float32
    np.testing.assert_array_equal(loaded.predict(X), fits["float32"].predict(X))


@pytest.mark.parametrize(
    "method, options",
    [
        ("svi", {"num_steps": 400, "num_samples": 200}),
        ("nuts", {"num_chains": 2, "num_warmup": 300, "num_samples": 300, "chain_method": "vectorized"}),
    ],
)
def test_float32_bayesian_methods_agree_with_float64(logistic, method, options):
    X, y = logistic
    model = br.RGLM("bernoulli", prior=br.GaussianPrior(scale=2.0))
    f64 = model.fit(X, y, method=method, seed=1, progress=False, **options)
    f32 = model.fit(X, y, method=method, seed=1, progress=False, dtype="float32", **options)
    assert f32.samples["w0"].dtype == np.float32
    sd = f64.samples["w0"].reshape(-1, 3).std(axis=0)
    # Same posterior up to Monte Carlo error (the float32 chains diverge from the float64 ones after a few
    # steps, so they are independent draws): means within 0.5 posterior sd.
    assert np.all(np.abs(f32.params["w0"][:, 0] - f64.params["w0"][:, 0]) < 0.5 * sd)


def test_dtype_is_inherited_by_nested_fits(logistic):
    X, y = logistic
    model = br.RGLM("bernoulli", prior=br.GaussianPrior(scale=1.0))
    fit = model.fit(X, y, method="laplace", prior_scale="evidence", dtype="float32")  # a dozen nested fits
    assert fit.info["dtype"] == "float32"
    assert fit.params["w0"].dtype == np.float32


@pytest.mark.parametrize("dtype", ["float16", "double", 32, True, np.int32])
def test_bad_dtype_is_refused_before_any_work(logistic, dtype):
    X, y = logistic
    with pytest.raises(ValueError, match=r"dtype=.*use dtype='float64' \(the default\) or dtype='float32'"):
        br.RGLM("bernoulli").fit(X, y, method="mle", dtype=dtype)


def test_numpy_and_jax_dtypes_are_accepted():
    assert precision.check_dtype(np.float32) == "float32"
    assert precision.check_dtype(jnp.float32) == "float32"
    assert precision.check_dtype(np.dtype("float64")) == "float64"


def test_library_code_outside_its_scope_fails_loudly():
    with jax.enable_x64(False):
        with pytest.raises(RuntimeError, match="outside its precision scope"):
            precision.require()
    with precision.scope("float32"):
        precision.require()  # x64 off is what float32 wants
        with jax.enable_x64(True):
            with pytest.raises(RuntimeError, match="float32 was expected"):
                precision.require()


def test_warnings_point_at_the_users_line_through_every_wrapper():
    """The precision wrappers add frames; bayes_rglm's warnings still name the caller's file and line."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(30)
    X = np.column_stack([x, 2 * x])  # aliased
    y = x + rng.standard_normal(30)
    with pytest.warns(br.AliasingWarning) as aliasing:
        br.RGLM("gaussian").fit(X, y, method="mle")  # through RGLM.fit's wrapper
    X = np.array([[-2.0], [-1.0], [1.0], [2.0]] * 5)
    y = (X[:, 0] > 0).astype(float)  # separated
    with pytest.warns(br.SeparationWarning) as separation:
        br.fit(br.RGLM("bernoulli"), X, y, method="mle")
    for record in (*aliasing, *separation):
        if issubclass(record.category, (br.AliasingWarning, br.SeparationWarning)):
            assert record.filename == __file__, record.filename


def test_numpyro_model_follows_the_callers_precision(logistic):
    """RGLM.numpyro_model runs inside the user's own numpyro program, in the user's precision (numpy X
    included: the plate's traced index needs device arrays)."""
    from numpyro.infer import MCMC, NUTS

    X, y = logistic
    model = br.RGLM("bernoulli")

    def draws():
        mcmc = MCMC(NUTS(model.numpyro_model), num_warmup=50, num_samples=50, progress_bar=False)
        mcmc.run(jax.random.PRNGKey(0), X[:60], y=y[:60])
        return mcmc.get_samples()["w0"]

    assert draws().dtype == jnp.float32
    with jax.enable_x64(True):
        assert draws().dtype == jnp.float64
