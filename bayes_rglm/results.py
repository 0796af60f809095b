"""``Fit``: one result type for every method (estimates, standard errors, draws, prediction, summaries).

Point estimates (mle, map) are treated as a posterior with a single draw, so
every prediction method runs the same vectorised code over draws.

Examples
--------
>>> import numpy as np, bayes_rglm as br
>>> rng = np.random.default_rng(0); X = rng.normal(size=(60, 2))
>>> y = rng.poisson(np.exp(0.3 * X[:, 0])).astype(float)
>>> fit = br.RGLM("poisson").fit(X, y, method="mle")
>>> fit.summary().columns.tolist()[:2]
['estimate', 'bse']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import ndtr, ndtri, stdtr, stdtrit

from . import effects, glm_stats
from .data import as_design, as_vector, as_weights, is_dataframe, match_columns
from .diagnostics import function_summary, posterior_summary, to_arviz
from .families import DataSummary
from .labels import display_order, parameter_labels
from .network import Network
from .precision import fit_dtype, require, scoped_methods
from .predictive import evaluate, predictive_interval
from .serialize import save_fit

if TYPE_CHECKING:
    import pandas as pd


@scoped_methods(fit_dtype)
class Fit:
    """The result of :meth:`bayes_rglm.RGLM.fit`, whatever the method.

    Attributes
    ----------
    method : str
    model : RGLM
    params : dict of str to ndarray
        Estimates (mle/map) or posterior means (laplace/svi/nuts).
    samples : dict of str to ndarray or None
        Posterior draws with leading ``(chain, draw)`` dims; None for mle/map.
    bse : dict of str to ndarray or None
        Standard errors from the inverse observed information (mle/map).
    covariance : ndarray or None
        Covariance of all parameters, in the order of :attr:`parameter_names`.
    info : dict
        Iterations, convergence, timings, losses, divergences, and ``dtype``: the precision the fit was
        made in, which its methods compute in too (:mod:`bayes_rglm.precision`).
    named_columns : bool
        True when the model was fitted on a DataFrame: a DataFrame passed to
        ``predict*`` or ``log_likelihood`` is then matched to
        :attr:`feature_names` by column name (reordered as needed; a missing,
        unknown or duplicated column is a ValueError).  Arrays are always
        matched by position.
    """

    def __init__(
        self,
        method: str,
        model: Network,
        params: dict,
        samples: dict | None,
        covariance,
        info: dict,
        feature_names: list[str],
        data_summary: DataSummary,
        data=None,
        named_columns: bool | None = None,
    ):
        self.method = method
        self.model = model
        self.params = params
        self.samples = samples
        # A callable returns (covariance, note) when first asked for (hidden layers: the Hessian costs more
        # than the fit at large N); the note goes to info["covariance"].
        self._covariance = None if callable(covariance) else covariance
        self._covariance_fn = covariance if callable(covariance) else None
        self.info = info
        self.feature_names = list(feature_names)
        self.data_summary = data_summary
        self.data = data  # the training Dataset (Bayesian methods: ArviZ groups, probes)
        # Fitted on a DataFrame: DataFrames given later are matched to feature_names by column name.
        self.named_columns = bool(getattr(data, "named", False)) if named_columns is None else bool(named_columns)
        self.formula = None  # a FormulaDesign when fitted from a formula: new data go through it

    # --- parameters -------------------------------------------------------------------------------

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def parameter_names(self) -> list[str]:
        """Labels of every scalar parameter, in covariance order (parameters by sorted name)."""
        return [
            label
            for name in sorted(self.params)
            for label in parameter_labels(self.model, name, np.shape(self.params[name]), self.feature_names)
        ]

    @property
    def covariance(self):
        """Covariance of all parameters (inverse observed information), in :attr:`parameter_names` order.

        For models with hidden layers it is computed on first access (the exact
        Hessian, summed over row blocks), then kept.
        """
        if self._covariance_fn is not None:
            self._covariance, self.info["covariance"] = self._covariance_fn()
            self._covariance_fn = None
        return self._covariance

    @covariance.setter
    def covariance(self, value):
        self._covariance, self._covariance_fn = value, None

    @property
    def bse(self) -> dict | None:
        if self.covariance is None:
            return None
        sd = np.sqrt(np.clip(np.diag(self.covariance), 0.0, None))
        out, start = {}, 0
        for name in sorted(self.params):
            shape = np.shape(self.params[name])
            size = int(np.prod(shape))
            out[name] = sd[start : start + size].reshape(shape)
            start += size
        return out

    @property
    def anchor(self) -> dict | None:
        """Where the linearised predictive linearises the network (the MAP), or None when draws predict
        through the network itself: a Laplace fit of a net with ``predictive="linearised"`` (its default)
        predicts with ``eta = eta(theta*) + J (theta - theta*)`` (:mod:`bayes_rglm.inference.laplace`)."""
        if self.info.get("laplace_predictive") != "linearised" or self.samples is None:
            return None
        return {k: np.asarray(v, dtype=np.float64) for k, v in self.info["map"].items()}

    def _draws(self) -> dict:
        """Parameters with one leading draw axis: ``(chains * draws, ...)`` or ``(1, ...)`` for point fits."""
        # Reshaped by numpy and moved by device_put: an eager jnp.reshape or jnp.asarray compiles a program per
        # shape.
        require()
        if self.samples is None:
            # Aliased columns (NaN, not estimated) count as 0, as R's predict treats NA coefficients.
            clean = (lambda a: np.nan_to_num(a, nan=0.0)) if self.info.get("aliased") else np.asarray  # noqa: E731
            return {k: jax.device_put(clean(np.asarray(v))[None]) for k, v in self.params.items()}
        return {
            k: jax.device_put(np.reshape(np.asarray(v), (-1,) + np.shape(v)[2:]))
            for k, v in self.samples.items()
            if k in self.params
        }

    # --- prediction -------------------------------------------------------------------------------

    def _inputs(self, X, offset, trials):
        if self.formula is not None and is_dataframe(X):
            X, formula_offset = self.formula.transform(X)
            if formula_offset is not None:
                given = as_vector(offset, X.shape[0], "offset", allow_none=True)
                offset = formula_offset if given is None else formula_offset + given
        if self.named_columns:
            X = match_columns(X, self.feature_names, "X")
        X, _ = as_design(X, "X", n_features=self.n_features)
        n = X.shape[0]
        offset = as_vector(offset, n, "offset", allow_none=True)
        trials = as_vector(trials, n, "trials", allow_none=True)
        offset = np.zeros(n) if offset is None else offset
        trials = np.ones(n) if trials is None else trials
        return jnp.asarray(X), jnp.asarray(offset), jnp.asarray(trials)

    def predict(self, X, offset=None, trials=None) -> np.ndarray:
        """``E[y | x]``, shape ``(n,)``: the posterior mean of it for Bayesian fits.

        Binomial: expected successes (``trials`` default 1).  Categorical: the
        most probable class.  Ordinal: the expected label ``sum_k k P(y = k)``.
        """
        if self.model.family.reference_class:
            return np.argmax(self.predict_proba(X, offset=offset), axis=1).astype(float)
        X, offset, trials = self._inputs(X, offset, trials)
        return evaluate(self.model, "mean", self._draws(), X, None, offset, trials, reduce=_mean, anchor=self.anchor)

    def predict_proba(self, X, offset=None) -> np.ndarray:
        """Class probabilities, shape ``(n, K)`` (bernoulli: column 1 is ``P(y = 1)``)."""
        if not self.model.family.has_classes:
            raise ValueError(
                f"predict_proba needs a family with classes (bernoulli, categorical, ordinal), "
                f"not {self.model.family.name!r}; use predict"
            )
        X, offset, trials = self._inputs(X, offset, None)
        return evaluate(self.model, "proba", self._draws(), X, None, offset, trials, reduce=_mean, anchor=self.anchor)

    def predict_interval(self, X, prob: float = 0.9, offset=None, trials=None, seed: int = 0):
        """``(lower, upper)``, each ``(n,)``: central ``prob`` interval of the predictive distribution of y.

        Simulated from the posterior predictive (Bayesian fits) or from the
        fitted distribution at the estimate (mle/map, a plug-in interval),
        with at least 2,000 predictive draws per row.
        """
        if isinstance(prob, bool) or not isinstance(prob, int | float) or not 0 < prob < 1:
            raise ValueError(f"prob must be in (0, 1), e.g. 0.9, got {prob!r}")
        X, offset, trials = self._inputs(X, offset, trials)
        return predictive_interval(
            self.model, self._draws(), X, offset, trials, float(prob), jax.random.PRNGKey(seed), anchor=self.anchor
        )

    def log_likelihood(self, X, y, offset=None, trials=None, weights=None) -> np.ndarray:
        """Pointwise log-likelihood: ``(n,)`` for point estimates, ``(chain, draw, n)`` for posteriors.

        ``weights``: prior weights as in :func:`bayes_rglm.fit` (each row's weighted contribution;
        its sum is the fit's log-likelihood).
        """
        X, offset, trials_arr = self._inputs(X, offset, trials)
        y = as_vector(y, X.shape[0], "y")
        weights = as_weights(weights, X.shape[0])
        family = self.model.family
        checked = family.validate(y, np.asarray(trials_arr) if family.uses_trials else None, fitting=False)
        if family.has_classes and checked.n_classes > self.data_summary.n_classes:
            raise ValueError(
                f"y has label {checked.n_classes - 1} but the model was fitted with "
                f"{self.data_summary.n_classes} classes (labels 0..{self.data_summary.n_classes - 1})"
            )
        values = evaluate(
            self.model, "log_likelihood", self._draws(), X, y, offset, trials_arr, weights=weights, anchor=self.anchor
        )
        if self.samples is None:
            return values[0]
        chains, draws = np.shape(next(iter(self.samples.values())))[:2]
        return values.reshape(chains, draws, -1)

    @property
    def stats(self) -> dict:
        """R's summary quantities of a point fit (mle, map): ``loglik``, ``deviance``, ``null_deviance``,
        ``df_residual``, ``df_null``, ``aic``, ``bic``, ``dispersion`` (and ``dispersion_method``), ``n``,
        ``n_params``, ``converged``, ``iterations``.  Definitions: :mod:`bayes_rglm.glm_stats`."""
        if "_stats" not in self.__dict__:
            self.__dict__["_stats"] = glm_stats.stats(self)
        return dict(self.__dict__["_stats"])

    def residuals(self, kind: str = "deviance") -> np.ndarray:
        """Residuals at the training rows, shape ``(n,)``: ``kind`` ``"deviance"``, ``"pearson"``,
        ``"response"`` or ``"working"``, as R's ``residuals.glm`` (:mod:`bayes_rglm.glm_stats`)."""
        return glm_stats.residuals(self, kind)

    # --- marginal effects (bayes_rglm.effects) ------------------------------------------------------

    def predictions(self, data=None, *, average: bool = False, prob: float = 0.95, plot: bool = False):
        """``E[y | x]`` at each row of ``data`` (default: the training rows) or their average, with intervals
        (delta method for mle/map, posterior draws otherwise); see :mod:`bayes_rglm.effects`."""
        return effects.predictions(self, data, average=average, prob=prob, plot=plot)

    def comparisons(self, variable: str, values=None, *, data=None, prob: float = 0.95, plot: bool = False):
        """Average change in ``E[y | x]`` as ``variable`` moves between ``values`` (numeric: +1; a factor:
        each level against the first); see :mod:`bayes_rglm.effects`."""
        return effects.comparisons(self, variable, values, data=data, prob=prob, plot=plot)

    def slopes(self, variable: str, *, data=None, prob: float = 0.95, plot: bool = False):
        """Average derivative of ``E[y | x]`` with respect to ``variable``; see :mod:`bayes_rglm.effects`."""
        return effects.slopes(self, variable, data=data, prob=prob, plot=plot)

    def to_arviz(self, posterior_predictive: bool = False, seed: int = 0):
        """``arviz.InferenceData`` with posterior, sample_stats (nuts), log_likelihood, observed and constant data.

        ``posterior_predictive=True`` adds draws of ``y`` at the training rows.
        """
        return to_arviz(self, posterior_predictive=posterior_predictive, seed=seed)

    def importance_resample(self, seed: int = 0) -> Fit:
        """The draws of a laplace or svi fit resampled by their PSIS weights: draws from the posterior, not
        the approximation (:mod:`bayes_rglm.inference.psis`).

        Each of the ``S`` new draws is one of the old ones, taken with probability ``w_s``, the Pareto-smoothed
        normalised importance weight of ``p(theta, y) / q(theta)`` (over the first ``info["psis_draws"]``
        draws, those k-hat was computed from: all of them unless the data are large).  Refused when
        k-hat > 0.7, where the weights' tail is too heavy for the result to be trusted.  ``info["importance_ess"]``:
        ``1 / sum w_s^2``, the number of independent draws they are worth.

        Examples
        --------
        >>> import numpy as np, bayes_rglm as br
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(80, 2))
        >>> y = (rng.random(80) < 1 / (1 + np.exp(-X[:, 0]))).astype(float)
        >>> fit = br.RGLM("bernoulli").fit(X, y, method="laplace", seed=0)
        >>> fit.importance_resample().samples["w0"].shape
        (1, 1000, 2, 1)
        """
        k = self.info.get("pareto_k")
        if self.method not in ("laplace", "svi") or k is None:
            raise ValueError(
                f"importance_resample needs the PSIS weights of a laplace or svi fit (in memory); this fit is "
                f"method={self.method!r}{' without them' if self.method in ('laplace', 'svi') else ''}"
            )
        if not k <= 0.7:
            raise ValueError(
                f"importance_resample is refused: the PSIS Pareto k-hat is {k:.2f} > 0.7, so importance weights "
                "cannot correct this approximation; use method='nuts' (or a richer svi guide, 'mvn')"
            )
        log_w = np.asarray(self.info["psis_log_weights"], dtype=np.float64)  # of the first len(log_w) draws
        w = np.exp(log_w - log_w.max())
        w /= w.sum()
        n_draws = int(np.shape(next(iter(self.samples.values())))[1])
        chosen = np.random.default_rng(seed).choice(w.size, size=n_draws, p=w)
        samples = {k: np.asarray(v)[:, chosen] for k, v in self.samples.items()}
        params = {k: v.mean(axis=(0, 1)) for k, v in samples.items()}
        info = {**self.info, "importance_resampled": True, "importance_ess": float(1.0 / np.sum(w**2))}
        info["psis_log_weights"] = np.full(n_draws, -np.log(n_draws))  # the new draws are equally weighted
        info["psis_draws"] = n_draws
        fit = Fit(
            self.method,
            self.model,
            params,
            samples,
            None,
            info,
            self.feature_names,
            self.data_summary,
            self.data,
            self.named_columns,
        )
        fit.formula = self.formula
        return fit

    # --- tables -----------------------------------------------------------------------------------

    def summary(self, kind: str = "parameters", prob: float = 0.95) -> pd.DataFrame:
        """One row per scalar parameter.

        mle/map: estimate, bse, z, p-value and a ``prob`` Wald interval.
        Bayesian methods: ArviZ's summary (mean, sd, HDI, MCSE, ESS, r-hat).
        ``kind="function"``: the same diagnostics for ``E[y | x]`` at probe
        rows (a fixed subset of the training rows), the right convergence
        check when hidden layers make the weights non-identified.
        """
        if kind not in ("parameters", "function"):
            raise ValueError(f"kind={kind!r} is not known; use 'parameters' or 'function'")
        if not 0 < prob < 1:
            raise ValueError(f"prob must be in (0, 1), e.g. 0.95, got {prob!r}")
        if self.samples is not None:
            return function_summary(self, prob) if kind == "function" else posterior_summary(self, prob)
        if kind == "function":
            raise ValueError(f"kind='function' needs posterior draws; method {self.method!r} has none")
        import pandas as pd  # here: importing bayes_rglm does not pay for pandas (0.4 s)

        estimate = np.concatenate([np.ravel(self.params[k]) for k in sorted(self.params)])
        bse = self.bse
        se = (
            np.concatenate([np.ravel(bse[k]) for k in sorted(self.params)])
            if bse is not None
            else np.full(estimate.shape, np.nan)
        )
        z = estimate / se
        t_df = self.info.get("t_df")
        if t_df is None:
            q, p_value, statistic = ndtri(0.5 + prob / 2), 2 * ndtr(-np.abs(z)), "z"
        else:  # R's summary.glm with an estimated dispersion: Student t on df_residual
            q, p_value, statistic = stdtrit(t_df, 0.5 + prob / 2), 2 * stdtr(t_df, -np.abs(z)), "t"
        table = pd.DataFrame(
            {
                "estimate": estimate,
                "bse": se,
                statistic: z,
                "p_value": p_value,
                f"ci_{100 * (1 - prob) / 2:g}%": estimate - q * se,
                f"ci_{100 * (1 + prob) / 2:g}%": estimate + q * se,
            },
            index=pd.Index(self.parameter_names, name="parameter"),
        )
        order = display_order(list(table.index))
        table = table.loc[order]
        table.attrs["cov_type"] = self.info.get("cov_type", "observed")
        table.attrs["standard_errors"] = self.info.get("covariance")
        return table

    # --- files ------------------------------------------------------------------------------------

    def save(self, path):
        """Write the fit (spec, estimates, draws, covariance, info) to one netCDF file; no pickle.

        Load it back with :func:`bayes_rglm.load`.
        """
        return save_fit(self, path)

    def __repr__(self) -> str:
        hidden = ", ".join(map(str, self.model.hidden)) or "none"
        return (
            f"<Fit method={self.method!r} family={self.model.family.name!r} link={self.model.link.name!r} "
            f"hidden=({hidden}) parameters={sum(np.size(v) for v in self.params.values())}>"
        )


def _mean(block: np.ndarray) -> np.ndarray:
    """The mean over draws of one ``(draws, rows, ...)`` block."""
    return block.mean(axis=0)
