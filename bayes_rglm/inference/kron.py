"""Kronecker-factored GGN Laplace (``covariance="kron"``): one ``(inputs + 1) x units`` Gaussian per layer.

Write layer ``l``'s weights and bias as one matrix ``Theta_l = [W_l; b_l']`` of shape ``(m + 1, u)``
(inputs ``a_i = [h_{l-1,i}, 1]``, pre-activations ``s_{l,i} = a_i Theta_l``).  Its block of the GGN is
``sum_i (a_i a_i') (x) (B_i' Lambda_i B_i)`` with ``B_i = d eta_i / d s_{l,i}`` and ``Lambda_i`` the
likelihood's curvature in ``eta``; K-FAC (Martens and Grosse 2015; Ritter, Botev and Barber 2018)
replaces the sum of products by the product of means,

    A_l = (1/n) sum_i a_i a_i',    G_l = sum_i B_i' Lambda_i B_i,    GGN_l ~ A_l (x) G_l.

The prior is of the same form, ``P_l (x) I``: ``N(0, s^2)`` on the weights and ``N(0, s_b^2)`` on the
bias, stated in the original coordinates, which for the first layer in standardised coordinates
(``w = w~ / scale``, ``b = b~ - shift' w``) is ``P = diag(1 / (s^2 scale^2), 0) + v v' / s_b^2`` with
``v = [-shift / scale, 1]``.  With ``P = L L'``, ``L^-1 A L^-T = U diag(alpha) U'`` and
``G = V diag(gamma) V'``, the precision ``A (x) G + P (x) I`` is diagonal in ``Y``, where
``Theta - Theta* = L^-T U Y V'``:

    q(Y) = prod_ij N(Y_ij; 0, 1 / (alpha_i gamma_j + 1)),

so the draws, ``log q`` and ``log det`` come from two small eigendecompositions per layer; no
``P x P`` matrix is formed.  Layers are independent of each other; nuisance parameters (``sigma``,
cutpoints) get the exact Hessian of their own block.

Examples
--------
>>> import numpy as np, bayes_rglm as br
>>> rng = np.random.default_rng(0); x = rng.uniform(-2, 2, (200, 1))
>>> y = np.sin(2 * x[:, 0]) + 0.2 * rng.normal(size=200)
>>> import warnings
>>> with warnings.catch_warnings():  # the layers taken as independent: k-hat may exceed 0.7, and warn
...     warnings.simplefilter("ignore", br.DiagnosticsWarning)
...     fit = br.RGLM("gaussian", hidden=(4,), activation="tanh").fit(x, y, method="laplace", covariance="kron")
>>> fit.info["laplace_covariance"]
'kron'
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..runtime import compiled_cache
from .blocks import sum_over_rows, traced_over
from .target import Layout


@compiled_cache(maxsize=16)
def _compiled_factors(layout: Layout):
    """``(theta, problem) -> ([A_l], [G_l])``: the K-FAC factors of every layer, summed over row blocks."""
    model = layout.model
    family, link = model.family, model.link
    depth = model.depth

    def run(theta, problem):
        params = layout.constrain(layout.unravel(theta))[0]
        nuisance = model.nuisance(params)

        def block(X, y, offset, trials, weights):
            counted = (weights > 0).astype(X.dtype)

            def forward(x, zs):
                """``eta`` of one row with ``zs[l]`` added to layer ``l``'s pre-activation; the layer inputs."""
                h, inputs = x, []
                for layer, activation in enumerate(model.activations):
                    inputs.append(h)
                    h = activation.inverse(h @ params[f"w{layer}"] + params[f"b{layer}"] + zs[layer])
                inputs.append(h)
                eta = h @ params[f"w{depth}"] + zs[depth]
                if family.has_output_bias:
                    eta = eta + params[f"b{depth}"]
                return eta, inputs

            def row(x, yi, oi, ti, wi):
                zeros = [jnp.zeros(params[f"w{layer}"].shape[1]) for layer in range(depth + 1)]
                B = jax.jacfwd(lambda z: forward(x, z)[0])(zeros)  # [l]: (K, u_l)
                eta, inputs = forward(x, zeros)

                def nll(e):
                    kernel = family.weighted_kernel((e + oi)[None], yi[None], link, nuisance, ti[None], wi[None])
                    return -jnp.sum(kernel)

                Lam = jax.hessian(nll)(eta)  # (K, K)
                return inputs, [b.T @ Lam @ b for b in B]

            inputs, curvature = jax.vmap(row)(X, y, offset, trials, weights)
            A, G = [], []
            for layer in range(depth + 1):
                a = inputs[layer]
                if layer < depth or family.has_output_bias:
                    a = jnp.concatenate([a, jnp.ones((a.shape[0], 1))], axis=1)
                A.append((a * counted[:, None]).T @ a)
                G.append(jnp.sum(curvature[layer], axis=0))
            return A, G, jnp.sum(counted)

        A, G, n = sum_over_rows(block, *problem.rows)
        return [a / n for a in A], G

    return jax.jit(traced_over(layout.mesh, run))


