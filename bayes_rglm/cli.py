"""The ``bayes-rglm`` command: list, fit and compare the ready model specs in ``bayes_rglm/models/``.

- ``bayes-rglm list [--json]``
- ``bayes-rglm fit [SPEC] [--method M] [--out DIR] [--seed N] [--quick] [--quiet]``
- ``bayes-rglm compare SPEC --methods mle,map,svi,nuts [--out DIR] [--quick] [--quiet]``
- ``bayes-rglm info``

Exit codes: 0 success; 2 usage or spec error (one line, no traceback); 1 a
failure while fitting; 130 interrupted (Ctrl-C).  Output folders are written in a temporary folder
beside the target and swapped in at the end, so a failed run never leaves a
half-written result or replaces a good one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from .spec import METHOD_NAMES, SpecError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors: one line, exit code 2
        raise SpecError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bayes-rglm", description="Bayesian recursive GLMs: list, fit and compare ready models.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    listing = sub.add_parser("list", help="the ready model specs (bayes_rglm/models/)")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    fit = sub.add_parser("fit", help="fit a spec (default: the default spec) and write results")
    fit.add_argument("spec", nargs="?", help="spec file or name (see `bayes-rglm list`)")
    fit.add_argument("--method", choices=METHOD_NAMES, help="override the spec's method")
    fit.add_argument("--out", help="output folder (default: bayes_rglm_out/SPEC_NAME)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--quick", action="store_true", help="shrink warm-up, draws and steps for a smoke run")
    fit.add_argument("--quiet", action="store_true", help="no progress bars; print only where results went")
    compare = sub.add_parser("compare", help="fit several methods on the same split")
    compare.add_argument("spec")
    compare.add_argument("--methods", default="mle,map,laplace,svi,nuts")
    compare.add_argument("--out")
    compare.add_argument("--seed", type=int, default=0)
    compare.add_argument("--quick", action="store_true")
    compare.add_argument("--quiet", action="store_true")
    sub.add_parser("info", help="versions and JAX devices")
    return parser


def _list(args) -> int:
    from .spec import list_specs

    rows = [s.summary_row() for s in list_specs()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        hidden = "x".join(map(str, r["hidden"])) or "-"
        acts = ",".join(sorted(set(r["activations"]))) or "-"
        mark = "*" if r["default"] else " "
        print(
            f"{mark} {r['name']:<{width}}  {r['family']:<11} {r['link']:<9} hidden={hidden:<6} act={acts:<8} "
            f"data={r['data']:<14} method={r['method']:<8} {r['description']}"
        )
    print("(* the default spec)")
    return 0


def _info(args) -> int:
    import arviz
    import jax
    import numpy
    import numpyro

    from . import __version__

    print(f"bayes_rglm {__version__}")
    for module in (jax, numpyro, arviz, numpy):
        print(f"{module.__name__} {module.__version__}")
    print("devices:", ", ".join(str(d) for d in jax.devices()))
    return 0


def write_atomically(out: Path, write) -> None:
    """Build the folder in a temporary sibling, then swap it in; on failure ``out`` is left as it was."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write(tmp)
        with _interrupts_deferred():  # Ctrl-C between the two renames would leave neither folder at ``out``
            if out.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
                os.replace(out, old / out.name)
                os.replace(tmp, out)
                shutil.rmtree(old)
            else:
                os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


@contextlib.contextmanager
def _interrupts_deferred():
    """Hold SIGINT and SIGTERM until the block ends (main thread, POSIX); elsewhere run the block as it is."""
    held = {signal.SIGINT, signal.SIGTERM}
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _plots():
    """The plotting module, under matplotlib's non-interactive Agg backend: the command draws files only (the
    library itself leaves the user's backend alone)."""
    import matplotlib

    matplotlib.use("Agg")
    from . import plots

    return plots


def _run(spec, method: str, args, split=None):
    """Fit ``spec`` by ``method``; returns (fit, metrics, split, seconds)."""
    from .experiment import held_out_metrics, split_data

    model = spec.model()
    split = split or split_data(spec.data, model.family.has_classes)
    options = spec.method_options(method, quick=args.quick)
    started = time.perf_counter()
    formula = spec.data.get("formula")
    fit = model.fit(
        formula or split.X_train,
        None if formula else split.y_train,
        data=split.X_train if formula else None,
        method=method,
        seed=args.seed,
        trials=split.trials_train,
        progress=False if args.quiet else None,
        **options,
    )
    seconds = time.perf_counter() - started
    metrics = {
        "spec": spec.name,
        "method": method,
        "seconds": round(seconds, 3),
        **held_out_metrics(fit, split.X_test, split.y_test, trials=split.trials_test),
    }
    return fit, metrics, split, seconds


def _fit(args) -> int:
    plots = _plots()
    from .spec import find_spec

    spec = find_spec(args.spec)
    method = args.method or spec.method
    fit, metrics, split, _ = _run(spec, method, args)
    out = Path(args.out or Path("bayes_rglm_out") / spec.name)

    def write(folder: Path) -> None:
        files = {}
        fit.summary().to_csv(folder / "summary.csv")
        files["summary.csv"] = "parameter summary"
        idata = None
        if fit.samples is not None:
            idata = fit.to_arviz()
            idata.to_netcdf(str(folder / "posterior.nc"))
            files["posterior.nc"] = "ArviZ InferenceData (netCDF)"
            if fit.model.depth > 0:
                fit.summary(kind="function").to_csv(folder / "function_summary.csv")
                files["function_summary.csv"] = "r-hat and ESS of E[y|x] at probe rows"
        fit.save(folder / "fit.nc")
        files["fit.nc"] = "the fit, loadable with bayes_rglm.load"
        pictures = [
            plots.trace_or_rank(fit, idata, folder / "trace.png"),
            plots.elbo_curve(fit, folder / "elbo.png"),
            plots.predictive_check(fit, folder / "ppc.png", seed=args.seed),
            plots.coefficients(fit, folder / "coefficients.png"),
        ]
        if fit.model.family.has_classes:
            pictures.append(
                plots.calibration(split.y_test, fit.predict_proba(split.X_test), folder / "calibration.png")
            )
        for picture in filter(None, pictures):
            files[picture.name] = "plot"
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
        files["metrics.json"] = "held-out metrics"
        _report(folder, spec, fit, metrics, files, split.description)

    write_atomically(out, write)
    if not args.quiet:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float) and k != "seconds")
        print(
            f"{spec.name}: {fit.model.family.name}/{fit.model.link.name} by {method} in {metrics['seconds']:.1f}s; "
            f"held-out {shown}"
        )
    print(f"results written to {out.resolve()}")
    return 0


