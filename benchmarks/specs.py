"""Every ready model in ``bayes_rglm/models/``, fitted by ``bayes-rglm fit`` with its intended method and full settings.

Usage::

    python benchmarks/specs.py                 # every spec, its own method and settings
    python benchmarks/specs.py --quick         # the same with --quick (CI-sized runs)
    python benchmarks/specs.py --specs a,b     # a subset
    python benchmarks/specs.py --out PATH      # where the markdown section goes (default BENCHMARKS.md)

Each spec runs as its own ``bayes-rglm fit SPEC --quiet --out DIR`` subprocess
(what a user runs), one after another.  Reported per spec: family/link,
hidden layers, method, the fit time the command records (``metrics.json``:
``model.fit`` only), the whole command's wall time (imports, compilation,
plots and files included), and the held-out metrics on the spec's test split
(log predictive density per observation, accuracy or RMSE).  The script
rewrites only its own section of the markdown file, between
``<!-- specs:start -->`` and ``<!-- specs:end -->``, atomically.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import footer, load_average, versions, write_section

START, END = "<!-- specs:start -->", "<!-- specs:end -->"
REPO_ROOT = Path(__file__).resolve().parents[1]
METRICS = ("test_lpd", "accuracy", "rmse", "ece")


def run_spec(name: str, quick: bool, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / name
        cmd = [sys.executable, "-m", "bayes_rglm.cli", "fit", name, "--quiet", "--out", str(out), "--seed", str(seed)]
        if quick:
            cmd.append("--quick")
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            return {"spec": name, "error": (proc.stderr or proc.stdout).strip().splitlines()[-1:], "wall_s": wall}
        metrics = json.loads((out / "metrics.json").read_text())
        warnings = sorted({line.split(":", 3)[-1].strip() for line in proc.stderr.splitlines() if "Warning" in line})
        return {**metrics, "wall_s": wall, "warnings": warnings}


def render(rows: list[dict], specs: dict, args, elapsed: float, load) -> str:
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [
        START,
        "## Ready models (`benchmarks/specs.py`)",
        "",
        f"Run {now}{' with `--quick`' if args.quick else ''}: every spec in `bayes_rglm/models/` by "
        "`bayes-rglm fit SPEC` "
        f"with {'quick' if args.quick else 'its intended method and full'} settings, seed {args.seed}, one after "
        f"another; {elapsed:.0f} s in all. *fit s*: `model.fit` alone (from `metrics.json`); *command s*: the "
        "whole command (start-up, compilation, plots, files). Metrics on each spec's held-out split: *lpd/obs* is "
        "the log predictive density per observation (posterior predictive for Bayesian methods, plug-in for "
        "mle/map), *ECE* the expected calibration error (10 bins) for classifiers.",
        "",
        "| spec | family / link | hidden | method | fit s | command s | lpd/obs | accuracy | RMSE | ECE |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        spec = specs[r["spec"]]
        hidden = " x ".join(str(h) for h in spec["hidden"]) or "--"
        if spec["hidden"]:
            hidden += f" {'/'.join(sorted(set(spec['activations'])))}"
        if "error" in r:
            lines.append(
                f"| {r['spec']} | {spec['family']} / {spec['link']} | {hidden} | -- | failed: "
                f"{' '.join(r['error'])} | {r['wall_s']:.1f} | | | | |"
            )
            continue
        cells = [f"{r[k]:.4g}" if isinstance(r.get(k), float) else "--" for k in METRICS]
        lines.append(
            f"| {r['spec']} | {spec['family']} / {spec['link']} | {hidden} | {r['method']} | "
            f"{r['seconds']:.1f} | {r['wall_s']:.1f} | " + " | ".join(cells) + " |"
        )
    notes = [f"{r['spec']}: {w}" for r in rows for w in r.get("warnings", [])]
    if notes:
        lines += ["", "Warnings printed by the commands:", ""] + [f"- {w}" for w in notes]
    lines += footer(load, None, versions(("jax", "numpyro", "arviz", "bayes_rglm")), END)
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="run each spec with --quick")
    parser.add_argument("--specs", type=lambda s: s.split(","), default=None, help="comma-separated spec names")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "BENCHMARKS.md", help="markdown file to update")
    args = parser.parse_args(argv)

    listing = subprocess.run(
        [sys.executable, "-m", "bayes_rglm.cli", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    specs = {s["name"]: s for s in json.loads(listing.stdout)}
    names = args.specs or sorted(specs)
    unknown = [n for n in names if n not in specs]
    if unknown:
        parser.error(f"unknown spec(s) {', '.join(unknown)}; known: {', '.join(sorted(specs))}")
    load, started, rows = load_average(), time.perf_counter(), []
    for name in names:
        print(f"[specs] {name} ...", end=" ", flush=True)
        row = run_spec(name, args.quick, args.seed)
        rows.append(row)
        shown = (
            "failed"
            if "error" in row
            else ", ".join(f"{k} {row[k]:.4g}" for k in METRICS if isinstance(row.get(k), float))
        )
        print(
            f"{row.get('method', '?')} fit {row.get('seconds', float('nan')):.1f} s; {shown} ({row['wall_s']:.0f} s)",
            flush=True,
        )
    section = render(rows, specs, args, time.perf_counter() - started, load)
    write_section(args.out, section, START, END)
    print(f"[specs] wrote {args.out}")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
