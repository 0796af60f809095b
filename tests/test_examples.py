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
