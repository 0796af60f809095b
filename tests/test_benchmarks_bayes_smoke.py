"""Smoke tests of benchmarks/svi_minibatch.py and benchmarks/nuts_bnn.py: they run, write their sections, and
every expected table row is there with finite numbers."""

import math
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _run(script: str, out: Path, timeout: int, *extra: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out.read_text()


def _rows(text: str, n_cells: int) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == n_cells:
                rows.append(cells)
    return rows


def _number(cell: str) -> float:
    return float(cell.split()[0].replace(",", ""))


def _check_section(text: str, name: str) -> None:
    assert "kept above" in text and "kept below" in text and "stale" not in text
    assert text.count(f"<!-- {name}:start -->") == 1 and text.count(f"<!-- {name}:end -->") == 1
    assert "load average at start" in text and "Versions:" in text


@pytest.mark.slow
def test_svi_minibatch_quick(tmp_path):
    out = tmp_path / "B.md"
    out.write_text(
        "# Benchmarks\n\nkept above\n\n<!-- svi_minibatch:start -->\nstale\n<!-- svi_minibatch:end -->\n\nkept below\n"
    )
    out.chmod(0o644)
    text = _run("svi_minibatch.py", out, timeout=1500)
    _check_section(text, "svi_minibatch")
    assert stat.S_IMODE(out.stat().st_mode) == 0o644

    rows = {(c[0], c[1]): c for c in _rows(text, 12) if c[0] == "20,000"}
    expected = {"bayes_rglm", "numpyro plate(subsample_size)", "jax+optax"}
    assert {impl for _, impl in rows} == expected
    for cells in rows.values():
        steps, rows_per_s, peak = _number(cells[2]), _number(cells[3]), _number(cells[5])
        assert steps > 0 and math.isfinite(steps) and peak > 0
        assert rows_per_s == pytest.approx(steps * 1024, rel=0.01, abs=1024)
    assert _number(rows[("20,000", "bayes_rglm")][4]) == pytest.approx(1.0)

    steps = {c[1] for c in _rows(text, 6) if c[0] == "20,000"}  # the decomposition
    assert steps == {
        "library step",
        "numpyro SVI step (AutoNormal, randint rows)",
        "jax+optax",
        "numpyro plate(subsample_size)",
    }

    targets = [c for c in _rows(text, 7) if c[0] == "20,000"]
    assert len(targets) == 1
    assert all(("yes" in cell) or ("no" in cell) for cell in targets[0][1:])


@pytest.mark.slow
def test_nuts_bnn_quick(tmp_path):
    out = tmp_path / "B.md"
    out.write_text(
        "# Benchmarks\n\nkept above\n\n<!-- nuts_bnn:start -->\nstale\n<!-- nuts_bnn:end -->\n\nkept below\n"
    )
    # The sin setting only, 50 + 50 draws: the bnn setting runs at maximum tree depth (3.5 min here).
    text = _run("nuts_bnn.py", out, 2400, "--settings", "sin", "--warmup", "50", "--samples", "50")
    _check_section(text, "nuts_bnn")

    rows = {(c[0], c[1]): c for c in _rows(text, 17) if c[0] in ("bnn", "sin")}
    implementations = {
        "bayes_rglm (default: parallel, host threads)",
        "bayes_rglm, chain_method='sequential'",
        "hand-written numpyro (default: sequential on one device)",
        "hand-written numpyro, set_host_device_count + parallel",
    }
    assert set(rows) == {("sin", i) for i in implementations}
    for cells in rows.values():
        ess_per_s, ess = _number(cells[2]), _number(cells[4])
        assert ess_per_s > 0 and math.isfinite(ess_per_s) and ess > 0

    targets = {(c[0], c[1]): c for c in _rows(text, 8) if c[0] in ("bnn", "sin")}
    baselines = {i for i in implementations if i.startswith("hand-written")}
    assert set(targets) == {("sin", b) for b in baselines}
    for cells in targets.values():
        assert re.fullmatch(r"\d+\.\d\d \((yes|\*\*no\*\*)\)", cells[2]), cells[2]


@pytest.mark.slow
def test_specs_quick_subset(tmp_path):
    out = tmp_path / "B.md"
    out.write_text("# Benchmarks\n\nkept above\n\n<!-- specs:start -->\nstale\n<!-- specs:end -->\n\nkept below\n")
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "specs.py"),
            "--quick",
            "--specs",
            "wine_softmax,star98_binomial",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = out.read_text()
    _check_section(text, "specs")
    rows = {c[0]: c for c in _rows(text, 10) if c[0] in ("wine_softmax", "star98_binomial")}
    assert set(rows) == {"wine_softmax", "star98_binomial"}
    assert rows["wine_softmax"][3] == "map" and rows["star98_binomial"][3] == "mle"
    assert 0.5 <= _number(rows["wine_softmax"][7]) <= 1.0  # held-out accuracy of a softmax on wine
    assert math.isfinite(_number(rows["star98_binomial"][6]))  # lpd/obs
    assert _number(rows["star98_binomial"][8]) > 0  # RMSE
