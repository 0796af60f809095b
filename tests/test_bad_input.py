"""Bad input is a clear error, raised by bayes_rglm before any JAX tracing.

One table per kind of mistake: the data (``X``, ``y``, ``offset``,
``trials``), ``y`` outside the family's support, the model spec (``family``,
``link``, ``hidden``, ``activation``), the prior and the method.  Every row
differs from a valid call (see ``test_valid_baselines_fit``) in exactly one
thing and must raise ``ValueError`` or ``TypeError`` whose message

- names the argument (``X``, ``y``, ``offset``, ``trials``, ``family``, ...),
- for a bad value, names the first offending index or value, and
- where the allowed values are a short list or a simple rule, says what is
  allowed,

and whose traceback starts in ``bayes_rglm`` and never enters JAX (or
numpyro, which would mean the model is already being run/traced).
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable
from typing import NamedTuple

import jax
import numpy as np
import numpyro
import pandas as pd
import pytest

import bayes_rglm as br

N, P = 20, 3
_rng = np.random.default_rng(0)
X = _rng.standard_normal((N, P))
Y = {
    "gaussian": _rng.standard_normal(N),
    "bernoulli": (np.arange(N) % 2).astype(float),
    "binomial": (np.arange(N) % 5).astype(float),
    "categorical": (np.arange(N) % 3).astype(float),
    "ordinal": (np.arange(N) % 3).astype(float),
    "poisson": (np.arange(N) % 4).astype(float),
    "gamma": 1.0 + 0.1 * np.arange(N),
    "tobit": np.maximum(0.0, _rng.standard_normal(N)),
    "negative_binomial": _rng.negative_binomial(2, 0.3, N).astype(float),  # overdispersed, so the MLE exists
}
TRIALS = np.full(N, 10.0)
OFFSET = np.zeros(N)


def put(values, index, value):
    """A copy of ``values`` with ``values[index] = value``."""
    out = np.array(values, dtype=float, copy=True)
    out[index] = value
    return out


_DEFAULT = object()


def fit(family="gaussian", X=X, y=None, *, method="mle", trials=_DEFAULT, offset=None, **model):
    """Build a model and fit it: the one call every row of the tables varies.

    ``y`` defaults to the family's valid data and ``trials`` to ``TRIALS`` for
    binomial (pass ``trials=None`` to leave it out).
    """
    if y is None:
        y = Y[family] if isinstance(family, str) and family in Y else Y["gaussian"]
    if trials is _DEFAULT:
        trials = TRIALS if family == "binomial" else None
    kwargs = {}
    if trials is not None:
        kwargs["trials"] = trials
    if offset is not None:
        kwargs["offset"] = offset
    return br.RGLM(family, **model).fit(X, y, method=method, seed=0, progress=False, **kwargs)


class Case(NamedTuple):
    id: str
    call: Callable[[], object]
    argument: str  # regex naming the argument
    details: tuple[str, ...] = ()  # regexes that must all appear: offending index/value, what is allowed


def case(id, call, argument, *details):
    return pytest.param(Case(id, call, argument, details), id=id)


# --- the helper every case goes through ---------------------------------------

_PKG = os.path.dirname(os.path.abspath(br.__file__)) + os.sep
_FORBIDDEN = {
    "jax": os.path.dirname(os.path.abspath(jax.__file__)) + os.sep,
    "numpyro": os.path.dirname(os.path.abspath(numpyro.__file__)) + os.sep,
}
try:
    import jaxlib

    _FORBIDDEN["jaxlib"] = os.path.dirname(os.path.abspath(jaxlib.__file__)) + os.sep
except ImportError:  # pragma: no cover
    pass


@pytest.fixture(autouse=True)
def _full_tracebacks_and_time_limit():
    """Show JAX's own frames (it hides them by default) and stop a case that hangs."""
    previous = jax.config.jax_traceback_filtering
    jax.config.update("jax_traceback_filtering", "off")

    def _timeout(signum, frame):
        raise TimeoutError("case ran for 120 s: bad input reached the optimiser instead of being rejected")

    old_handler = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(120)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old_handler)
        jax.config.update("jax_traceback_filtering", previous)


