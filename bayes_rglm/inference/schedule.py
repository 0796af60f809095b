"""SVI's run control: the default learning-rate schedule, Polyak averaging's share and the stopping rule.

The learning rate decays by a cosine to 0 over ``num_steps`` (:func:`cosine_rate`, with the rate and
the run length traced, so one compiled program serves every value); ``q``'s parameters are averaged
over the last :data:`AVERAGE_SHARE` of the steps.  From :data:`EARLIEST_STOP` of the steps on, the
stopping rule (:func:`settled`) compares the mean loss over the last two windows of
:data:`WINDOW_SHARE` of the steps; once they agree, the averaging starts at once and the run ends a
third later (:mod:`~bayes_rglm.inference.svi`).

Examples
--------
>>> import numpy as np
>>> round(float(cosine_rate(0.1, 100, 50)), 6)
0.05
>>> settled(np.r_[np.full(100, 5.0), np.full(100, 4.0)], window=100, tol=1e-3)
False
>>> settled(np.full(200, 4.0), window=100, tol=1e-3)
True
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

_FINAL_RATE = 0.0  # the default schedule decays the learning rate to this share of its start
AVERAGE_SHARE = 0.25  # q's parameters are averaged over this last share of the steps (Polyak averaging)
WINDOW_SHARE = 0.1  # the smoothed ELBO is its mean over windows of this share of num_steps (at least a chunk)
EARLIEST_STOP = 0.5  # the stopping rule is checked from this share of num_steps on


def check_learning_rate(learning_rate) -> None:
    """A ValueError unless ``learning_rate`` is a positive number or a callable (an optax schedule)."""
    if callable(learning_rate):
        return
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, int | float) or not learning_rate > 0:
        raise ValueError(f"learning_rate must be a positive number or an optax schedule, got {learning_rate!r}")


def cosine_rate(rate, num_steps, step):
    """The default schedule: cosine decay from ``rate`` to 0 over ``num_steps`` (optax's
    ``cosine_decay_schedule(rate, num_steps)``), with ``rate`` and ``num_steps`` traced values, so one
    compiled program serves every rate and run length:

        rate_t = rate (1 + cos(pi min(t, T) / T)) / 2.
    """
    progress = jnp.minimum(step, num_steps) / num_steps
    return rate * ((1.0 - _FINAL_RATE) * 0.5 * (1.0 + jnp.cos(jnp.pi * progress)) + _FINAL_RATE)


def settled(losses: np.ndarray, window: int, tol: float) -> bool:
    """The stopping rule: the smoothed ELBO (the mean loss over a window) changed between the last two
    windows by at most ``tol`` of its size plus twice the standard error of that change (the minibatch noise):

        |m_2 - m_1| <= tol |m_2| + 2 sqrt(s_1^2 / w + s_2^2 / w).
    """
    if len(losses) < 2 * window:
        return False
    first, last = losses[-2 * window : -window], losses[-window:]
    if not (np.isfinite(first).all() and np.isfinite(last).all()):
        return False
    change = abs(last.mean() - first.mean())
    noise = 2.0 * np.sqrt((first.var() + last.var()) / window)
    return bool(change <= tol * abs(last.mean()) + noise)
