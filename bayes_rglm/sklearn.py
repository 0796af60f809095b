"""scikit-learn estimators: ``RGLMRegressor`` and ``RGLMClassifier``.

They follow scikit-learn's conventions (parameters stored verbatim in
``__init__``, validation in ``fit``, ``n_features_in_``, ``feature_names_in_``,
``classes_``) and pass its estimator checks, so they work in ``Pipeline``,
``GridSearchCV`` and ``cross_val_score``.

MAP is L2-penalised likelihood.  With ``hidden=()``:

- ``RGLMClassifier(prior_scale=sqrt(C), bias_scale=large)`` equals
  ``LogisticRegression(C=C)`` (weight prior variance ``C``);
- ``RGLMRegressor(family="poisson", prior_scale=1/sqrt(n * alpha))`` equals
  ``PoissonRegressor(alpha=alpha)`` on ``n`` rows;
- with one hidden layer, MAP with weight prior variance ``1/alpha`` (flat
  biases) is ``MLPClassifier(alpha=alpha)``'s objective up to the
  ``1/n`` scaling of its loss.

Examples
--------
>>> from sklearn.datasets import load_iris
>>> X, y = load_iris(return_X_y=True)
>>> clf = RGLMClassifier(prior_scale=1.0).fit(X, y)
>>> clf.predict_proba(X[:2]).shape
(2, 3)
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .families import frequency_weighted, get_family
from .model import RGLM, load
from .priors import GaussianPrior

REGRESSION_FAMILIES = ("gaussian", "poisson", "gamma", "tobit", "negative_binomial")
CLASSIFICATION_FAMILIES = ("auto", "bernoulli", "categorical", "ordinal")


class _RGLMEstimator(BaseEstimator):
    """Shared fitting code; not for direct use."""

    def _model(self, family: str) -> RGLM:
        prior = None
        if self.prior_scale is not None or self.bias_scale is not None:
            prior = GaussianPrior(scale=self.prior_scale, bias_scale=self.bias_scale)
        hidden = tuple(self.hidden) if self.hidden is not None else ()
        # sample_weight repeats rows, as everywhere in scikit-learn: frequency weights for every family.
        family = frequency_weighted(get_family(family))
        return RGLM(family=family, link=self.link, hidden=hidden, activation=self.activation, prior=prior)

    def _options(self) -> dict:
        options = dict(self.method_options or {})
        options.setdefault("progress", False)
        return options

    def _fit_model(self, family: str, X, y, sample_weight=None):
        self.model_ = self._model(family)
        seed = self.random_state or 0
        self.fit_ = self.model_.fit(X, y, method=self.method, seed=seed, weights=sample_weight, **self._options())
        return self

    # Pickling (joblib, GridSearchCV(n_jobs=...)) goes through the library's own netCDF format, so the
    # fitted model's functions are rebuilt from its spec rather than pickled.
    def __getstate__(self):
        state = dict(self.__dict__)
        fit = state.pop("fit_", None)
        state.pop("model_", None)
        if fit is not None:
            import tempfile
            from pathlib import Path

            with tempfile.TemporaryDirectory() as folder:
                path = fit.save(Path(folder) / "fit.nc")
                state["fit_netcdf_"] = path.read_bytes()
        return state

    def __setstate__(self, state):
        state = dict(state)
        blob = state.pop("fit_netcdf_", None)
        self.__dict__.update(state)
        if blob is not None:
            import tempfile
            from pathlib import Path

            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "fit.nc"
                path.write_bytes(blob)
                self.fit_ = load(path)
            self.model_ = self.fit_.model

    def _check_X(self, X):
        check_is_fitted(self, "fit_")
        return validate_data(self, X, reset=False, dtype=np.float64)


class RGLMRegressor(RegressorMixin, _RGLMEstimator):
    """A recursive GLM for real, count or positive targets, as a scikit-learn regressor.

    Parameters
    ----------
    family : {"gaussian", "poisson", "gamma", "tobit", "negative_binomial"}
    link : str, optional
        Output link; None takes the family's canonical link.
    hidden : tuple of int
        Hidden layer widths; ``()`` is the classical GLM.
    activation : str or list of str
    prior_scale, bias_scale : float, optional
        Gaussian prior sd of weights and biases (None: the library default).
    method : {"map", "mle", "laplace", "svi", "nuts"}
    method_options : dict, optional
        Passed to the method (``num_samples``, ``num_restarts``, ...).
    random_state : int, optional
    """

    def __init__(
        self,
        family="gaussian",
        link=None,
        hidden=(),
        activation="tanh",
        prior_scale=None,
        bias_scale=None,
        method="map",
        method_options=None,
        random_state=None,
    ):
        self.family = family
        self.link = link
        self.hidden = hidden
        self.activation = activation
        self.prior_scale = prior_scale
        self.bias_scale = bias_scale
        self.method = method
        self.method_options = method_options
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        """Fit; ``sample_weight``: frequency weights (a weight of 2 counts a row twice; 0 drops it)."""
        if self.family not in REGRESSION_FAMILIES:
            raise ValueError(f"family={self.family!r} is not a regression family; use one of {REGRESSION_FAMILIES}")
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        sample_weight = None if sample_weight is None else _check_sample_weight(sample_weight, X)
        return self._fit_model(self.family, X, y, sample_weight)

    def predict(self, X):
        """``E[y | x]`` (the posterior mean of it for Bayesian methods)."""
        X = self._check_X(X)
        return self.fit_.predict(X)


class RGLMClassifier(ClassifierMixin, _RGLMEstimator):
    """A recursive GLM for class labels, as a scikit-learn classifier.

    ``family="auto"`` picks bernoulli for two classes and categorical for more;
    ``"ordinal"`` treats the sorted labels as ordered levels.  Other
    parameters as :class:`RGLMRegressor`.
    """

    def __init__(
        self,
        family="auto",
        link=None,
        hidden=(),
        activation="tanh",
        prior_scale=None,
        bias_scale=None,
        method="map",
        method_options=None,
        random_state=None,
    ):
        self.family = family
        self.link = link
        self.hidden = hidden
        self.activation = activation
        self.prior_scale = prior_scale
        self.bias_scale = bias_scale
        self.method = method
        self.method_options = method_options
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        """Fit; ``sample_weight``: frequency weights (a weight of 2 counts a row twice; 0 drops it)."""
        if self.family not in CLASSIFICATION_FAMILIES:
            raise ValueError(
                f"family={self.family!r} is not a classification family; use one of {CLASSIFICATION_FAMILIES}"
            )
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y has only one class ({self.classes_[0]!r}); a classifier needs at least 2 classes")
        family = self.family
        if family == "auto":
            family = "bernoulli" if len(self.classes_) == 2 else "categorical"
        if family == "bernoulli" and len(self.classes_) != 2:
            raise ValueError(f"family='bernoulli' needs 2 classes, y has {len(self.classes_)}")
        sample_weight = None if sample_weight is None else _check_sample_weight(sample_weight, X)
        return self._fit_model(family, X, codes.astype(np.float64), sample_weight)

    def predict_proba(self, X):
        """Class probabilities ``(n, n_classes)``, columns in the order of ``classes_``."""
        X = self._check_X(X)
        return self.fit_.predict_proba(X)

    def predict(self, X):
        """The most probable class label."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
