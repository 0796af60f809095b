"""Out-of-core rows for minibatch SVI: ``X`` memory-mapped on disk, or a sequence of row chunks.

``fit(X, y, method="svi", batch_size=B)`` takes ``X`` as ``np.load(path, mmap_mode="r")`` or as a
list of such arrays (chunks of rows with the same columns), larger than memory.  ``X`` never
exists in memory as a whole:

- the rows are split into *windows* of at most :data:`WINDOW_STEPS` ``x B`` rows, none crossing a
  chunk's end; each epoch visits the windows in a new random order;
- a window is read from disk in one contiguous read (``np.fromfile`` for a memory-mapped ``.npy``,
  so the file's pages are not mapped into the process and its resident memory stays bounded);
- the window goes to the device whole, and its steps draw their ``B`` rows uniformly (with
  replacement) from it, in the same compiled step loop as in memory: a window of ``m`` rows gets
  about ``WINDOW_STEPS m / window`` steps, so over an epoch every row is equally likely to be
  drawn, and the likelihood is scaled by ``N / B`` as in memory;
- the next window is read on the host while the device runs the current one's steps (JAX
  dispatches asynchronously).

``y`` and the other per-row arrays (offset, trials, weights) are held in memory as float64 (each
``1 / p`` of ``X``'s size); they may also be memory-mapped.  Peak memory is then the per-row
vectors plus two windows of ``X`` (about ``2 x 250 B p x 8`` bytes), whatever ``N``.

Examples
--------
>>> import numpy as np
>>> source = RowSource.of([np.ones((3, 2)), np.zeros((2, 2))])
>>> source.shape, source.read(1, 0, 2).tolist()
((5, 2), [[0.0, 0.0], [0.0, 0.0]])
"""

from __future__ import annotations

import mmap
from collections.abc import Sequence

import numpy as np

from ..data import check_finite
from ..network import Dataset
from ..responses import reweighted
from .devices import ROW_FIELDS

WINDOW_STEPS = 250  # steps drawn from one window (one compiled call of the SVI step loop)


def _file_position(array: np.ndarray) -> tuple[str, int] | None:
    """``(file, byte position of the first element)`` of a C-contiguous memory map or row slice of one."""
    if not (isinstance(array, np.memmap) and array.flags.c_contiguous and array.filename):
        return None
    root = array
    while isinstance(root, np.memmap) and not isinstance(root.base, mmap.mmap):
        root = root.base
    if not isinstance(root, np.memmap):
        return None
    return array.filename, int(root.offset + (array.ctypes.data - root.ctypes.data))


def is_out_of_core(X) -> bool:
    """True for a memory-mapped array or a list/tuple of 2-D arrays (row chunks)."""
    if isinstance(X, np.memmap):
        return True
    return isinstance(X, list | tuple) and len(X) > 0 and all(isinstance(c, np.ndarray) and c.ndim == 2 for c in X)


