"""Inference methods, one module each, behind one registry and one entry point :func:`fit`.

:func:`fit` checks the options, builds the fit's :class:`~.target.Target` once, runs the engine
(``engine(target, method, seed, **options) -> Estimate``) and assembles the
:class:`~bayes_rglm.results.Fit` here, the one place a Fit is made from an estimate.

Examples
--------
>>> import numpy as np, bayes_rglm as br
>>> rng = np.random.default_rng(0); X = rng.normal(size=(40, 2)); y = X[:, 0] + 1.0 + rng.normal(size=40)
>>> fit = br.fit(br.RGLM("gaussian"), X, y, method="mle")
>>> fit.method
'mle'
"""

from __future__ import annotations

import concurrent.futures
import numbers
import warnings

import numpy as np

from .. import precision
from ..aliasing import aliased_columns
from ..diagnostics import check_diagnostics
from ..evidence import check_tunable, tune_prior_scale
from ..exceptions import AliasingWarning, user_stacklevel
from ..formula import FormulaDesign
from ..network import Network
from ..results import Fit
from ..runtime import guard_mappings
from .covariance import check_cov_type
from .devices import resolve_devices
from .estimate import expand_aliased
from .laplace import check_options as check_laplace_options
from .laplace import fit_laplace
from .nuts import fit_nuts
from .point import fit_point
from .stream import is_out_of_core, prepare_rows
from .svi import GUIDES, fit_svi
from .target import build

METHODS = {
    "mle": fit_point,
    "map": fit_point,
    "laplace": fit_laplace,
    "svi": fit_svi,
    "nuts": fit_nuts,
}
# How each method's target is built (see build): the optimisers fit no hierarchical scales; every method works
# on standardised inputs, mapped back exactly.
TARGETS = {
    "mle": {"scales": False},
    "map": {"scales": False},
    "laplace": {"scales": False},
    "svi": {},
    "nuts": {},
}
POSITIVE_INTEGERS = (
    "max_iter",
    "num_restarts",
    "num_samples",
    "num_warmup",
    "num_chains",
    "num_steps",
    "num_epochs",
    "batch_size",
    "num_particles",
    "rank",
    "max_tree_depth",
)


def _check_options(method: str, options: dict) -> None:
    import inspect

    accepted = [
        p for p in inspect.signature(METHODS[method]).parameters if p not in ("target", "method", "seed", "progress")
    ]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"method={method!r} does not take option {unknown[0]!r}; its options: {', '.join(accepted)}")
    if method == "laplace":
        check_laplace_options(options.get("curvature"), options.get("covariance"), options.get("predictive"))
    if "psis" in options and not isinstance(options["psis"], bool):
        raise TypeError(f"psis must be True or False (compute the PSIS k-hat of the draws), got {options['psis']!r}")
    if "guide" in options and options["guide"] not in GUIDES:
        raise ValueError(f"guide={options['guide']!r} is not known; valid: {', '.join(GUIDES)}")
    for name in POSITIVE_INTEGERS:
        if name in options:
            value = options[name]
            if value is None and name in ("batch_size", "num_steps", "num_epochs", "rank"):
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if "tol" in options and not (method == "svi" and options["tol"] is None):  # svi: None turns the stop off
        tol = options["tol"]
        if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not 0 < tol < 1:
            raise ValueError(f"tol must be a number in (0, 1), e.g. 1e-10, got {tol!r}")


def _tuned(model, X, y, method, prior_scale, devices, **arguments):
    """``prior_scale="evidence"``: the Laplace fit whose weight prior scale has the largest evidence
    (:func:`bayes_rglm.evidence.tune_prior_scale`)."""
    if not (isinstance(prior_scale, str) and prior_scale == "evidence"):
        raise ValueError(f"prior_scale={prior_scale!r} is not known; the one choice is prior_scale='evidence'")
    if method != "laplace":
        raise ValueError(
            f"prior_scale='evidence' tunes the prior by the Laplace evidence: use method='laplace', not {method!r}"
        )
    check_tunable(model, None)
    _check_options(method, {k: v for k, v in arguments.items() if k not in _ARGUMENTS})
    if devices is not None:
        arguments["devices"] = devices
    return tune_prior_scale(model, X, y, **arguments)[0]


_ARGUMENTS = ("data", "seed", "offset", "trials", "weights", "exposure", "progress")


