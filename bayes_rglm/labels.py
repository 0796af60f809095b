"""Readable labels of every scalar parameter, and the order summaries show them in.

The sites are ``w{l}``/``b{l}`` (weights and biases of layer ``l``, the
output layer last) and the family's nuisance parameters.  Labels name the
input columns of the first layer (``w0[age]``), hidden units by index, and
categorical output columns by class (class 0 is the reference).

Examples
--------
>>> import bayes_rglm as br
>>> parameter_labels(br.RGLM("poisson"), "w0", (2, 1), ["age", "dose"])
['w0[age]', 'w0[dose]']
"""

from __future__ import annotations

import numpy as np

from .network import Network, layer_of


def parameter_labels(model: Network, name: str, shape: tuple, feature_names: list[str]) -> list[str]:
    """Readable labels of every scalar in a parameter, e.g. ``w0[age]``, ``w1[3, 0]``, ``cutpoints[1]``."""
    layer = layer_of(name)
    if layer is not None:
        output = layer == model.depth
        columns = shape[-1]
        single = output and columns == 1
        class_offset = 1 if output and model.family.reference_class else 0
        col_label = lambda j: f"class {j + class_offset}" if class_offset else str(j)  # noqa: E731
        if name[0] == "w":
            rows = feature_names if layer == 0 else [str(i) for i in range(shape[0])]
            if single:
                return [f"{name}[{r}]" for r in rows]
            return [f"{name}[{r}, {col_label(j)}]" for r in rows for j in range(columns)]
        return [name] if single else [f"{name}[{col_label(j)}]" for j in range(columns)]
    if shape == ():
        return [name]
    return [f"{name}[{i}]" for i in range(int(np.prod(shape)))]


def display_order(labels: list[str]) -> list[str]:
    """Layer by layer (w0, b0, w1, b1, ...), then nuisance parameters."""

    def key(label):
        name = label.split("[")[0]
        layer = layer_of(name)
        return (0, layer, name[0] == "b") if layer is not None else (1, 0, False)

    return sorted(labels, key=key)