def _prior_factor(layout: Layout, problem, layer: int, m: int, has_bias: bool) -> np.ndarray:
    """``P_l``: the prior precision over the ``m`` (+ 1 bias) rows of ``Theta_l`` (the same for every unit)."""
    weight_scales, bias_scales = layout.model.prior_scales(layout.n_features, float(problem.y_scale))
    s, s_b = float(weight_scales[layer]), float(bias_scales[layer])
    if layer == 0 and layout.standardised:
        scale, shift = np.asarray(problem.scale), np.asarray(problem.shift)
    else:
        scale, shift = np.ones(m), np.zeros(m)
    P = np.diag(np.concatenate([1.0 / (s**2 * scale**2), np.zeros(int(has_bias))]))
    if has_bias:
        v = np.concatenate([-shift / scale, [1.0]])
        P += np.outer(v, v) / s_b**2
    return P


def kron_laplace(layout: Layout, problem, theta: np.ndarray, rng: np.random.Generator, num_samples: int):
    """Draws of the network's weights and biases from the K-FAC Gaussian at ``theta`` (flat, unconstrained).

    Returns ``(deltas (num_samples, size) for the layers' coordinates, log q, log det precision, indices)``:
    the offsets from ``theta`` (zero outside the layers), ``log q`` of each draw up to the layers' shared
    Gaussian constant, and the coordinates covered.
    """
    A_all, G_all = _compiled_factors(layout)(jnp.asarray(theta), problem)
    model = layout.model
    deltas = np.zeros((num_samples, layout.size))
    log_q = np.zeros(num_samples)
    log_det, covered = 0.0, []
    for layer in range(model.depth + 1):
        A, G = np.asarray(A_all[layer]), np.asarray(G_all[layer])
        rows, units = A.shape[0], G.shape[0]
        m = layout.shapes[f"w{layer}"][0]
        P = _prior_factor(layout, problem, layer, m, rows > m)
        L = np.linalg.cholesky(P)
        L_inv = np.linalg.inv(L)
        alpha, U = np.linalg.eigh(L_inv @ A @ L_inv.T)
        gamma, V = np.linalg.eigh(0.5 * (G + G.T))
        precision = np.clip(alpha, 0.0, None)[:, None] * np.clip(gamma, 0.0, None)[None, :] + 1.0
        z = rng.standard_normal((num_samples, rows, units))
        Y = z / np.sqrt(precision)
        delta = np.einsum("ij,sjk,lk->sil", L_inv.T @ U, Y, V)  # L^-T U Y V'
        log_det_layer = 2.0 * units * np.sum(np.log(np.diag(L))) + np.sum(np.log(precision))
        log_q += -0.5 * np.sum(z**2, axis=(1, 2)) + 0.5 * log_det_layer
        log_det += log_det_layer
        w0, w1 = layout.offsets[f"w{layer}"]
        deltas[:, w0:w1] = delta[:, :m].reshape(num_samples, -1)
        covered.append(np.arange(w0, w1))
        if rows > m:
            b0, b1 = layout.offsets[f"b{layer}"]
            deltas[:, b0:b1] = delta[:, -1, :]
            covered.append(np.arange(b0, b1))
    indices = np.concatenate(covered)
    log_q -= 0.5 * indices.size * np.log(2 * np.pi)
    return deltas, log_q, log_det, indices
