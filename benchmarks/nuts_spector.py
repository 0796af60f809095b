"""NUTS on spector's logit model: the first fit in a fresh process and same-shape refits.

Usage::

    python benchmarks/nuts_spector.py             # 4 chains x (1,000 + 1,000), 3 refits per chain method
    python benchmarks/nuts_spector.py --quick     # 2 chains x (200 + 200), 1 refit (smoke test)
    python benchmarks/nuts_spector.py --out PATH  # where the markdown section goes (default BENCHMARKS.md)

Each chain method runs in its own fresh subprocess with JAX's persistent compilation cache off: the
first ``fit`` call is timed whole (tracing and compilation included), then refits with new seeds and
a new ``num_warmup``/``num_samples`` pair, counting XLA compilations (``bayes_rglm.runtime``).
Reported beside the times: leapfrog steps per iteration, bulk ESS and r-hat.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

from _common import footer, load_average, versions, write_section

START, END = "<!-- nuts_spector:start -->", "<!-- nuts_spector:end -->"
RESULT_PREFIX = "NUTS_SPECTOR_RESULT "


def worker(chain_method: str, chains: int, warmup: int, samples: int, refits: int) -> dict:
    import jax

    jax.config.update("jax_enable_compilation_cache", False)
    import statsmodels.api as sm

    import bayes_rglm as br
    from bayes_rglm.runtime import compilations

    data = sm.datasets.spector.load_pandas().data
    X, y = data[["GPA", "TUCE", "PSI"]], data["GRADE"]
    model = br.RGLM("bernoulli", link="logit")

    def fit(seed, nw, ns):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", br.DiagnosticsWarning)
            started = time.perf_counter()
            with compilations() as counter:
                result = model.fit(
                    X,
                    y,
                    method="nuts",
                    seed=seed,
                    num_warmup=nw,
                    num_samples=ns,
                    num_chains=chains,
                    chain_method=chain_method,
                    progress=False,
                )
            seconds = time.perf_counter() - started
        stats = result.info["sample_stats"]
        return {
            "seconds": seconds,
            "compiles": counter.count,
            "steps_per_iteration": float(stats["n_steps"].mean()),
            "ess": result.info["min_ess_bulk"],
            "r_hat": result.info["max_r_hat"],
            "divergences": result.info["divergences"],
        }

    first = fit(0, warmup, samples)
    again = [fit(seed, warmup, samples) for seed in range(1, refits + 1)]
    other = fit(99, warmup // 2, samples + samples // 3)  # another num_warmup and num_samples
    return {"chain_method": chain_method, "first": first, "refits": again, "other_lengths": other}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "BENCHMARKS.md"))
    parser.add_argument("--worker", nargs=5)
    args = parser.parse_args()
    if args.worker:
        method, *numbers = args.worker
        print(RESULT_PREFIX + json.dumps(worker(method, *map(int, numbers))), flush=True)
        return
    chains, warmup, samples, refits = (2, 200, 200, 1) if args.quick else (4, 1000, 1000, 3)
    load = load_average()
    started_at = _dt.datetime.now(_dt.UTC)
    results = []
    for method in ("sequential", "parallel", "vectorized"):
        cmd = [sys.executable, __file__, "--worker", method, str(chains), str(warmup), str(samples), str(refits)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
        line = next((x for x in proc.stdout.splitlines() if x.startswith(RESULT_PREFIX)), None)
        if line is None:
            raise RuntimeError(f"worker {method} failed: {(proc.stderr or proc.stdout)[-500:]}")
        results.append(json.loads(line[len(RESULT_PREFIX) :]))
        print(json.dumps(results[-1]), flush=True)
    lines = [
        START,
        "## NUTS on spector's logit model (`benchmarks/nuts_spector.py`)",
        "",
        f"Run {started_at:%Y-%m-%d %H:%M} UTC. {chains} chains x ({warmup:,} + {samples:,}), default prior, each "
        "chain method in a fresh process with the persistent compilation cache off. Refits use new seeds; "
        "the last row uses another `num_warmup` and `num_samples`.",
        "",
        "| chain method | first fit s (compile included) | refit s (median) | compilations per refit | "
        "other lengths s (compilations) | leapfrog steps / iteration | min bulk ESS | max r-hat |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for r in results:
        refit_s = statistics.median(x["seconds"] for x in r["refits"])
        compiles = max(x["compiles"] for x in r["refits"])
        other = r["other_lengths"]
        lines.append(
            f"| {r['chain_method']} | {r['first']['seconds']:.2f} | {refit_s:.2f} | {compiles} | "
            f"{other['seconds']:.2f} ({other['compiles']}) | {r['refits'][0]['steps_per_iteration']:.1f} | "
            f"{r['refits'][0]['ess']:.0f} | {r['refits'][0]['r_hat']:.4f} |"
        )
    import jax

    lines += footer(load, jax.default_backend(), versions(["jax", "numpyro"]), END)
    write_section(Path(args.out), "\n".join(lines) + "\n", START, END)


if __name__ == "__main__":
    main()
