"""Every example script runs with --quick and writes its tables and plots; flags are validated."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(script, *args):
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, timeout=3000)


@pytest.mark.slow
@pytest.mark.parametrize(
    "script,outputs",
    [
        (
            "map_vs_mle.py",
            [
                "map_vs_mle.md",
                "map_vs_mle_bernoulli.png",
                "map_vs_mle_poisson.png",
                "map_vs_mle_gaussian.png",
                "map_vs_mle_categorical.png",
            ],
        ),
        ("how_deep.py", ["how_deep.md"]),
        ("prior_sweep.py", ["prior_sweep.md", "prior_sweep.png"]),
        ("approximations.py", ["approximations.md"]),
    ],
)
def test_example_quick(script, outputs, tmp_path):
    p = run(script, "--quick", "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    for name in outputs:
        assert (tmp_path / name).is_file(), name
    assert "results written to" in p.stdout
    CLAIMS[script](tmp_path)


def _map_beats_mle(folder):
    """The example's claim, on its own numbers: at depth 0 on 30 rows of breast cancer (separable, so the MLE
    does not exist) the prior's held-out lpd is far above the MLE's (full run: -0.13 against -15)."""
    import pandas as pd

    table = pd.read_csv(folder / "map_vs_mle_bernoulli.csv")
    small = table[(table["model"] == "depth 0") & (table["n_train"] == 30)].set_index("method")["test_lpd"]
    assert small["map"] > small["mle"] + 1.0 and small["map"] > -0.5, small


def _a_depth_is_chosen(folder):
    text = (folder / "how_deep.md").read_text()
    assert all(f"depth {d}" in text for d in (0, 1, 2)) and "The data support **depth" in text


def _sweep_has_a_choice(folder):
    """Every criterion picks an interior scale: neither the strongest prior of the sweep nor the weakest."""
    import re

    text = (folder / "prior_sweep.md").read_text()
    scales = [float(v) for v in re.findall(r"^\| ([\d.]+) \|", text, flags=re.M)]
    chosen = [float(v) for v in re.findall(r"^- [^:]+: ([\d.]+)$", text, flags=re.M)]
    assert len(scales) >= 3 and len(chosen) == 4, (scales, chosen)
    assert all(min(scales) < c < max(scales) for c in chosen), (scales, chosen)


def _linearised_laplace_keeps_the_map_fit(folder):
    """Even in --quick: the linearised Laplace within 0.1 of the MAP's held-out lpd, and sampling the GGN
    Gaussian through the net warned (k-hat)."""
    rows = {}
    for line in (folder / "approximations.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 8 and cells[1].lstrip("-").replace(".", "").isdigit():
            rows[cells[0]] = cells
    assert float(rows["Laplace: GGN, linearised (default)"][1]) >= float(rows["MAP plug-in"][1]) - 0.1, rows
    assert rows["Laplace: GGN, sampled through the net"][4] == "yes", rows


CLAIMS = {
    "map_vs_mle.py": _map_beats_mle,
    "how_deep.py": _a_depth_is_chosen,
    "prior_sweep.py": _sweep_has_a_choice,
    "approximations.py": _linearised_laplace_keeps_the_map_fit,
}


@pytest.mark.parametrize(
    "script,args",
    [
        ("map_vs_mle.py", ["--family", "poison"]),
        ("map_vs_mle.py", ["--reps", "0"]),
        ("how_deep.py", ["--method", "gibbs"]),
        ("prior_sweep.py", ["--n-train", "3"]),
    ],
)
def test_example_bad_flags(script, args):
    p = run(script, *args)
    assert p.returncode == 2 and "Traceback" not in p.stderr
