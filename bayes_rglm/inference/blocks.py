"""Sums and maps over blocks of rows: each block is read once and stays in cache, and intermediates exist
for one block at a time.

Examples
--------
>>> import jax.numpy as jnp
>>> X = jnp.ones((4096, 3))
>>> float(sum_over_rows(lambda x: jnp.sum(x), X))
12288.0
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def row_chunk(n: int, p: int) -> int:
    """Rows per block for sums over rows: a power of two dividing ``n`` with a block of at most ~2 MiB.

    Summing block by block (a ``lax.scan``) keeps each block in cache while it
    is used: on CPU this halves the time of ``X' diag(h) X`` at 100k x 50, and
    lets one read of ``X`` serve ``eta``, the gradient and the cross-products.
    """
    target = 1 << max(int(np.floor(np.log2(max(2**18 // max(p, 1), 1)))), 9)
    chunk = n & -n  # the largest power of two dividing n
    chunk = min(chunk, target)
    return chunk if chunk >= 512 and n // chunk > 1 else n


def sum_over_rows(fn, *arrays):
    """``fn(*arrays)`` for a function that sums over the leading (row) axis, evaluated block by block.

    ``fn`` may return any pytree of arrays; each leaf is summed over the blocks.
    """
    blocks = split_rows(arrays)
    if blocks is None:
        return fn(*arrays)
    first = jax.eval_shape(fn, *(b[0] for b in blocks))

    def body(total, block):
        return jax.tree_util.tree_map(jnp.add, total, fn(*block)), None

    zeros = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), first)
    total, _ = jax.lax.scan(body, zeros, blocks)
    return total


def map_over_rows(fn, *arrays):
    """``fn(*arrays)`` for a function returning one value per row, evaluated block by block (a ``lax.map``).

    The same blocks as :func:`sum_over_rows`: intermediates (a network's
    activations) exist for one block at a time; only the per-row results are kept.
    """
    blocks = split_rows(arrays)
    if blocks is None:
        return fn(*arrays)
    out = jax.lax.map(lambda block: fn(*block), blocks)
    return out.reshape((arrays[0].shape[0],) + out.shape[2:])


def split_rows(arrays: tuple, chunk: int | None = None) -> tuple | None:
    """``arrays`` reshaped to ``(blocks, chunk, ...)``; None when one block would hold every row.

    ``chunk`` defaults to :func:`row_chunk` of the first array's shape; it must divide the rows.
    """
    n = arrays[0].shape[0]
    if chunk is None:
        p = int(np.prod(arrays[0].shape[1:])) if arrays[0].ndim > 1 else 1
        chunk = row_chunk(n, p)
    if chunk >= n:
        return None
    return tuple(a.reshape((n // chunk, chunk) + a.shape[1:]) for a in arrays)
