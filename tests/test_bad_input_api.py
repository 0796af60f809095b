"""Bad input to the entry points around a fit is a clear error, raised before any JAX tracing.

Same rules and helper as ``test_bad_input.py``: each row raises ``ValueError`` or ``TypeError`` from
``bayes_rglm``, naming the argument (and, where given, the offending value and what is allowed), with no
JAX or numpyro frame in the traceback.  Tables: the options of the approximations (issue 13), ``devices=``,
the fitted model's statistics and tables, the dataset loaders and the spec parser, saving, and the
scikit-learn estimators.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from test_bad_input import (  # noqa: F401  (the autouse fixture: full tracebacks and a 120 s limit per case)
    X,
    Y,
    _full_tracebacks_and_time_limit,
    assert_clear_error,
    case,
)

import bayes_rglm as br
from bayes_rglm import datasets
from bayes_rglm.sklearn import RGLMClassifier, RGLMRegressor
from bayes_rglm.spec import SpecError, load_spec

POISSON = br.RGLM("poisson")


@functools.cache
def fitted(method: str):
    """One valid poisson fit per method, shared by the rows."""
    options = {"num_samples": 50} if method in ("laplace", "svi") else {}
    return POISSON.fit(X, Y["poisson"], method=method, seed=0, progress=False, **options)


def laplace(**options):
    return POISSON.fit(X, Y["poisson"], method="laplace", seed=0, **options)


# --- the approximations' options (issue 13) and devices= ----------------------------------------------------

APPROXIMATIONS = [
    case("dtype-float16", lambda: POISSON.fit(X, Y["poisson"], dtype="float16"), r"dtype", r"'float16'", r"float32"),
    case("dtype-int", lambda: POISSON.fit(X, Y["poisson"], dtype=64), r"dtype", r"\b64\b", r"'float64'"),
    case("laplace-curvature-fisher", lambda: laplace(curvature="fisher"), r"curvature", r"'fisher'", r"'ggn'"),
    case("laplace-covariance-low", lambda: laplace(covariance="low"), r"covariance", r"'low'", r"'kron'"),
    case("laplace-covariance-int", lambda: laplace(covariance=2), r"covariance", r"\b2\b", r"'full'"),
    case("laplace-predictive-mc", lambda: laplace(predictive="mc"), r"predictive", r"'mc'", r"'linearised'"),
    case("laplace-kron-hessian", lambda: laplace(covariance="kron", curvature="hessian"), r"kron", r"ggn"),
    case("laplace-prior_scale-marginal", lambda: laplace(prior_scale="marginal"), r"prior_scale", r"'evidence'"),
    case(
        "map-prior_scale-evidence",
        lambda: POISSON.fit(X, Y["poisson"], method="map", prior_scale="evidence"),
        r"prior_scale",
        r"laplace",
    ),
    case(
        "laplace-evidence-hierarchical",
        lambda: br.RGLM("poisson", prior=br.GaussianPrior(1.0, hierarchical=True)).fit(
            X, Y["poisson"], method="laplace", prior_scale="evidence"
        ),
        r"prior_scale",
        r"hierarchical",
    ),
    case("tune-factors-negative", lambda: br.tune_prior_scale(POISSON, X, Y["poisson"], factors=[1, -2]), r"factors"),
    case("tune-factors-string", lambda: br.tune_prior_scale(POISSON, X, Y["poisson"], factors="big"), r"factors"),
    case(
        "tune-covariance-diag",
        lambda: br.tune_prior_scale(POISSON, X, Y["poisson"], covariance="diag"),
        r"covariance",
        r"'full'",
    ),
    case("svi-tol-0", lambda: POISSON.fit(X, Y["poisson"], method="svi", tol=0.0), r"tol", r"\(0, 1\)"),
    case("svi-tol-string", lambda: POISSON.fit(X, Y["poisson"], method="svi", tol="tight"), r"tol"),
    case("laplace-psis-string", lambda: laplace(psis="yes"), r"psis", r"True or False", r"'yes'"),
    case("importance_resample-map", lambda: fitted("map").importance_resample(), r"importance_resample", r"laplace"),
    case("devices-0", lambda: POISSON.fit(X, Y["poisson"], method="map", devices=0), r"devices", r"\b0\b"),
    case("devices-too-many", lambda: POISSON.fit(X, Y["poisson"], method="map", devices=64), r"devices", r"64"),
    case("devices-string", lambda: POISSON.fit(X, Y["poisson"], method="map", devices="gpu"), r"devices"),
    case("devices-nuts", lambda: POISSON.fit(X, Y["poisson"], method="nuts", devices=1), r"devices", r"parallel"),
]

# --- a fitted model's statistics and tables ---------------------------------------------------------------

FITTED = [
    case("residuals-kind-raw", lambda: fitted("mle").residuals("raw"), r"kind", r"'raw'", r"deviance"),
    case("predict_interval-prob-1.5", lambda: fitted("laplace").predict_interval(X, prob=1.5), r"prob", r"1\.5"),
    case("predict_interval-prob-0", lambda: fitted("laplace").predict_interval(X, prob=0.0), r"prob"),
    case("summary-prob-2", lambda: fitted("mle").summary(prob=2.0), r"prob", r"\(0, 1\)"),
    case("log_likelihood-y-short", lambda: fitted("mle").log_likelihood(X, Y["poisson"][:5]), r"\by\b", r"\b5\b"),
    case("log_likelihood-y-negative", lambda: fitted("mle").log_likelihood(X, -Y["poisson"] - 1), r"\by\b"),
    case("slopes-unknown-variable", lambda: fitted("mle").slopes("x9"), r"variable", r"x9"),
    case("comparisons-unknown-variable", lambda: fitted("mle").comparisons("nope"), r"variable", r"nope"),
    case("anova-not-a-fit", lambda: br.anova(fitted("mle"), "bigger"), r"fit 1", r"str", r"'bigger'"),
]

# --- the dataset loaders and the spec parser ----------------------------------------------------------------

LOADERS = [
    case("dataset-unknown", lambda: datasets.load("titanic_nope"), r"dataset", r"titanic_nope"),
    case("dataset-not-a-string", lambda: datasets.load(3), r"dataset"),
]


def spec_file(tmp_text: str):
    import pathlib
    import tempfile

    path = pathlib.Path(tempfile.mkdtemp()) / "bad.toml"
    path.write_text(tmp_text)
    return load_spec(path)


SPECS = [
    case(
        "spec-unknown-family",
        lambda: spec_file('[data]\ndataset = "iris"\n[model]\nfamily = "poison"\n'),
        r"model\.family",
        r"poison",
    ),
    case(
        "spec-hidden-not-a-list",
        lambda: spec_file('[data]\ndataset = "iris"\n[model]\nfamily = "categorical"\nhidden = 3\n'),
        r"model\.hidden",
    ),
    case(
        "spec-unknown-section", lambda: spec_file('[data]\ndataset = "iris"\n[modle]\nfamily = "gaussian"\n'), r"modle"
    ),
    case("spec-not-toml", lambda: spec_file("[data\n"), r"TOML"),
]

# --- the scikit-learn estimators ----------------------------------------------------------------------------

ESTIMATORS = [
    case(
        "classifier-prior_scale-negative",
        lambda: RGLMClassifier(prior_scale=-1.0).fit(X, Y["bernoulli"]),
        r"prior_scale|scale",
        r"-1",
    ),
    case("classifier-method-gibbs", lambda: RGLMClassifier(method="gibbs").fit(X, Y["bernoulli"]), r"method", r"gibbs"),
    case("classifier-one-class", lambda: RGLMClassifier().fit(X, np.zeros(len(X))), r"\by\b|class"),
    case("regressor-family-poison", lambda: RGLMRegressor(family="poison").fit(X, Y["gaussian"]), r"family", r"poison"),
    case("regressor-hidden-zero", lambda: RGLMRegressor(hidden=(0,)).fit(X, Y["gaussian"]), r"hidden", r"\b0\b"),
]


@pytest.mark.parametrize("c", APPROXIMATIONS)
def test_bad_approximation_options(c):
    assert_clear_error(c)


@pytest.mark.parametrize("c", FITTED)
def test_bad_calls_on_a_fit(c):
    assert_clear_error(c)


@pytest.mark.parametrize("c", LOADERS + SPECS)
def test_bad_datasets_and_specs(c):
    if c.id.startswith("spec"):
        with pytest.raises(SpecError):  # the command's own error type (exit code 2), a ValueError
            c.call()
    assert_clear_error(c)


@pytest.mark.parametrize("c", ESTIMATORS)
def test_bad_estimator_input(c):
    assert_clear_error(c)