def assert_clear_error(c: Case):
    with pytest.raises((ValueError, TypeError)) as excinfo:
        c.call()
    message = str(excinfo.value)
    shown = f"{type(excinfo.value).__name__}: {message}"
    named = re.search(c.argument, message, re.IGNORECASE)
    assert named, f"message does not name the argument /{c.argument}/: {shown}"
    for detail in c.details:
        assert re.search(detail, message, re.IGNORECASE), f"message lacks /{detail}/: {shown}"
    filenames = [os.path.abspath(entry.path) for entry in excinfo.traceback]
    assert filenames[-1].startswith(_PKG), f"raised outside bayes_rglm, at {filenames[-1]}: {shown}"
    entered = [(lib, f) for f in filenames for lib, root in _FORBIDDEN.items() if f.startswith(root)]
    assert not entered, f"raised inside {entered[0][0]} ({entered[0][1]}), i.e. while tracing: {shown}"


# --- X, y, offset, trials -----------------------------------------------------

_df_with_string = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "colour": ["red", "blue"] * (N // 2)})
_df_with_nan = pd.DataFrame(put(X, (5, 1), np.nan), columns=["a", "b", "c"])
_df_with_category = pd.DataFrame({"a": pd.Categorical(["u", "v"] * (N // 2)), "b": X[:, 1]})
_df_with_object = pd.DataFrame({"a": np.array([1.0, "x"] * (N // 2), dtype=object), "b": X[:, 1]})


def _df_nullable(dtype: str) -> pd.DataFrame:
    """X as a DataFrame whose first column has pandas' nullable ``dtype`` with NA at row 1."""
    column = pd.array([1, None] + list(range(N - 2)), dtype=dtype)
    return pd.DataFrame({"a": column, "b": X[:, 1], "c": X[:, 2]})


def _nullable_y(dtype: str) -> pd.Series:
    """A 0/1 response of pandas' nullable ``dtype`` with NA at row 1."""
    values = [True, None] + [bool(i % 2) for i in range(N - 2)] if dtype == "boolean" else [1, None] + [2] * (N - 2)
    return pd.Series(pd.array(values, dtype=dtype))


DATA = [
    case("X-nan-row5", lambda: fit(X=put(X, (5, 1), np.nan)), r"\bX\b", r"\b5\b"),
    case("X-inf-row7", lambda: fit(X=put(X, (7, 0), np.inf)), r"\bX\b", r"\b7\b"),
    case("X-neginf-row9", lambda: fit(X=put(X, (9, 2), -np.inf)), r"\bX\b", r"\b9\b"),
    case("X-dataframe-nan-row5", lambda: fit(X=_df_with_nan), r"\bX\b", r"\b5\b"),
    case("X-1d", lambda: fit(X=X[:, 0]), r"\bX\b", r"2-?d|two-dim|2 dim|ndim"),
    case("X-3d", lambda: fit(X=X[:, :, None]), r"\bX\b", r"2-?d|two-dim|2 dim|ndim"),
    case("X-0-rows", lambda: fit(X=X[:0], y=Y["gaussian"][:0]), r"\bX\b|\by\b", r"empty|\b0\b|no (rows|observations)"),
    case("X-dataframe-string-column", lambda: fit(X=_df_with_string), r"\bX\b", r"colour"),
    case("X-string-array", lambda: fit(X=np.full((N, P), "red")), r"\bX\b", r"numeric|number|float|string|str", r"red"),
    case("y-nan-idx4", lambda: fit(y=put(Y["gaussian"], 4, np.nan)), r"\by\b", r"\b4\b"),
    case("y-inf-idx3", lambda: fit(y=put(Y["gaussian"], 3, np.inf)), r"\by\b", r"\b3\b"),
    case("y-nan-bernoulli-idx6", lambda: fit("bernoulli", y=put(Y["bernoulli"], 6, np.nan)), r"\by\b", r"\b6\b"),
    case("y-wrong-length", lambda: fit(y=Y["gaussian"][:19]), r"\by\b", r"\b19\b", r"\b20\b"),
    case("y-2d", lambda: fit(y=np.stack([Y["gaussian"]] * 2, axis=1)), r"\by\b", r"1-?d|one-dim|1 dim|ndim|shape"),
    case("y-strings", lambda: fit("bernoulli", y=np.array(["no", "yes"] * (N // 2))), r"\by\b", r"'no'|\"no\"|\b0\b"),
    case("offset-nan-idx6", lambda: fit(offset=put(OFFSET, 6, np.nan)), r"offset", r"\b6\b"),
    case("offset-inf-idx9", lambda: fit("poisson", offset=put(OFFSET, 9, np.inf)), r"offset", r"\b9\b"),
    case("offset-wrong-length", lambda: fit(offset=OFFSET[:15]), r"offset", r"\b15\b", r"\b20\b"),
    case("trials-wrong-length", lambda: fit("binomial", trials=TRIALS[:10]), r"trials", r"\b10\b", r"\b20\b"),
    # values at the float64 limit: squares and cross-products would overflow
    case("X-1e200-row3", lambda: fit(X=put(X, (3, 1), 1e200)), r"\bX\b", r"row 3", r"1e\+100", r"rescale"),
    case("y-neg1e250-idx2", lambda: fit(y=put(Y["gaussian"], 2, -1e250)), r"\by\b", r"row 2", r"1e\+100"),
    case("offset-1e300-idx8", lambda: fit("poisson", offset=put(OFFSET, 8, 1e300)), r"offset", r"row 8", r"1e\+100"),
    # pandas: nullable dtypes with NA, categorical and object columns
    case("X-Int64-NA-row1", lambda: fit(X=_df_nullable("Int64")), r"\bX\b", r"row 1", r"impute"),
    case("X-Float64-NA-row1", lambda: fit(X=_df_nullable("Float64")), r"\bX\b", r"row 1", r"impute"),
    case("X-categorical-column", lambda: fit(X=_df_with_category), r"\bX\b", r"'a'", r"category", r"get_dummies"),
    case("X-object-column", lambda: fit(X=_df_with_object), r"\bX\b", r"'a'", r"object", r"get_dummies"),
    case("y-boolean-NA-idx1", lambda: fit("bernoulli", y=_nullable_y("boolean")), r"\by\b", r"row 1", r"impute"),
    case("y-Int64-NA-idx1", lambda: fit("poisson", y=_nullable_y("Int64")), r"\by\b", r"row 1", r"impute"),
    case(
        "y-category",
        lambda: fit("bernoulli", y=pd.Series(pd.Categorical(["no", "yes"] * (N // 2)))),
        r"\by\b",
        r"category",
        r"0\.\.K-1",
    ),
]

# --- y outside the family's support ---------------------------------------------

SUPPORT = [
    case(
        "bernoulli-y2-idx2",
        lambda: fit("bernoulli", y=put(Y["bernoulli"], 2, 2.0)),
        r"\by\b",
        r"\b2\b",
        r"bernoulli",
        r"0.{1,12}1",
    ),
    case(
        "bernoulli-y0.5-idx3",
        lambda: fit("bernoulli", y=put(Y["bernoulli"], 3, 0.5)),
        r"\by\b",
        r"\b3\b|0\.5",
        r"bernoulli",
    ),
    case(
        "bernoulli-yneg1-idx8",
        lambda: fit("bernoulli", y=put(Y["bernoulli"], 8, -1.0)),
        r"\by\b",
        r"\b8\b|-1",
        r"bernoulli",
    ),
    case(
        "bernoulli-single-class",
        lambda: fit("bernoulli", y=np.zeros(N)),
        r"\by\b",
        r"single|one class|one value|only|constant|all|both|two",
    ),
    case(
        "categorical-single-class",
        lambda: fit("categorical", y=np.zeros(N)),
        r"\by\b",
        r"single|one class|one value|only|constant|all|at least|two",
    ),
    case(
        "categorical-label0.5-idx4",
        lambda: fit("categorical", y=put(Y["categorical"], 4, 0.5)),
        r"\by\b",
        r"\b4\b|0\.5",
        r"integer",
    ),
    case(
        "categorical-label-neg1-idx6",
        lambda: fit("categorical", y=put(Y["categorical"], 6, -1.0)),
        r"\by\b",
        r"\b6\b|-1",
    ),
    case(
        "ordinal-label1.5-idx7",
        lambda: fit("ordinal", y=put(Y["ordinal"], 7, 1.5)),
        r"\by\b",
        r"\b7\b|1\.5",
        r"integer",
    ),
    case("ordinal-label-neg1-idx9", lambda: fit("ordinal", y=put(Y["ordinal"], 9, -1.0)), r"\by\b", r"\b9\b|-1"),
    case(
        "ordinal-single-class",
        lambda: fit("ordinal", y=np.zeros(N)),
        r"\by\b",
        r"single|one class|one level|one value|only|constant|all|at least|two",
    ),
    case("binomial-no-trials", lambda: fit("binomial", trials=None), r"trials", r"binomial"),
    case(
        "binomial-successes-gt-trials-idx7", lambda: fit("binomial", y=put(Y["binomial"], 7, 12.0)), r"trials", r"\b7\b"
    ),
    case("binomial-trials-negative-idx4", lambda: fit("binomial", trials=put(TRIALS, 4, -1.0)), r"trials", r"\b4\b|-1"),
    case(
        "binomial-trials-fractional-idx6", lambda: fit("binomial", trials=put(TRIALS, 6, 2.5)), r"trials", r"\b6\b|2\.5"
    ),
    case("binomial-trials-nan-idx8", lambda: fit("binomial", trials=put(TRIALS, 8, np.nan)), r"trials", r"\b8\b"),
    case("binomial-y-fractional-idx5", lambda: fit("binomial", y=put(Y["binomial"], 5, 1.5)), r"\by\b", r"\b5\b|1\.5"),
    case(
        "poisson-yneg1-idx8",
        lambda: fit("poisson", y=put(Y["poisson"], 8, -1.0)),
        r"\by\b",
        r"\b8\b|-1",
        r"poisson",
        r"non-?negative|>=\s*0|≥\s*0|\b0\b",
    ),
    case(
        "poisson-y1.5-idx11",
        lambda: fit("poisson", y=put(Y["poisson"], 11, 1.5)),
        r"\by\b",
        r"\b11\b|1\.5",
        r"poisson",
        r"integer|count|whole",
    ),
    case(
        "gamma-y0-idx5",
        lambda: fit("gamma", y=put(Y["gamma"], 5, 0.0)),
        r"\by\b",
        r"\b5\b|\b0\.0\b|(is|got|value|found|=|:)\s*0\b",
        r"gamma",
        r"positive|>\s*0",
    ),
    case(
        "gamma-yneg2-idx13",
        lambda: fit("gamma", y=put(Y["gamma"], 13, -2.0)),
        r"\by\b",
        r"\b13\b|-2",
        r"gamma",
        r"positive|>\s*0",
    ),
    case(
        "negative_binomial-yneg1-idx10",
        lambda: fit("negative_binomial", y=put(Y["negative_binomial"], 10, -1.0)),
        r"\by\b",
        r"\b10\b|-1",
        r"negative.?binomial",
    ),
    case(
        "negative_binomial-y2.5-idx12",
        lambda: fit("negative_binomial", y=put(Y["negative_binomial"], 12, 2.5)),
        r"\by\b",
        r"\b12\b|2\.5",
        r"negative.?binomial",
    ),
]

# --- family, link, hidden, activation -------------------------------------------

SPEC = [
    case("family-poison", lambda: fit("poison"), r"family", r"poison", r"poisson"),
    case("family-not-a-name", lambda: fit(123), r"family"),
    case("link-foo", lambda: fit("bernoulli", link="foo"), r"\blink\b", r"foo", r"logit"),
    case(
        "link-poisson-probit",
        lambda: fit("poisson", link="probit"),
        r"\blink\b",
        r"probit",
        r"poisson",
        r"\blog\b|sqrt",
    ),
    case(
        "link-bernoulli-log",
        lambda: fit("bernoulli", link="log"),
        r"\blink\b",
        r"\blog\b",
        r"bernoulli",
        r"logit|probit",
    ),
    case("link-gamma-logit", lambda: fit("gamma", link="logit"), r"\blink\b", r"logit", r"gamma", r"inverse|\blog\b"),
    case("hidden-0", lambda: fit(hidden=(0,)), r"hidden", r"\b0\b", r"positive"),
    case("hidden-neg1", lambda: fit(hidden=(-1,)), r"hidden", r"-1", r"positive"),
    case("hidden-2.5", lambda: fit(hidden=(2.5,)), r"hidden", r"2\.5", r"integer"),
    case("hidden-str-abc", lambda: fit(hidden="abc"), r"hidden", r"abc"),
    case("hidden-second-0", lambda: fit(hidden=(4, 0)), r"hidden", r"\b0\b|\b1\b", r"positive"),
    case("hidden-second-str", lambda: fit(hidden=(4, "wide")), r"hidden", r"wide"),
    case("activation-foo", lambda: fit(hidden=(4,), activation="foo"), r"activation", r"foo", r"tanh|relu"),
    case("activation-list-too-short", lambda: fit(hidden=(4, 4), activation=["tanh"]), r"activation", r"\b2\b"),
    case(
        "activation-list-too-long",
        lambda: fit(hidden=(4, 4), activation=["tanh", "relu", "tanh"]),
        r"activation",
        r"\b2\b|\b3\b",
    ),
    case(
        "activation-list-unknown",
        lambda: fit(hidden=(4, 4), activation=["tanh", "bar"]),
        r"activation",
        r"bar",
        r"tanh|relu",
    ),
    case("activation-not-a-name", lambda: fit(hidden=(4,), activation=3.0), r"activation"),
]

# --- prior and method -------------------------------------------------------------


def fit_map(hidden=(), **prior):
    """MAP fit (MLE ignores the prior) with ``GaussianPrior(**prior)``."""
    return fit(hidden=hidden, prior=br.GaussianPrior(**prior), method="map")


PRIOR = [
    case("prior-scale-0", lambda: fit_map(scale=0), r"scale", r"\b0\b", r"positive"),
    case("prior-scale-neg1", lambda: fit_map(scale=-1), r"scale", r"-1", r"positive"),
    case("prior-scale-nan", lambda: fit_map(scale=float("nan")), r"scale", r"nan", r"finite|positive"),
    case("prior-scale-inf", lambda: fit_map(scale=float("inf")), r"scale", r"inf", r"finite"),
    case("prior-bias_scale-0", lambda: fit_map(scale=1.0, bias_scale=0), r"bias_scale", r"\b0\b", r"positive"),
    case("prior-bias_scale-nan", lambda: fit_map(scale=1.0, bias_scale=float("nan")), r"bias_scale", r"nan"),
    case("prior-scale-entry1-neg", lambda: fit_map(hidden=(4,), scale=[1.0, -1.0]), r"scale", r"-1"),
    case("prior-scale-not-a-number", lambda: fit_map(scale="big"), r"scale"),
    case(
        "prior-scale-2-entries-3-layers", lambda: fit_map(hidden=(4, 4), scale=[1.0, 2.0]), r"scale", r"\b2\b", r"\b3\b"
    ),
    case(
        "prior-bias_scale-2-entries-3-layers",
        lambda: fit_map(hidden=(4, 4), scale=1.0, bias_scale=[1.0, 2.0]),
        r"bias_scale",
        r"\b2\b",
        r"\b3\b",
    ),
    case("method-foo", lambda: fit(method="foo"), r"method", r"foo", r"\bmle\b|\bmap\b"),
]


@pytest.mark.parametrize("c", DATA)
def test_bad_data(c):
    assert_clear_error(c)


@pytest.mark.parametrize("c", SUPPORT)
def test_y_outside_support(c):
    assert_clear_error(c)


@pytest.mark.parametrize("c", SPEC)
def test_bad_model_spec(c):
    assert_clear_error(c)


@pytest.mark.parametrize("c", PRIOR)
def test_bad_prior_or_method(c):
    assert_clear_error(c)


VALID = [pytest.param(lambda family=family: fit(family), id=family) for family in Y] + [
    pytest.param(lambda: fit(offset=OFFSET), id="offset"),
    pytest.param(lambda: fit(X=pd.DataFrame(X, columns=["a", "b", "c"])), id="dataframe"),
    pytest.param(lambda: fit(hidden=(4, 4), activation=["tanh", "relu"]), id="activation-list"),
    pytest.param(lambda: fit_map(hidden=(4, 4), scale=[1.0, 2.0, 3.0]), id="per-layer-scales"),
]


@pytest.mark.slow
@pytest.mark.parametrize("call", VALID)
def test_valid_baselines_fit(call):
    """Each bad case changes one thing in one of these calls, which must be accepted."""
    call()
