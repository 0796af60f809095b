"""``RGLM``: the public model, a :class:`~bayes_rglm.network.Network` with the ``fit`` facade on top.

Layer ``l`` computes ``h_{l+1} = f_l(h_l @ W_l + b_l)`` with ``f_l`` an inverse
link; the output layer's linear predictor ``eta = h_L @ W_L + b_L + offset``
enters the family's likelihood through the output link.  With ``hidden=()``
this is the classical GLM ``g(E[y]) = X @ beta + b``.

This module sits on top of the engines and the results (imports run one way:
network -> inference -> results -> model), so ``RGLM.fit`` and :func:`load`
reach them without deferred imports.

Examples
--------
>>> import numpy as np, bayes_rglm as br
>>> rng = np.random.default_rng(0); X = rng.normal(size=(50, 2)); y = X[:, 0] + 1.0 + 0.1 * rng.normal(size=50)
>>> fit = br.RGLM("gaussian").fit(X, y, method="mle")
>>> round(float(fit.params["b0"][0]), 2)
1.0
"""

from __future__ import annotations

from .formula import FormulaDesign
from .inference import fit as _fit
from .network import Network
from .precision import scoped
from .results import Fit
from .serialize import model_arguments, model_to_dict, read_fit


class RGLM(Network):
    """A recursive GLM: hidden GLM layers feeding an exponential-family output layer.

    Parameters
    ----------
    family : str or Family
        Output likelihood: ``"gaussian"``, ``"bernoulli"``, ``"binomial"``,
        ``"categorical"``, ``"poisson"``, ``"gamma"``, ``"tobit"``,
        ``"ordinal"``, ``"negative_binomial"``, or a family object.
    link : str, optional
        Output link; ``None`` takes the family's canonical link.
    hidden : sequence of int
        Widths of the hidden layers; ``()`` is the classical GLM.
    activation : str or sequence of str
        Inverse link of each hidden layer, by statistical or deep-learning name.
    prior : GaussianPrior, optional
        Weight and bias priors; ``None`` uses :func:`bayes_rglm.priors.default_prior`.

    Notes
    -----
    ``eta_L = f_{L-1}(... f_0(X W_0 + b_0) ...) W_L + b_L + offset`` and
    ``y ~ family(g^{-1}(eta_L), nuisance)``.
    """

    def fit(
        self,
        X,
        y=None,
        method: str = "mle",
        *,
        data=None,
        seed: int = 0,
        offset=None,
        trials=None,
        weights=None,
        exposure=None,
        progress=None,
        **options,
    ):
        """Fit by ``method`` (``"mle"``, ``"map"``, ``"laplace"``, ``"svi"``, ``"nuts"``) and return a Fit.

        See :func:`bayes_rglm.fit` for the arguments (``weights=``: R's prior weights; ``exposure=``;
        a formula ``"y ~ x + C(g)"`` as ``X`` with ``data=`` a DataFrame).
        """
        return _fit(
            self,
            X,
            y,
            method=method,
            data=data,
            seed=seed,
            offset=offset,
            trials=trials,
            weights=weights,
            exposure=exposure,
            progress=progress,
            **options,
        )

    def to_dict(self) -> dict:
        """A JSON-ready description of the spec (family, link, hidden, activations, prior)."""
        return model_to_dict(self)

    @classmethod
    def from_dict(cls, spec: dict) -> RGLM:
        """Inverse of :meth:`to_dict`."""
        return cls(**model_arguments(spec))


@scoped
def load(path) -> Fit:
    """Read a fit written by :meth:`Fit.save`; raises ValueError for missing, truncated or foreign files.

    Examples
    --------
    >>> import numpy as np, tempfile, os, bayes_rglm as br
    >>> X = np.arange(12.0).reshape(6, 2); y = np.array([0, 1, 0, 1, 1, 0.0])
    >>> path = br.RGLM("bernoulli").fit(X, y, method="map").save(os.path.join(tempfile.mkdtemp(), "f.nc"))
    >>> br.load(path).method
    'map'
    """
    fields = read_fit(path)
    model = RGLM.from_dict(fields.pop("model"))
    formula = fields.pop("formula")
    fit = Fit(model=model, **fields)
    if formula is not None:
        fit.formula = FormulaDesign.from_formula(*formula)[0]
    return fit
