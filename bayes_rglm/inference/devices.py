"""The devices a fit runs on: ``fit(..., devices=)`` and the one-dimensional mesh its rows are sharded over.

``devices=None`` (the default) runs on JAX's default device, as before.  An integer ``k`` takes the
first ``k`` of ``jax.devices()``; a sequence of JAX devices takes those.  With more than one device,
:func:`mesh_of` builds a :class:`jax.sharding.Mesh` with one axis, ``"rows"``: the data's rows are
split into equal contiguous shards, one per device (the rows are padded with weight-0 rows to a
multiple of the device count, which changes no sum), the parameters are replicated, and every sum
over rows is a local blocked sum followed by an all-reduce
(:func:`~bayes_rglm.inference.blocks.sum_over_rows`).  Where several processes were joined by
``jax.distributed.initialize``, ``jax.devices()`` lists every process's devices.

Examples
--------
>>> import jax
>>> mesh_of(resolve_devices(None)) is None
True
>>> resolve_devices(1) == (jax.devices()[0],)
True
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence

import jax
import numpy as np
from jax.experimental.multihost_utils import process_allgather
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ..responses import reweighted
from .problem import column_map, padded_size

ROWS = "rows"  # the mesh axis the rows are sharded over


def resolve_devices(devices) -> tuple | None:
    """``devices=`` checked: None, or a tuple of distinct JAX devices of one platform.

    Raises a ValueError or TypeError that names the argument before anything is traced.
    """
    if devices is None:
        return None
    if jax.process_count() == 1 and int(os.environ.get("JAX_NUM_PROCESSES", "1") or 1) > 1:
        raise ValueError(
            f"devices={devices!r} with JAX_NUM_PROCESSES={os.environ['JAX_NUM_PROCESSES']} but jax.distributed is not "
            "initialised: call jax.distributed.initialize(coordinator_address=..., num_processes=..., "
            "process_id=...) in every process before fitting (see the README's 'Scaling out')"
        )
    available = jax.devices()
    if isinstance(devices, bool) or isinstance(devices, float | str | bytes):
        raise TypeError(
            f"devices must be None, a positive integer or a sequence of jax devices (e.g. devices=2 or "
            f"devices=jax.devices()[:2]), got {devices!r}"
        )
    if isinstance(devices, numbers.Integral):
        count = int(devices)
        if count < 1:
            raise ValueError(f"devices must be at least 1 (the number of devices to use), got {count}")
        if count > len(available):
            raise ValueError(
                f"devices={count} asks for more devices than exist: {len(available)} "
                f"({', '.join(str(d) for d in available[:8])}); use at most {len(available)}. On CPU, "
                "XLA_FLAGS=--xla_force_host_platform_device_count=N (set before importing jax) makes N devices"
            )
        return tuple(available[:count])
    if not isinstance(devices, Sequence) and not isinstance(devices, np.ndarray):
        raise TypeError(
            f"devices must be None, a positive integer or a sequence of jax devices, got {type(devices).__name__}"
        )
    chosen = tuple(np.asarray(devices, dtype=object).ravel())
    if not chosen:
        raise ValueError("devices is empty; give None, a positive integer, or a non-empty list such as jax.devices()")
    for device in chosen:
        if not isinstance(device, jax.Device):
            raise TypeError(f"devices must hold jax devices (from jax.devices()), got {device!r}")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"devices lists a device more than once: {[str(d) for d in chosen]}")
    platforms = sorted({d.platform for d in chosen})
    if len(platforms) > 1:
        raise ValueError(
            f"devices mixes platforms ({', '.join(platforms)}); give devices of one platform, e.g. "
            "jax.devices('gpu') or jax.devices('cpu')"
        )
    return chosen


def mesh_of(devices: tuple | None):
    """The one-axis mesh ``("rows",)`` over ``devices``; None for one device or None (no sharding)."""
    if devices is None or len(devices) == 1:
        return None
    return Mesh(np.array(devices, dtype=object), (ROWS,))


ROW_FIELDS = ("X", "y", "offset", "trials", "weights")  # the Problem's arrays with one entry per row


def place(problem, mesh):
    """The problem's row arrays sharded over ``mesh``'s rows, the rest replicated on its devices.

    The rows must already be a multiple of the device count (:func:`~.problem.make_problem`'s
    ``multiple``).  Across several processes each process passes its own rows, and the global arrays
    are assembled from them (``jax.make_array_from_process_local_data``).
    """
    if mesh is None:
        return problem
    rows, replicated = NamedSharding(mesh, P(ROWS)), NamedSharding(mesh, P())
    if jax.process_count() == 1:
        put = jax.device_put
    else:

        def put(a, sharding):
            return jax.make_array_from_process_local_data(sharding, np.asarray(a))

    return problem._replace(
        **{name: put(value, rows if name in ROW_FIELDS else replicated) for name, value in problem._asdict().items()}
    )


def spans_processes(mesh) -> bool:
    """True when ``mesh`` holds devices of more than one process (``jax.distributed``)."""
    return mesh is not None and len({d.process_index for d in mesh.devices.flat}) > 1


def replicated(value, mesh):
    """``value`` (numpy) on every device of ``mesh`` (one default device without a mesh)."""
    value = np.asarray(value)
    if mesh is None:
        return jax.device_put(value)
    sharding = NamedSharding(mesh, P())
    if jax.process_count() == 1:
        return jax.device_put(value, sharding)
    return jax.make_array_from_process_local_data(sharding, value)


def local_rows(values, n: int) -> np.ndarray:
    """This process's first ``n`` rows of a row-sharded result (all rows in one process)."""
    if values.is_fully_addressable:
        return np.asarray(values)[:n]
    shards = sorted(values.addressable_shards, key=lambda shard: shard.index[0].start or 0)
    return np.concatenate([np.asarray(shard.data) for shard in shards])[:n]


