#!/usr/bin/env bash
# The GPU run (benchmarks/gpu.py): MAP and SVI in float64 and float32, depth-0 MLE and NUTS with
# vectorised chains on the default JAX device, written to BENCHMARKS.md with the card's name. Needs jax
# with CUDA (pip install -e ".[gpu]").
# Stops after ten minutes whatever happens.
set -euo pipefail
cd "$(dirname "$0")"
python -c "import jax; d = jax.devices()[0]; print('device:', d.platform, d.device_kind)"
timeout 600 python gpu.py "$@"
