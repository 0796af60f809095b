"""Smoke tests of benchmarks/glm_mle.py (every library reaches one optimum) and benchmarks/precision.py (float32 stays
close to float64); each runs and writes its section."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "glm_mle.py"
LIBRARIES = ("bayes_rglm", "statsmodels", "glum", "sklearn")
FAMILIES = ("logistic", "poisson")


@pytest.mark.slow
def test_glm_mle_quick(tmp_path):
    pytest.importorskip("glum")
    pytest.importorskip("statsmodels")
    out = tmp_path / "B.md"
    out.write_text("# Benchmarks\n\nkept above\n\n<!-- glm_mle:start -->\nstale\n<!-- glm_mle:end -->\n\nkept below\n")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out)], capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    text = out.read_text()
    assert "kept above" in text and "kept below" in text and "stale" not in text
    assert text.count("<!-- glm_mle:start -->") == 1 and text.count("<!-- glm_mle:end -->") == 1

    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 9 and cells[0] in LIBRARIES and cells[1] in FAMILIES:
            rows[(cells[0], cells[1])] = float(cells[5])  # NLL column
    assert set(rows) == {(lib, fam) for lib in LIBRARIES for fam in FAMILIES}
    for family in FAMILIES:
        reference = rows[("statsmodels", family)]
        for lib in LIBRARIES:
            assert rows[(lib, family)] == pytest.approx(reference, rel=1e-6), (lib, family)

    # No recompilation: zero XLA compilations after the first bayes_rglm fit, for both families.
    assert len(re.findall(r"; 0 compilations after the first fit", text)) == len(FAMILIES)


@pytest.mark.slow
def test_precision_quick(tmp_path):
    out = tmp_path / "B.md"
    out.write_text("# Benchmarks\n\n<!-- precision:start -->\nstale\n<!-- precision:end -->\n")
    script = SCRIPT.parent / "precision.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--out", str(out)], capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = out.read_text()
    assert "stale" not in text and text.count("<!-- precision:start -->") == 1
    assert len(re.findall(r"^\| [^|]+ \| float32 \|", text, flags=re.M)) == 2
    distance = float(re.search(r"coefficients within ([\d.e+-]+) SE", text).group(1))
    assert distance < 0.05  # float32 keeps the MLE to a small fraction of a standard error
    assert re.search(r"\d[\d,]* steps/s \(\d+\.\d+x float64\)", text)