def across_processes(family, data, centre: bool, standardise: bool, mesh) -> tuple:
    """What the processes of a ``jax.distributed`` run must agree on, from each one's own rows.

    Returns ``(summary, n_pad, standardisation)``: the data summary of every process's ``y`` (the
    priors' scale and the starts), the padded rows per process (the bucket of the largest process's
    rows, a multiple of its devices) and the columns' ``(shift, scale)`` over every row.  Each process
    sends its row count, column sums and ``y`` (with trials and weights) to every other.
    """
    X = np.asarray(data.X, dtype=np.float64)
    n, p = X.shape
    counts = np.asarray(process_allgather(np.array([n], dtype=np.int64))).ravel()
    total, longest = int(counts.sum()), int(counts.max())
    local_devices = sum(1 for d in mesh.devices.flat if d.process_index == jax.process_index())
    n_pad = -(-padded_size(longest) // local_devices) * local_devices
    if standardise:
        mean = np.asarray(process_allgather(X.sum(axis=0))).reshape(-1, p).sum(axis=0) / total
        squares = np.asarray(process_allgather(np.einsum("ij,ij->j", X - mean, X - mean))).reshape(-1, p).sum(0)
        standardisation = column_map(mean, np.sqrt(squares / total), centre)[:2]
    else:
        standardisation = (np.zeros(p), np.ones(p))

    def gathered(values):
        padded = np.zeros(longest)
        padded[:n] = values
        rows = np.asarray(process_allgather(padded)).reshape(-1, longest)
        return np.concatenate([row[:count] for row, count in zip(rows, counts, strict=True)])

    y = gathered(data.y)
    trials = gathered(data.trials) if family.uses_trials else None
    summary = family.validate(y, trials)
    if data.weights is not None:
        summary = reweighted(summary, y, trials, gathered(data.weights))
    return summary, n_pad, standardisation


def global_sum(value) -> float:
    """The sum over processes of a scalar each computed from its own rows."""
    return float(np.asarray(process_allgather(np.asarray([float(value)]))).sum())