class RowSource:
    """Row chunks of ``X`` read window by window; see the module text."""

    def __init__(self, chunks: list[np.ndarray]):
        self.chunks = chunks
        self.starts = np.concatenate([[0], np.cumsum([len(c) for c in chunks])])
        self.shape = (int(self.starts[-1]), int(chunks[0].shape[1]))

    @classmethod
    def of(cls, X, argument: str = "X") -> RowSource:
        """Check ``X`` (a memory map or a sequence of 2-D float arrays with the same columns)."""
        chunks = [X] if isinstance(X, np.ndarray) else list(X)
        if not chunks:
            raise ValueError(f"{argument} is an empty list of chunks; give at least one 2-D array")
        columns = None
        for i, chunk in enumerate(chunks):
            where = argument if len(chunks) == 1 else f"{argument} chunk {i}"
            if not isinstance(chunk, np.ndarray):
                raise TypeError(f"{where} must be a numpy array (e.g. np.load(path, mmap_mode='r')), got {chunk!r}")
            if chunk.ndim != 2:
                raise ValueError(f"{where} must be 2-D (rows x columns), got shape {chunk.shape}")
            if chunk.dtype.kind != "f":
                raise ValueError(
                    f"{where} has dtype {chunk.dtype}; out-of-core X must be float32 or float64, e.g. "
                    "np.save(path, X.astype(np.float64)) before np.load(path, mmap_mode='r')"
                )
            if len(chunk) == 0:
                raise ValueError(f"{where} has no rows")
            if columns is None:
                columns = chunk.shape[1]
            elif chunk.shape[1] != columns:
                raise ValueError(
                    f"{where} has {chunk.shape[1]} columns but chunk 0 has {columns}; every chunk needs the same "
                    "columns"
                )
        return cls(chunks)

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, chunk: int, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``start:stop`` of ``chunk`` (indices within the chunk) as float64, into ``out`` if given."""
        source = self.chunks[chunk]
        out = np.empty((stop - start, source.shape[1])) if out is None else out
        where = _file_position(source)
        if where is not None:
            # Read from the file, not through the map: its pages stay out of this process's resident memory.
            filename, position = where
            row_bytes = source.shape[1] * source.dtype.itemsize
            with open(filename, "rb") as file:
                file.seek(position + start * row_bytes)
                if source.dtype == np.float64 and source.dtype.isnative:
                    wanted = (stop - start) * row_bytes
                    if file.readinto(memoryview(out).cast("B")) != wanted:  # straight into the buffer: one copy
                        raise ValueError(f"X: {filename} is shorter than its header says (truncated file?)")
                else:
                    raw = np.frombuffer(file.read((stop - start) * row_bytes), dtype=source.dtype)
                    out[...] = raw.reshape(stop - start, source.shape[1])
        else:
            out[...] = source[start:stop]
        return out

    def check_finite(self, window: int = 1 << 16) -> None:
        """A ValueError naming the first non-finite entry of ``X`` (read window by window).

        The same pass keeps each column's mean and sd about it (:attr:`mean`, :attr:`sd`), from sums about
        the first row (which keeps the sum of squares free of cancellation for columns far from 0), for the
        standardisation of :func:`~.problem.column_map`.
        """
        reference = self.read(0, 0, 1)[0]
        total, squares = np.zeros(self.shape[1]), np.zeros(self.shape[1])
        for k, chunk in enumerate(self.chunks):
            for start in range(0, len(chunk), window):
                block = self.read(k, start, min(start + window, len(chunk)))
                check_finite(block, "X", first_row=int(self.starts[k]) + start)
                block -= reference
                total += block.sum(axis=0)
                squares += np.einsum("ij,ij->j", block, block)
        n = self.shape[0]
        centred = total / n
        self.mean = reference + centred
        self.sd = np.sqrt(np.maximum(squares / n - centred**2, 0.0))

    def windows(self, batch: int) -> list[tuple[int, int, int, int]]:
        """``(chunk, start, stop, steps)`` for every window of at most ``WINDOW_STEPS * batch`` rows."""
        size = WINDOW_STEPS * batch
        out = []
        for k, chunk in enumerate(self.chunks):
            for start in range(0, len(chunk), size):
                stop = min(start + size, len(chunk))
                out.append((k, start, stop, max(1, int(round(WINDOW_STEPS * (stop - start) / size)))))
        return out


class Batches:
    """The windows of one SVI run: ``next()`` reads the next window of rows into buffers of a fixed size.

    Returns ``((X, y, offset, trials, weights), m, steps)``: the window's ``m`` rows padded with zeros to
    ``WINDOW_STEPS * batch_rows`` (one shape, one compiled program), of which the device draws each
    step's batch uniformly from the first ``m``, for ``steps`` steps.
    """

    def __init__(
        self, source: RowSource, rows: dict, batch_rows: int, rng: np.random.Generator, standardise=None
    ) -> None:
        self.source, self.rows, self.rng = source, rows, rng
        self.shift, self.scale = (None, None) if standardise is None else standardise
        self.size = WINDOW_STEPS * batch_rows
        self.windows = source.windows(batch_rows)
        self.queue: list = []

    def next(self) -> tuple[tuple, int, int]:
        if not self.queue:
            self.queue = [self.windows[i] for i in self.rng.permutation(len(self.windows))]
        chunk, start, stop, steps = self.queue.pop()
        m = stop - start
        # Rows past m are never drawn: left uninitialised (a fresh buffer each time, since the device may use
        # it in place while the host reads the next window).
        X = np.empty((self.size, self.source.shape[1]))
        self.source.read(chunk, start, stop, out=X[:m])
        if self.shift is not None:  # the fit's standardised coordinates
            X[:m] -= self.shift
            X[:m] *= 1.0 / self.scale
        first = int(self.source.starts[chunk]) + start
        vectors = []
        for name, default in zip(ROW_FIELDS[1:], (0.0, 0.0, 1.0, 1.0), strict=True):  # y, offset, trials, weights
            values = np.full(self.size, default)
            if self.rows.get(name) is not None:  # None: every row has the default
                values[:m] = self.rows[name][first : first + m]
            vectors.append(values)
        return (X, *vectors), m, steps


def as_row_vector(values, n: int, argument: str, default: float | None = None) -> np.ndarray:
    """A per-row vector (possibly memory-mapped, or chunks) as float64 in memory, checked against ``n`` rows."""
    if values is None:  # one value for every row, without n of them in memory
        return np.broadcast_to(np.float64(default), (n,))
    if isinstance(values, list | tuple) and values and all(isinstance(v, np.ndarray) for v in values):
        values = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in values])
    if not isinstance(values, np.ndarray | Sequence):
        raise TypeError(f"{argument} must be an array with one value per row of X, got {type(values).__name__}")
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) != n:
        raise ValueError(f"{argument} must have one value per row of X ({n} rows), got shape {values.shape}")
    return values


def prepare_rows(model, X, y, offset=None, trials=None, weights=None, exposure=None):
    """The :class:`~bayes_rglm.network.Dataset` of out-of-core data: ``X`` a :class:`RowSource`, the per-row
    vectors in memory, the summary of ``y`` as :meth:`RGLM.prepare <bayes_rglm.model.RGLM.prepare>` makes it.

    Weights must be positive (a weight-0 row cannot be dropped from a file); ``X`` is checked for
    non-finite values window by window.
    """
    source = RowSource.of(X)
    n = len(source)
    if y is None:
        raise ValueError("y is required with out-of-core X (one value per row, in memory or memory-mapped)")
    y = as_row_vector(y, n, "y")
    offset = as_row_vector(offset, n, "offset", default=0.0)
    trials_given = trials is not None
    trials = as_row_vector(trials, n, "trials", default=1.0)
    if trials_given and not model.family.uses_trials:
        raise ValueError(f"trials= is only used by family 'binomial', not {model.family.name!r}")
    if exposure is not None:
        exposure = as_row_vector(exposure, n, "exposure")
        if model.link.name != "log" or np.any(exposure <= 0):
            raise ValueError("exposure= needs a log link and positive values (it adds log(exposure) to the offset)")
        offset = offset + np.log(exposure)
    for name, values in (("y", y), ("offset", offset), ("trials", trials)):
        check_finite(values, name)
    summary = model.family.validate(y, trials if trials_given else None)
    if weights is not None:
        weights = as_row_vector(weights, n, "weights")
        if not np.all(np.isfinite(weights)) or np.any(weights <= 0):
            raise ValueError(
                "weights of out-of-core data must be finite and positive (rows of weight 0 cannot be dropped from a "
                "file; leave them out when writing it)"
            )
        summary = reweighted(summary, y, trials if trials_given else None, weights)
    source.check_finite()
    names = [f"x{j}" for j in range(source.shape[1])]
    return Dataset(source, y, offset, trials, names, summary, False, weights, 0, None)