def _column(data, value, argument: str):
    """``data[value]`` where a formula fit names a column of its data for ``argument``; else ``value``."""
    if not isinstance(value, str):
        return value
    if value not in data.columns:
        raise ValueError(f"{argument}={value!r} is not a column of data (columns: {', '.join(map(str, data.columns))})")
    return data[value].to_numpy()


def fit(
    model: Network,
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
    dtype=None,
    **options,
):
    """Fit ``model`` to ``(X, y)`` by ``method`` and return a :class:`bayes_rglm.results.Fit`.

    Parameters
    ----------
    model : RGLM
    X : array-like or DataFrame, shape (n, p), or str
        The design, or a formula such as ``"y ~ C(g) * x + offset(np.log(e))"`` evaluated on ``data``
        (:mod:`bayes_rglm.formula`); then ``y`` comes from the formula, and ``offset``, ``trials``,
        ``weights``, ``exposure`` and ``groups`` may name columns of ``data``.
    y : array-like, shape (n,)
        The response (not with a formula).
    data : DataFrame, optional
        The data a formula is evaluated on.
    method : {"mle", "map", "laplace", "svi", "nuts"}
    seed : int
        Seed for random starts, minibatches and draws.
    offset, trials : array-like, optional
        Added to the output linear predictor; binomial trials.
    weights : array-like, optional
        Prior weights, as R's ``glm(weights=)``: finite and non-negative, one per row.  For
        gaussian and gamma row ``i`` has dispersion ``phi / w_i`` (statsmodels' ``var_weights``);
        for every other family its log-likelihood is multiplied by ``w_i`` (frequency weights:
        a weight of 2 is a repeated row).  Rows of weight 0 are dropped
        (``fit.info["n_dropped"]``).  They enter every method and the pointwise log-likelihood.
    exposure : array-like, optional
        Positive exposures for a log link: ``offset = log(exposure)`` (added to ``offset``).
    progress : bool, optional
        Show progress bars (default: when attached to a terminal).
    devices : None, int or sequence of jax devices, optional
        ``mle``, ``map``, ``laplace`` and ``svi``: shard the rows over these devices (an integer ``k``:
        the first ``k`` of ``jax.devices()``), data-parallel (:mod:`~bayes_rglm.inference.devices`).
        The rows are padded with weight-0 rows to a multiple of the device count, which changes no
        answer; each SVI step draws ``batch_size / k`` rows on each device.  Default: one device.
    dtype : {"float64", "float32"}, optional
        The precision of every computation (:mod:`~bayes_rglm.precision`): float64 by default, which
        matches R to many digits; float32 halves memory and is faster on GPUs, at about 7 significant
        digits.  It is scoped to this call (JAX's global ``jax_enable_x64`` is never changed) and kept in
        ``fit.info["dtype"]``; the fit predicts in it.
    **options
        Method options (``max_iter``, ``tol``, ``num_restarts``, ``num_samples``, ...).
    """
    if not isinstance(model, Network):
        raise TypeError(f"model must be a bayes_rglm.RGLM, got {type(model).__name__}")
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ValueError(f"method={method!r} is not a known method; valid: {', '.join(METHODS)}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    dtype = (precision.current() or "float64") if dtype is None else precision.check_dtype(dtype)
    arguments = {"data": data, "seed": seed, "offset": offset, "trials": trials, "weights": weights}
    with precision.scope(dtype):
        return _fit(model, X, y, method.lower(), exposure=exposure, progress=progress, **arguments, **options)


def _fit(model, X, y, method, *, data, seed, offset, trials, weights, exposure, progress, **options):
    """:func:`fit` inside its precision scope."""
    devices = options.pop("devices", None)
    if devices is not None and method == "nuts":
        raise ValueError(
            "devices= shards the rows of mle, map, laplace and svi over devices; NUTS runs its chains over "
            "devices with chain_method='parallel' (one chain per device)"
        )
    devices = resolve_devices(devices)
    prior_scale = options.pop("prior_scale", None)
    if prior_scale is not None:
        return _tuned(
            model,
            X,
            y,
            method,
            prior_scale,
            devices,
            data=data,
            seed=seed,
            offset=offset,
            trials=trials,
            weights=weights,
            exposure=exposure,
            progress=progress,
            **options,
        )
    _check_options(method, options)
    design = None
    if isinstance(X, str):
        if y is not None:
            raise ValueError("y= is given by the formula's left-hand side; pass the formula and data= only")
        design, X, y, formula_offset = FormulaDesign.from_formula(X, data)
        offset, trials, weights, exposure = (
            _column(data, value, name)
            for value, name in ((offset, "offset"), (trials, "trials"), (weights, "weights"), (exposure, "exposure"))
        )
        if "groups" in options:
            options["groups"] = _column(data, options["groups"], "groups")
        if formula_offset is not None:
            offset = formula_offset if offset is None else formula_offset + np.asarray(offset, dtype=float)
    elif data is not None:
        raise ValueError("data= is only used with a formula as the first argument, e.g. fit('y ~ x', data=df)")
    elif y is None:
        raise ValueError("y is required (or give a formula such as 'y ~ x' with data=)")
    on_disk = is_out_of_core(X)
    if on_disk:
        if method != "svi" or devices is not None:
            raise ValueError(
                f"out-of-core X (memory-mapped or a list of chunks) is fitted by method='svi' with batch_size= on "
                f"one device, not method={method!r}{' with devices=' if devices is not None else ''}; load X into "
                "memory (np.asarray) for the other methods"
            )
        data = prepare_rows(model, X, y, offset=offset, trials=trials, weights=weights, exposure=exposure)
    else:
        data = model.prepare(X, y, offset=offset, trials=trials, weights=weights, exposure=exposure)
    guard_mappings()
    aliased, target = None, None
    if method == "mle" and model.depth == 0:
        # A thread of this fit's own: leaving the block waits for the screen, which reads data.X.
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bayes_rglm-screen") as pool:
            screen = pool.submit(aliased_columns, data.X, model.family.has_output_bias)
            if data.X.shape[1] + int(model.family.has_output_bias) < len(data.y):
                # The aliasing screen (a Gram matrix, on one BLAS thread) runs in the thread while the target
                # is built (the standardisation, numpy on the other core); the target is built again, without
                # the aliased columns, only where some are found. With as many coefficients as rows the
                # screen comes first: the check below must raise before anything is compiled.
                target = build(model, data, devices=devices, **TARGETS[method])
        aliased = screen.result()
        if aliased.any():
            target = None
            names = [name for name, a in zip(data.feature_names, aliased, strict=True) if a]
            warnings.warn(
                f"{len(names)} column(s) of X are aliased (linearly dependent on earlier columns, or the "
                f"intercept): {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}. Their coefficients are "
                "not estimated (NaN in params, bse and summary; 0 in predictions), as R reports NA, and the "
                "rest are fitted on the full-rank design",
                AliasingWarning,
                stacklevel=user_stacklevel(),
            )
        else:
            aliased = None
        rank = int(data.X.shape[1] - (0 if aliased is None else aliased.sum())) + int(model.family.has_output_bias)
        if model.family.glm_dispersion is not None and model.family.nuisance and rank >= len(data.y):
            raise ValueError(
                f"X has {data.X.shape[1]} columns and {len(data.y)} rows: the {rank} coefficients that are identified "
                "fit every row exactly, so the maximum-likelihood dispersion is 0 (no residual degrees of freedom). "
                "Use fewer columns, or method='map' (a prior) for more columns than rows"
            )
    if target is None:
        fitted = data if aliased is None else data._replace(X=data.X[:, ~aliased])
        target = build(model, fitted, devices=devices, **TARGETS[method])
    if method in ("mle", "map"):
        n_given = len(data.y) + data.dropped
        groups = check_cov_type(options.get("cov_type", "observed"), options.get("groups"), n_given, data.kept)
        options = {**options, "groups": groups} if groups is not None else options
    estimate = METHODS[method](target, method, int(seed), progress=progress, **options)
    estimate.info["n_dropped"] = data.dropped
    estimate.info["dtype"] = precision.current()
    estimate.info["devices"] = 1 if devices is None else len(devices)
    if aliased is not None:
        shapes = model.parameter_shapes(data.X.shape[1], data.summary.n_classes)
        estimate = expand_aliased(estimate, shapes, aliased)
        estimate.info["aliased"] = [name for name, a in zip(data.feature_names, aliased, strict=True) if a]
    fit = Fit(
        method,
        model,
        estimate.params,
        estimate.draws,
        estimate.covariance,
        estimate.info,
        data.feature_names,
        data.summary,
        None if on_disk else data,  # out of core: the rows stay on disk
    )
    fit.formula = design
    if method == "nuts":
        check_diagnostics(fit)  # r-hat and ESS (of E[y | x] with hidden layers): warns when they fail
    return fit
