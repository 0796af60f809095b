"""Bad input to the Bayesian methods, prediction and loading is a clear error, raised before any JAX tracing.

Same rules and helper as ``test_bad_input.py`` (imported from it): each row
must raise ``ValueError`` or ``TypeError`` from ``bayes_rglm`` whose message
names the argument (and, where given, the offending value and what is
allowed), with no JAX or numpyro frame in the traceback.  Tables: method
options (counts, batch size, guide, unknown option names, other option
values), prediction on a fitted model (columns, NaN, ``prob``, families
without classes), and loading files that are not fits.
"""

from __future__ import annotations

import atexit
import functools
import json
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from test_bad_input import (  # noqa: F401  (the autouse fixture: full tracebacks and a 120 s limit per case)
    N,
    X,
    Y,
    _full_tracebacks_and_time_limit,
    assert_clear_error,
    case,
    put,
)

import bayes_rglm as br


def bfit(method, family="poisson", X=X, y=None, **options):
    """One fit by ``method`` with ``options``; everything else valid."""
    y = Y[family] if y is None else y
    return br.RGLM(family).fit(X, y, method=method, seed=0, progress=False, **options)


# --- method options ------------------------------------------------------------------------------

COUNT_OPTIONS = [
    ("laplace", "num_samples"),
    ("svi", "num_samples"),
    ("svi", "num_steps"),
    ("svi", "num_epochs"),
    ("svi", "batch_size"),
    ("nuts", "num_samples"),
    ("nuts", "num_warmup"),
    ("nuts", "num_chains"),
]
BAD_COUNTS = [(0, r"\b0\b"), (-1, r"-1"), (2.5, r"2\.5"), (True, r"True")]

COUNTS = [
    case(
        f"{method}-{option}-{value!r}",
        functools.partial(bfit, method, **{option: value}),
        rf"\b{option}\b",
        detail,
        r"positive|integer|> ?0|>= ?1",
    )
    for method, option in COUNT_OPTIONS
    for value, detail in BAD_COUNTS
]

OPTIONS = [
    case("svi-batch_size-gt-n", lambda: bfit("svi", batch_size=N + 1), r"batch_size", rf"\b{N + 1}\b", rf"\b{N}\b"),
    case("svi-num_steps-and-num_epochs", lambda: bfit("svi", num_steps=10, num_epochs=2), r"num_steps", r"num_epochs"),
    case("svi-guide-foo", lambda: bfit("svi", guide="foo"), r"\bguide\b", r"foo", r"normal"),
    case("svi-guide-None", lambda: bfit("svi", guide=None), r"\bguide\b", r"normal"),
    case("svi-learning_rate-0", lambda: bfit("svi", learning_rate=0), r"learning_rate", r"\b0\b", r"positive"),
    case("svi-learning_rate-neg", lambda: bfit("svi", learning_rate=-0.1), r"learning_rate", r"-0\.1"),
    case("svi-learning_rate-str", lambda: bfit("svi", learning_rate="fast"), r"learning_rate", r"fast"),
    case(
        "laplace-covariance-dense",
        lambda: bfit("laplace", covariance="dense"),
        r"covariance",
        r"dense",
        r"full",
        r"diag",
    ),
    case("nuts-chain_method-foo", lambda: bfit("nuts", chain_method="foo"), r"chain_method", r"foo", r"sequential"),
    case("nuts-target_accept-0", lambda: bfit("nuts", target_accept=0.0), r"target_accept", r"\(0, 1\)"),
    case("nuts-target_accept-1.5", lambda: bfit("nuts", target_accept=1.5), r"target_accept", r"1\.5"),
]

UNKNOWN_OPTIONS = [
    case("laplace-num_sample", lambda: bfit("laplace", num_sample=10), r"num_sample\b", r"num_samples"),
    case("svi-num_step", lambda: bfit("svi", num_step=10), r"num_step\b", r"num_steps"),
    case("nuts-warmup", lambda: bfit("nuts", warmup=10), r"\bwarmup\b", r"num_warmup"),
    case("nuts-learning_rate", lambda: bfit("nuts", learning_rate=0.1), r"learning_rate", r"nuts"),
    case("laplace-guide", lambda: bfit("laplace", guide="mvn"), r"\bguide\b", r"laplace"),
]


