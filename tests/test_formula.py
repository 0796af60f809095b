"""Formulas (``fit("y ~ ...", data=df)``) against R's ``glm`` on raw data frames with factors.

References (``tests/reference/glm_surface.R``): warpbreaks (``breaks ~ wool * tension``, poisson),
MASS's Insurance (factors and ``offset(log(Holders))``) and mtcars (transforms, ``I()``, a numeric
column as a factor, gamma with a log link).  R codes ordered factors with polynomial contrasts and
sorts levels its own way; fitted values, deviance and log-likelihood do not depend on the contrasts,
so those are compared (1e-6 relative).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_weights import CASES, REFERENCE

import bayes_rglm as br

FAMILIES = {
    "formula_warpbreaks": br.RGLM("poisson"),
    "formula_insurance": br.RGLM("poisson"),
    "formula_mtcars": br.RGLM("gamma", link="log"),
}


def frame(case: str) -> pd.DataFrame:
    df = pd.read_csv(REFERENCE / "glm_surface" / f"{case}.csv")
    if "District" in df:
        df["District"] = df["District"].astype(str)  # a factor in R; read back as integers
    return df


@pytest.fixture(scope="module", params=list(FAMILIES))
def case(request):
    df = frame(request.param)
    fit = FAMILIES[request.param].fit(CASES[request.param]["formula"], data=df, method="mle")
    return request.param, df, fit


def test_fitted_values_and_deviance_match_r(case):
    name, df, fit = case
    ref = CASES[name]
    np.testing.assert_allclose(fit.predict(df), ref["fitted"], rtol=1e-6)
    np.testing.assert_allclose(fit.stats["deviance"], ref["deviance"], rtol=1e-6)
    assert fit.stats["df_residual"] == ref["df_residual"]
    if name != "formula_mtcars":  # gamma: R's logLik plugs in deviance / n (see bayes_rglm.glm_stats)
        np.testing.assert_allclose(fit.stats["loglik"], ref["loglik"], rtol=1e-6)


def test_labels_are_the_design_columns(case):
    name, _, fit = case
    if name == "formula_warpbreaks":
        assert fit.feature_names == [
            "wool[T.B]",
            "tension[T.L]",
            "tension[T.M]",
            "wool[T.B]:tension[T.L]",
            "wool[T.B]:tension[T.M]",
        ]
        assert "w0[wool[T.B]:tension[T.M]]" in fit.summary().index


def test_new_data_reuse_the_training_levels():
    df = frame("formula_warpbreaks")
    fit = FAMILIES["formula_warpbreaks"].fit(CASES["formula_warpbreaks"]["formula"], data=df, method="mle")
    one = df.iloc[[5]]  # a single row holds one level per factor: the training levels still apply
    np.testing.assert_allclose(fit.predict(one), fit.predict(df)[[5]], rtol=1e-12)
    with pytest.raises(ValueError, match="column 'tension' has level 'X'"):
        fit.predict(one.assign(tension="X"))
    with pytest.raises(ValueError, match="missing column 'wool'"):
        fit.predict(one.drop(columns="wool"))


def test_offset_in_the_formula_applies_to_new_data():
    df = frame("formula_insurance")
    fit = FAMILIES["formula_insurance"].fit(CASES["formula_insurance"]["formula"], data=df, method="mle")
    doubled = df.assign(Holders=2 * df["Holders"])
    np.testing.assert_allclose(fit.predict(doubled), 2 * fit.predict(df), rtol=1e-10)


def test_formula_arguments_name_columns():
    df = frame("formula_warpbreaks").assign(w=lambda d: 1.0 + (d.index % 3))
    by_name = br.RGLM("poisson").fit("breaks ~ wool + tension", data=df, method="mle", weights="w")
    by_value = br.RGLM("poisson").fit("breaks ~ wool + tension", data=df, method="mle", weights=df["w"].to_numpy())
    np.testing.assert_allclose(by_name.params["w0"], by_value.params["w0"], rtol=1e-12)


def test_formulas_feed_hidden_layers():
    df = frame("formula_warpbreaks")
    fit = br.RGLM("poisson", hidden=(3,), activation="tanh").fit("breaks ~ wool * tension", data=df, method="map")
    assert fit.params["w0"].shape == (5, 3)
    assert np.all(np.isfinite(fit.predict(df)))


@pytest.mark.parametrize(
    ("formula", "kwargs", "error", "message"),
    [
        ("breaks ~ wool + nothing", {}, ValueError, "names 'nothing', which is not a column of data"),
        ("breaks ~ 0 + wool", {}, ValueError, "has no intercept"),
        ("~ wool", {}, ValueError, "has no response"),
        ("breaks ~ wool", {"weights": "nope"}, ValueError, "weights='nope' is not a column of data"),
        ("breaks ~ wool", {"data": None}, TypeError, "needs data=, a pandas DataFrame"),
    ],
)
def test_bad_formulas_are_named(formula, kwargs, error, message):
    df = frame("formula_warpbreaks")
    kwargs = {"data": df, **kwargs}
    with pytest.raises(error, match=message):
        br.RGLM("poisson").fit(formula, method="mle", **kwargs)


def test_data_without_a_formula_and_y_with_one_are_refused():
    df = frame("formula_warpbreaks")
    with pytest.raises(ValueError, match="y= is given by the formula"):
        br.RGLM("poisson").fit("breaks ~ wool", df["breaks"], data=df)
    with pytest.raises(ValueError, match="data= is only used with a formula"):
        br.RGLM("poisson").fit(np.ones((3, 1)), np.ones(3), data=df)


def test_a_saved_formula_fit_predicts_raw_data_again(tmp_path):
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"x": rng.standard_normal(80), "g": rng.choice(["a", "b", "c"], 80), "e": rng.uniform(1, 3, 80)})
    df["y"] = rng.poisson(np.exp(0.3 * df["x"]) * df["e"]).astype(float)
    fit = br.RGLM("poisson").fit("y ~ bs(x, df=4) + C(g) + offset(np.log(e))", data=df, method="mle")
    back = br.load(fit.save(tmp_path / "fit.nc"))
    rows = df.iloc[:7]  # a few rows: the spline's knots and the levels come from the training data
    np.testing.assert_allclose(back.predict(rows), fit.predict(rows), rtol=1e-12)
    with pytest.raises(ValueError, match="missing column 'x'"):
        back.predict(rows.drop(columns="x"))


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_a_non_finite_formula_offset_is_named():
    df = pd.DataFrame({"y": [1.0, 2.0, 3.0], "x": [0.0, 1.0, 2.0], "e": [0.0, 1.0, 2.0]})
    with pytest.raises(ValueError, match="offset has a non-finite value"):
        br.RGLM("poisson").fit("y ~ x + offset(np.log(e))", data=df, method="mle")


def test_a_toml_spec_takes_a_formula(tmp_path):
    import json

    from bayes_rglm.cli import main

    df = frame("formula_warpbreaks")
    df.to_csv(tmp_path / "warpbreaks.csv", index=False)
    spec = tmp_path / "warpbreaks.toml"
    spec.write_text(
        'description = "warpbreaks by formula"\n'
        f'[data]\ndataset = "csv:{tmp_path / "warpbreaks.csv"}"\ntarget = "breaks"\n'
        'formula = "breaks ~ wool * tension"\n'
        '[model]\nfamily = "poisson"\n[inference]\nmethod = "mle"\n'
    )
    out = tmp_path / "out"
    assert main(["fit", str(spec), "--quiet", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_test"] > 0 and np.isfinite(metrics["test_lpd"])
    assert "wool[T.B]" in (out / "summary.csv").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(spec.read_text().replace('target = "breaks"', 'target = "breaks"\nfeatures = ["wool"]'))
    assert main(["fit", str(bad), "--quiet", "--out", str(tmp_path / "bad")]) == 2
