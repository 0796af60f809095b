"""Pieces shared by the benchmark scripts: load, compilation counting, versions, the BENCHMARKS.md writer.

Each script is run as ``python benchmarks/NAME.py`` (so this folder is on
``sys.path``) and rewrites only its own section of the markdown file, between
``<!-- NAME:start -->`` and ``<!-- NAME:end -->``, atomically.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)


def load_average() -> list[float] | None:
    """The 1/5/15-minute load averages, or None where the platform has none."""
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def fmt_load(load, digits: int = 2) -> str:
    return "n/a" if not load else f"{load[0]:.{digits}f}"


def yes(flag: bool) -> str:
    return "yes" if flag else "**no**"


class Compiles:
    """Counts XLA backend compilations and sums trace + lower + compile seconds (``jax.monitoring``)."""

    def __init__(self):
        from jax import monitoring

        self.count, self.seconds, self.largest = 0, 0.0, []
        monitoring.register_event_duration_secs_listener(self._listen)

    def _listen(self, event, duration, **kwargs):
        if event in COMPILE_EVENTS:
            self.seconds += duration
            if event == COMPILE_EVENTS[2]:
                self.count += 1
                self.largest.append((str(kwargs.get("fun_name", "?")), float(duration)))

    def reset(self):
        self.count, self.seconds, self.largest = 0, 0.0, []

    def snapshot(self) -> dict:
        top = sorted(self.largest, key=lambda c: -c[1])[:2]
        return {"compiles": self.count, "compile_s": self.seconds, "compile_top": top}


def versions(modules) -> dict:
    """``{label: version}`` for python, numpy and each ``(label, module)`` (or module name) in ``modules``."""
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for entry in modules:
        label, module = entry if isinstance(entry, tuple) else (entry, entry)
        try:
            out[label] = __import__(module).__version__
        except Exception:  # pragma: no cover - reporting only
            out[label] = "n/a"
    return out


def machine_line(load, backend: str | None = None) -> str:
    """One line describing the machine, backend and load at the start of the run."""
    machine = f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), {platform.system()}"
    if backend:
        machine += f", JAX backend {backend}"
    if load is not None:
        machine += f", load average at start {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min)"
    return machine


def footer(load, backend, version_info: dict, end: str) -> list[str]:
    """The closing lines of a section: machine, versions, the caveat about load, and the end marker."""
    return [
        "",
        f"Machine: {machine_line(load, backend)}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in version_info.items())
        + ". Thread settings left at the libraries' defaults. Other processes may have been running; compare "
        "ratios within one run rather than absolute rates across runs.",
        end,
    ]


def write_section(path: Path, section: str, start: str, end: str) -> None:
    """Replace (or append) the marked section of ``path`` atomically; a new file gets mode 644."""
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    if start in old and end in old and old.index(start) < old.index(end):
        head, rest = old.split(start, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        new = head + section + ("\n" + tail if tail else "")
    else:
        new = old.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(new)
        os.chmod(tmp, mode)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def worker_result(cmd: list[str], prefix: str, label: str) -> dict:
    """Run a benchmark worker subprocess and return the JSON of its last stdout line starting with ``prefix``.

    A failed worker (non-zero exit, or no result line) has the tails of its output copied to stderr and
    raises ``RuntimeError`` naming ``label``.
    """
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(prefix)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-4000:] + "\n" + proc.stderr[-4000:] + "\n")
        raise RuntimeError(f"worker {label} failed with exit code {proc.returncode}")
    return json.loads(lines[-1][len(prefix) :])


def timed(call):
    """``(seconds, result)`` of ``call()``: the whole call as a user waits for it."""
    started = time.perf_counter()
    out = call()
    return time.perf_counter() - started, out
