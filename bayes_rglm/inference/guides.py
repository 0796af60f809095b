"""The variational families of SVI (:mod:`~bayes_rglm.inference.svi`): Gaussians on the unconstrained parameters.

- ``"normal"`` (:class:`_MeanField`): one location and scale per scalar parameter, per parameter array;
- ``"lowrank"`` (:class:`_LowRank`): ``Sigma = D^2 + W W'`` on the flat vector;
- ``"mvn"`` (:class:`_FullRank`): a full Cholesky factor.

Each has ``init(start) -> var``, ``sample(var, key) -> (theta, entropy)`` with the entropy in closed form
(the ELBO's), ``sample_log_q(var, key) -> (theta, log q(theta))`` (PSIS, :mod:`~.psis`) and
``describe(var)``: ``q``'s location and scale (or covariance) as numpy arrays, for ``fit.info["variational"]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .target import Layout

_INIT_SCALE = 0.05  # initial sd of every coordinate of q
_HALF_LOG_2PI_E = 0.5 * (1.0 + np.log(2.0 * np.pi))  # entropy of N(0, 1)
_HALF_LOG_2PI = 0.5 * np.log(2.0 * np.pi)


def _softplus_inverse(x):
    return np.log(np.expm1(x))


class _MeanField:
    """``q = prod_j N(loc_j, softplus(raw_j)^2)``, one (loc, raw) pair per parameter array."""

    def __init__(self, layout: Layout, rank):
        self.shapes = layout.shapes

    def init(self, start: dict) -> dict:
        raw = _softplus_inverse(_INIT_SCALE)
        return {name: (jnp.asarray(start[name]), jnp.full(shape, raw)) for name, shape in self.shapes.items()}

    def sample(self, var: dict, key) -> tuple[dict, jax.Array]:
        keys = jax.random.split(key, len(self.shapes))
        theta, entropy = {}, 0.0
        for k, (name, shape) in zip(keys, self.shapes.items(), strict=True):
            loc, raw = var[name]
            sd = jax.nn.softplus(raw)
            theta[name] = loc + sd * jax.random.normal(k, shape)
            entropy = entropy + jnp.sum(jnp.log(sd)) + sd.size * _HALF_LOG_2PI_E
        return theta, entropy

    def describe(self, var: dict) -> dict:
        """``{site: {"loc", "scale"}}``."""
        return {
            name: {"loc": np.asarray(loc), "scale": np.asarray(jax.nn.softplus(raw))}
            for name, (loc, raw) in var.items()
        }

    def sample_log_q(self, var: dict, key) -> tuple[dict, jax.Array]:
        keys = jax.random.split(key, len(self.shapes))
        theta, log_q = {}, 0.0
        for k, (name, shape) in zip(keys, self.shapes.items(), strict=True):
            loc, raw = var[name]
            sd = jax.nn.softplus(raw)
            eps = jax.random.normal(k, shape)
            theta[name] = loc + sd * eps
            log_q = log_q - jnp.sum(0.5 * eps**2 + jnp.log(sd)) - sd.size * _HALF_LOG_2PI
        return theta, log_q


class _Flat:
    """Gaussians over the layout's flat vector of all parameters."""

    def __init__(self, layout: Layout, rank):
        self.layout = layout
        self.d = layout.size
        self.rank = rank

    def flat(self, start: dict) -> np.ndarray:
        return self.layout.ravel({k: np.asarray(v) for k, v in start.items()})

    def unflatten(self, theta) -> dict:
        return self.layout.unravel(theta)

    def describe(self, var: dict) -> dict:
        """``{"loc", "covariance", "names"}`` over the flat vector (``names``: the sites in its order)."""
        return {"loc": np.asarray(var["loc"]), "covariance": self.covariance(var), "names": list(self.layout.names)}


class _FullRank(_Flat):
    """``q = N(loc, L L')`` with ``L`` lower triangular, positive diagonal through softplus."""

    def init(self, start: dict) -> dict:
        return {
            "loc": jnp.asarray(self.flat(start)),
            "tril": jnp.zeros((self.d, self.d)),
            "raw_diag": jnp.full(self.d, _softplus_inverse(_INIT_SCALE)),
        }

    def sample(self, var: dict, key):
        diag = jax.nn.softplus(var["raw_diag"])
        L = jnp.tril(var["tril"], -1) + jnp.diag(diag)
        theta = var["loc"] + L @ jax.random.normal(key, (self.d,))
        return self.unflatten(theta), jnp.sum(jnp.log(diag)) + self.d * _HALF_LOG_2PI_E

    def covariance(self, var: dict) -> np.ndarray:
        L = np.tril(np.asarray(var["tril"]), -1) + np.diag(np.asarray(jax.nn.softplus(var["raw_diag"])))
        return L @ L.T

    def sample_log_q(self, var: dict, key):
        diag = jax.nn.softplus(var["raw_diag"])
        L = jnp.tril(var["tril"], -1) + jnp.diag(diag)
        eps = jax.random.normal(key, (self.d,))
        log_q = -0.5 * jnp.sum(eps**2) - jnp.sum(jnp.log(diag)) - self.d * _HALF_LOG_2PI
        return self.unflatten(var["loc"] + L @ eps), log_q


class _LowRank(_Flat):
    """``q = N(loc, D^2 + W W')`` with ``D`` diagonal (softplus) and ``W`` of shape ``(d, rank)``."""

    def init(self, start: dict) -> dict:
        return {
            "loc": jnp.asarray(self.flat(start)),
            "raw_sd": jnp.full(self.d, _softplus_inverse(_INIT_SCALE)),
            "factor": jnp.zeros((self.d, self.rank)),
        }

    def sample(self, var: dict, key):
        k1, k2 = jax.random.split(key)
        sd, W = jax.nn.softplus(var["raw_sd"]), var["factor"]
        theta = var["loc"] + sd * jax.random.normal(k1, (self.d,)) + W @ jax.random.normal(k2, (self.rank,))
        # log det(D^2 + W W') = 2 sum log d + log det(I + W' D^-2 W)  (matrix determinant lemma)
        scaled = W / sd[:, None]
        _, inner = jnp.linalg.slogdet(jnp.eye(self.rank) + scaled.T @ scaled)
        return self.unflatten(theta), jnp.sum(jnp.log(sd)) + 0.5 * inner + self.d * _HALF_LOG_2PI_E

    def covariance(self, var: dict) -> np.ndarray:
        sd, W = np.asarray(jax.nn.softplus(var["raw_sd"])), np.asarray(var["factor"])
        return np.diag(sd**2) + W @ W.T

    def sample_log_q(self, var: dict, key):
        """``log q`` by the Woodbury identity: ``Sigma^-1 = D^-2 - D^-2 W (I + W' D^-2 W)^-1 W' D^-2``."""
        k1, k2 = jax.random.split(key)
        sd, W = jax.nn.softplus(var["raw_sd"]), var["factor"]
        r = sd * jax.random.normal(k1, (self.d,)) + W @ jax.random.normal(k2, (self.rank,))
        scaled = W / sd[:, None]
        inner = jnp.eye(self.rank) + scaled.T @ scaled
        u = scaled.T @ (r / sd)
        quadratic = jnp.sum((r / sd) ** 2) - u @ jnp.linalg.solve(inner, u)
        log_det = 2.0 * jnp.sum(jnp.log(sd)) + jnp.linalg.slogdet(inner)[1]
        return self.unflatten(var["loc"] + r), -0.5 * (quadratic + log_det) - self.d * _HALF_LOG_2PI


FAMILIES = {"normal": _MeanField, "lowrank": _LowRank, "mvn": _FullRank}
