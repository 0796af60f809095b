"""``br.anova`` against R's ``anova(..., test=)`` (``tests/reference/glm_surface.R``, cases ``anova_*``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_formula import frame
from test_weights import CASES, REFERENCE

import bayes_rglm as br


def compare(table, ref, statistic):
    np.testing.assert_allclose(table["Resid. Df"], ref["resid_df"])
    np.testing.assert_allclose(table["Resid. Dev"], ref["resid_dev"], rtol=1e-6)
    np.testing.assert_allclose(table["Df"].to_numpy()[1:], np.asarray(ref["df"][1:], dtype=float))
    np.testing.assert_allclose(
        table["Deviance"].to_numpy()[1:], np.asarray(ref["deviance"][1:], dtype=float), rtol=1e-6
    )
    np.testing.assert_allclose(table[statistic].to_numpy()[1:], np.asarray(ref["p"][1:], dtype=float), rtol=1e-5)


def test_deviance_test_of_poisson_fits_is_r():
    df = frame("formula_warpbreaks")
    small = br.RGLM("poisson").fit("breaks ~ wool", data=df, method="mle")
    big = br.RGLM("poisson").fit("breaks ~ wool * tension", data=df, method="mle")
    table = br.anova(big, small)  # any order: sorted by residual df
    assert list(table.index) == ["breaks ~ wool", "breaks ~ wool * tension"]
    compare(table, CASES["anova_poisson"], "Pr(>Chi)")


def test_f_test_of_gaussian_fits_is_r():
    df = pd.read_csv(REFERENCE / "glm_surface" / "anova_mtcars.csv")
    fits = [
        br.RGLM("gaussian").fit(f, data=df, method="mle") for f in ("mpg ~ wt", "mpg ~ wt + hp", "mpg ~ wt + hp + qsec")
    ]
    table = br.anova(*fits)
    compare(table, CASES["anova_gaussian"], "Pr(>F)")
    np.testing.assert_allclose(
        table["F"].to_numpy()[1:], np.asarray(CASES["anova_gaussian"]["f"][1:], dtype=float), rtol=1e-6
    )


def test_a_glm_against_a_net_on_the_same_inputs():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 2))
    y = rng.poisson(np.exp(np.sin(2 * X[:, 0]))).astype(float)
    glm = br.RGLM("poisson").fit(X, y, method="mle")
    net = br.RGLM("poisson", hidden=(3,), activation="tanh").fit(X, y, method="mle")
    table = br.anova(glm, net)
    assert table["Df"].iloc[1] == 13 - 3 and table["Deviance"].iloc[1] > 0 and table["Pr(>Chi)"].iloc[1] < 0.01


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda X, y: (
                br.RGLM("poisson").fit(X, y, method="mle"),
                br.RGLM("poisson").fit(X[:, :1], y + 1, method="mle"),
            ),
            "same data",
        ),
        (
            lambda X, y: (
                br.RGLM("poisson").fit(X, y, method="mle"),
                br.RGLM("negative_binomial").fit(X, y, method="mle"),
            ),
            "one family and link",
        ),
        (
            lambda X, y: (
                br.RGLM("poisson").fit(X[:, :1], y, method="mle"),
                br.RGLM("poisson").fit(X[:, 1:], y, method="mle"),
            ),
            "nested fits",
        ),
        (
            lambda X, y: (
                br.RGLM("poisson").fit(X, y, method="map"),
                br.RGLM("poisson").fit(X[:, :1], y, method="map"),
            ),
            "method='mle'",
        ),
        (lambda X, y: (br.RGLM("poisson").fit(X, y, method="mle"),), "at least two fits"),
    ],
)
def test_fits_that_do_not_nest_are_refused(make, message):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 2))
    y = rng.poisson(2.0, 60).astype(float)
    with pytest.raises(ValueError, match=message):
        br.anova(*make(X, y))