# --- prediction on a fitted model -------------------------------------------------------------------


@functools.cache
def fitted(method="laplace"):
    """Small fits shared by the prediction cases (Poisson, N = 20 rows, P = 3 columns)."""
    options = {"laplace": {"num_samples": 200}, "mle": {}}[method]
    return bfit(method, **options)


PROBS = [0, 1, -0.1, 1.5, float("nan"), True, "0.9", None]

PREDICT = (
    [
        case("predict-X-2-columns", lambda: fitted().predict(X[:, :2]), r"\bX\b", r"\b2\b", r"\b3\b"),
        case(
            "predict-X-4-columns", lambda: fitted().predict(np.column_stack([X, X[:, 0]])), r"\bX\b", r"\b4\b", r"\b3\b"
        ),
        case("predict-X-nan-row5", lambda: fitted().predict(put(X, (5, 1), np.nan)), r"\bX\b", r"\b5\b"),
        case("predict-X-inf-row7", lambda: fitted().predict(put(X, (7, 0), np.inf)), r"\bX\b", r"\b7\b"),
        case("predict-X-1d", lambda: fitted().predict(X[:, 0]), r"\bX\b"),
        case(
            "predict-offset-wrong-length",
            lambda: fitted().predict(X, offset=np.zeros(N - 5)),
            r"offset",
            rf"\b{N - 5}\b",
            rf"\b{N}\b",
        ),
        case("predict_interval-X-2-columns", lambda: fitted().predict_interval(X[:, :2]), r"\bX\b", r"\b2\b"),
        case(
            "predict_interval-X-nan-row3", lambda: fitted().predict_interval(put(X, (3, 2), np.nan)), r"\bX\b", r"\b3\b"
        ),
        case("predict_proba-poisson", lambda: fitted().predict_proba(X), r"predict_proba", r"poisson"),
        case("predict_proba-poisson-mle", lambda: fitted("mle").predict_proba(X), r"predict_proba", r"poisson"),
        case(
            "log_likelihood-y-wrong-length",
            lambda: fitted().log_likelihood(X, Y["poisson"][:15]),
            r"\by\b",
            r"\b15\b",
            rf"\b{N}\b",
        ),
        case(
            "log_likelihood-y-negative-idx4",
            lambda: fitted().log_likelihood(X, put(Y["poisson"], 4, -1.0)),
            r"\by\b",
            r"\b4\b|-1",
        ),
        case(
            "log_likelihood-X-nan-row2",
            lambda: fitted().log_likelihood(put(X, (2, 0), np.nan), Y["poisson"]),
            r"\bX\b",
            r"\b2\b",
        ),
        case("summary-kind-foo", lambda: fitted().summary(kind="foo"), r"\bkind\b", r"foo", r"function"),
        case("summary-function-mle", lambda: fitted("mle").summary(kind="function"), r"function", r"draws|posterior"),
        case("to_arviz-mle", lambda: fitted("mle").to_arviz(), r"to_arviz", r"mle"),
    ]
    + [
        case(
            f"predict_interval-prob-{p!r}",
            functools.partial(lambda p: fitted().predict_interval(X, prob=p), p),
            r"\bprob\b",
            r"\(0, 1\)",
        )
        for p in PROBS
    ]
    + [
        case(
            f"predict_interval-mle-prob-{p!r}",
            functools.partial(lambda p: fitted("mle").predict_interval(X, prob=p), p),
            r"\bprob\b",
            r"\(0, 1\)",
        )
        for p in (0, 1.5)
    ]
)


# --- loading files that are not fits ----------------------------------------------------------------


