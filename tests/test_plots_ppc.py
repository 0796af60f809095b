"""The posterior predictive check of a class outcome shows class shares with intervals, not a density of 0/1."""

import numpy as np
import pytest

import bayes_rglm as br
from bayes_rglm import plots


@pytest.fixture
def captured(monkeypatch):
    figures = []

    def keep(fig, path):
        figures.append(fig)
        return path

    monkeypatch.setattr(plots, "_save", keep)
    return figures


@pytest.mark.parametrize("family, classes", [("bernoulli", 2), ("categorical", 3)])
def test_class_outcomes_get_bars_of_class_shares(captured, tmp_path, family, classes):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 2))
    y = (np.arange(90) % classes).astype(float)
    fit = br.RGLM(family).fit(X, y, method="map")
    plots.predictive_check(fit, tmp_path / "ppc.png")
    ax = captured[0].axes[0]
    heights = [bar.get_height() for bar in ax.patches]
    np.testing.assert_allclose(heights, [np.mean(y == k) for k in range(classes)])
    assert len(ax.lines) + len(ax.collections) > 0 and "class shares" in ax.get_title()


def test_a_continuous_outcome_keeps_the_density_check(captured, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    fit = br.RGLM("gaussian").fit(X, X[:, 0] + rng.normal(size=60), method="map")
    plots.predictive_check(fit, tmp_path / "ppc.png")
    assert "class shares" not in captured[0].axes[0].get_title() and not captured[0].axes[0].patches


def test_importing_the_plots_keeps_the_users_matplotlib_backend():
    """Only the command selects Agg; the library leaves a user's backend (here svg) as it is."""
    import os
    import subprocess
    import sys

    code = "import bayes_rglm.plots, matplotlib; print(matplotlib.get_backend())"
    env = dict(os.environ, MPLBACKEND="svg")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip().lower() == "svg"
