"""Smoke tests of benchmarks/mlp_map.py, nuts_spector.py and startup.py: they run and report what they promise."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _run(script: str, out: Path) -> str:
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_mlp_map_quick(tmp_path):
    out = tmp_path / "B.md"
    stdout = _run("mlp_map.py", out)
    results = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    assert len(results) == 5 and not any("error" in r for r in results)
    by = {(r["library"], r["method"], r["n"], r["budget"]): r for r in results}
    # The same objective: with scikit-learn's budget of 200 L-BFGS iterations the two land close,
    # and to the default tolerance bayes_rglm goes lower.
    sklearn = by[("sklearn", "map", 2000, 0)]["objective"]
    assert abs(by[("bayes_rglm", "map", 2000, 200)]["objective"] - sklearn) < 0.01
    assert by[("bayes_rglm", "map", 2000, 0)]["objective"] < sklearn
    laplace = by[("bayes_rglm", "laplace", 2000, 0)]
    assert laplace["sd_finite"] and laplace["optimizer"] == "lbfgs + newton"
    text = out.read_text()
    assert text.count("<!-- mlp_map:start -->") == 1 and "scikit-learn's" in text
    assert out.with_suffix(".png").stat().st_size > 1000


@pytest.mark.slow
def test_nuts_spector_quick(tmp_path):
    out = tmp_path / "B.md"
    stdout = _run("nuts_spector.py", out)
    results = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    assert [r["chain_method"] for r in results] == ["sequential", "parallel", "vectorized"]
    for r in results:
        assert r["first"]["compiles"] > 0
        assert all(refit["compiles"] == 0 for refit in r["refits"])
        assert r["other_lengths"]["compiles"] == 0  # another num_warmup and num_samples
    assert out.read_text().count("<!-- nuts_spector:end -->") == 1


@pytest.mark.slow
def test_startup_quick(tmp_path):
    out = tmp_path / "B.md"
    stdout = _run("startup.py", out)
    runs = json.loads(next(line for line in stdout.splitlines() if line.startswith("{")))
    assert set(runs) == {"bayes_rglm", "bare JAX"} and all(len(v) == 2 for v in runs.values())
    for r in runs["bayes_rglm"] + runs["bare JAX"]:
        assert r["import"] > 0 and r["first"] > r["second"] > 0  # the first fit compiles, the second does not
    # Both sides fit the same logistic regression: the intercepts agree to the solvers' tolerance.
    assert abs(runs["bayes_rglm"][0]["b0"] - runs["bare JAX"][0]["b0"]) < 1e-6
    text = out.read_text()
    assert text.count("<!-- startup:start -->") == 1 and "bare JAX" in text