def _report(folder: Path, spec, fit, metrics: dict, files: dict, description: str) -> None:
    model = fit.model
    lines = [
        f"# {spec.name}",
        "",
        spec.description,
        "",
        f"- data: {description}",
        f"- model: family {model.family.name}, link {model.link.name}, hidden {list(model.hidden)}, "
        f"activations {[a.name for a in model.activations]}",
        f"- method: {fit.method}",
        "",
        "## Held-out metrics",
        "",
        "| metric | value |",
        "| --- | --- |",
    ]
    lines += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()]
    if "max_r_hat" in fit.info:
        lines += [
            "",
            f"Diagnostics ({fit.info['diagnosed_on']}): max r-hat {fit.info['max_r_hat']:.3f}, "
            f"min bulk ESS {fit.info['min_ess_bulk']:.0f}, divergences {fit.info.get('divergences', 0)}",
        ]
    if fit.info.get("pareto_k") is not None:
        k = fit.info["pareto_k"]
        verdict = "reliable (k-hat <= 0.7)" if k <= 0.7 else "unreliable (k-hat > 0.7): prefer method nuts"
        lines += [
            "",
            f"Approximation check (PSIS, against {fit.info['pareto_k_target']}): Pareto k-hat {k:.2f}, {verdict}",
        ]
    lines += ["", "## Files", ""]
    for name, what in files.items():
        lines.append(f"- [{name}]({name}): {what}")
        if name.endswith(".png"):
            lines.append(f"\n  ![{name}]({name})\n")
    (folder / "report.md").write_text("\n".join(lines) + "\n")


def _compare(args) -> int:
    import pandas as pd

    plots = _plots()
    from .experiment import split_data
    from .spec import find_spec

    spec = find_spec(args.spec)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHOD_NAMES]
    if unknown or not methods:
        raise SpecError(
            f"--methods: {unknown[0] if unknown else '(empty)'!r} is not a method; allowed: {','.join(METHOD_NAMES)}"
        )
    from .diagnostics import distance_from

    split = split_data(spec.data, spec.model().family.has_classes)
    rows, fits = [], {}
    for method in methods:
        fits[method], metrics, _, _ = _run(spec, method, args, split)
        k = fits[method].info.get("pareto_k")
        metrics["pareto_k"] = float("nan") if k is None else round(float(k), 3)
        rows.append(metrics)
        if not args.quiet:
            print(f"{method:>8}: held-out lpd {metrics['test_lpd']:.4f} in {metrics['seconds']:.1f}s")
    if "nuts" in fits:
        # How far each approximation is from NUTS: posterior means apart in NUTS sds, and the sd ratio
        # (parameters at depth 0; E[y|x] at probe rows with hidden layers).
        for row, method in zip(rows, methods, strict=True):
            distance = distance_from(fits[method], fits["nuts"])
            row["mean_diff_nuts_sd"] = round(distance["mean_diff_sd"], 3)
            row["sd_ratio_nuts"] = round(distance["sd_ratio"], 3)
    table = pd.DataFrame(rows)
    out = Path(args.out or Path("bayes_rglm_out") / f"{spec.name}_compare")

    def write(folder: Path) -> None:
        table.to_csv(folder / "comparison.csv", index=False)
        (folder / "comparison.md").write_text(markdown_table(table))
        plots.method_comparison(table, folder / "comparison.png")

    write_atomically(out, write)
    print(f"results written to {out.resolve()}")
    return 0


def markdown_table(table) -> str:
    """A pandas DataFrame as a GitHub markdown table (no extra dependency)."""
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + " --- |" * len(table.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _compilation_cache() -> None:
    """Keep XLA's compiled programs between runs of the command (JAX's persistent compilation cache).

    The command is an application, so it may set this process-wide option: a
    second ``bayes-rglm fit`` of the same spec then skips most compilation.
    The folder is ``$JAX_COMPILATION_CACHE_DIR`` when set, else
    ``$XDG_CACHE_HOME/bayes_rglm/jax`` (``~/.cache/bayes_rglm/jax``);
    ``BAYES_RGLM_NO_CACHE=1`` turns it off.  The library itself never sets it.
    """
    if os.environ.get("BAYES_RGLM_NO_CACHE"):
        return
    import jax

    if jax.config.jax_compilation_cache_dir:
        return
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.path.join(base, "bayes_rglm", "jax")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return  # a read-only home: run without the cache
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.command in ("fit", "compare"):
            _compilation_cache()
        return {"list": _list, "fit": _fit, "compare": _compare, "info": _info}[args.command](args)
    except SpecError as err:
        print(f"bayes-rglm: error: {err}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, FloatingPointError, OSError, RuntimeError) as err:
        print(f"bayes-rglm: fitting failed: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bayes-rglm: interrupted; no results were written and earlier results are unchanged", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