@functools.cache
def files() -> dict[str, Path]:
    """Bad files, written once into a temporary folder removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix="bayes_rglm_bad_load_"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    good = fitted().save(folder / "good.nc")
    raw = Path(good).read_bytes()
    out = {"missing": folder / "missing.nc", "folder": folder}
    out["truncated"] = folder / "truncated.nc"
    out["truncated"].write_bytes(raw[: len(raw) // 2])
    out["empty"] = folder / "empty.nc"
    out["empty"].write_bytes(b"")
    out["text"] = folder / "notes.txt"
    out["text"].write_text("w0 = 1.0\nb0 = 2.0\n")
    out["foreign"] = folder / "foreign.nc"
    xr.Dataset({"a": ("x", np.arange(3.0))}, attrs={"title": "not a fit"}).to_netcdf(out["foreign"])
    out["not_json"] = folder / "not_json.nc"
    xr.Dataset({"a": ("x", np.arange(3.0))}, attrs={"bayes_rglm": "{not json"}).to_netcdf(out["not_json"])
    out["future"] = folder / "future.nc"
    header = {"format": "bayes_rglm.fit", "format_version": 99}
    xr.Dataset({"a": ("x", np.arange(3.0))}, attrs={"bayes_rglm": json.dumps(header)}).to_netcdf(out["future"])
    return out


def load(kind):
    return lambda: br.load(files()[kind])


LOAD = [
    case("load-missing", load("missing"), r"\bpath\b", r"missing\.nc"),
    case("load-folder", load("folder"), r"\bpath\b", r"not a file|does not exist"),
    case("load-truncated", load("truncated"), r"\bpath\b", r"truncated\.nc"),
    case("load-empty", load("empty"), r"\bpath\b", r"empty\.nc"),
    case("load-text", load("text"), r"\bpath\b", r"notes\.txt"),
    case("load-foreign-netcdf", load("foreign"), r"\bpath\b", r"not a bayes_rglm"),
    case("load-header-not-json", load("not_json"), r"\bpath\b", r"not a bayes_rglm"),
    case("load-future-version", load("future"), r"\bpath\b", r"version", r"99"),
]


@pytest.mark.parametrize("c", COUNTS)
def test_bad_counts(c):
    assert_clear_error(c)


@pytest.mark.parametrize("c", OPTIONS)
def test_bad_options(c):
    assert_clear_error(c)


@pytest.mark.parametrize("c", UNKNOWN_OPTIONS)
def test_unknown_option_is_type_error(c):
    """A misspelt option is a TypeError (like a misspelt keyword argument) that names it and lists the valid ones."""
    assert_clear_error(c)
    with pytest.raises(TypeError):
        c.call()


@pytest.mark.parametrize("c", PREDICT)
def test_bad_prediction_input(c):
    assert_clear_error(c)


@pytest.mark.parametrize("c", LOAD)
def test_bad_load(c):
    assert_clear_error(c)


# --- the valid calls every bad case departs from ------------------------------------------------------


def test_valid_prediction_baselines():
    """The calls above with valid input work: so each bad case fails for its one bad thing."""
    fit = fitted()
    assert fit.predict(X).shape == (N,)
    lower, upper = fit.predict_interval(X, prob=0.9)
    assert np.all(lower <= upper)
    assert fit.log_likelihood(X, Y["poisson"]).shape == (1, 200, N)
    assert fitted("mle").predict_interval(X, prob=0.5)[0].shape == (N,)
    assert fit.summary(kind="parameters").shape[0] == 4


def test_valid_load_baseline():
    loaded = br.load(files()["folder"] / "good.nc")
    for name in fitted().samples:
        np.testing.assert_array_equal(loaded.samples[name], fitted().samples[name])


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::bayes_rglm.DiagnosticsWarning", "ignore::RuntimeWarning")  # 1 draw, 1 step
@pytest.mark.parametrize(
    "method, options",
    [
        ("laplace", {"num_samples": 1, "covariance": "diag"}),
        ("svi", {"num_samples": 1, "num_epochs": 1, "batch_size": N, "guide": "lowrank", "learning_rate": 0.01}),
        (
            "nuts",
            {"num_samples": 1, "num_warmup": 1, "num_chains": 1, "chain_method": "sequential", "target_accept": 0.9},
        ),
    ],
    ids=["laplace", "svi", "nuts"],
)
def test_valid_option_baselines(method, options):
    """The smallest valid counts (1) and batch_size = n are accepted."""
    fit = bfit(method, **options)
    assert fit.samples["w0"].shape[:2] == (1, 1)
    assert math.isfinite(float(np.asarray(fit.params["b0"])[0]))
