"""Model specs to and from plain dicts (JSON), and fits to and from one netCDF file.

A saved fit is a netCDF file: every parameter estimate, every posterior draw
and the covariance are variables; the model spec, method, info and data
summary are one JSON document in the attribute ``bayes_rglm``, with a format
version.  Nothing is pickled, so loading a file cannot run code.  Files are
written to a temporary path beside the target and renamed, so a failed save
never leaves a half-written file over a good one.

Examples
--------
>>> import bayes_rglm as br
>>> spec = model_to_dict(br.RGLM("poisson", hidden=(3,), activation="relu"))
>>> model_arguments(spec)["activation"]
['tobit']

This module reads and writes fields; it builds neither a model nor a
:class:`~bayes_rglm.results.Fit` (:func:`bayes_rglm.model.load` does, on top).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import numpyro.distributions as dist

from .families import FAMILIES as _FAMILY_FACTORIES
from .families import DataSummary, Family, get_family
from .network import Dataset, Network
from .priors import GaussianPrior

FORMAT = "bayes_rglm.fit"
FORMAT_VERSION = 1


def distribution_to_dict(d: dist.Distribution) -> dict:
    """``{"distribution": "HalfCauchy", "params": {"scale": 2.5}}`` for a numpyro distribution with array args."""
    name = type(d).__name__
    if getattr(dist, name, None) is not type(d):
        raise ValueError(f"cannot save a prior of type {name}: only numpyro.distributions classes can be saved")
    params = {k: np.asarray(getattr(d, k)).tolist() for k in d.arg_constraints if k in d.__dict__}
    return {"distribution": name, "params": params}


def distribution_from_dict(spec: dict) -> dist.Distribution:
    name = spec.get("distribution")
    cls = getattr(dist, str(name), None)
    if not (isinstance(cls, type) and issubclass(cls, dist.Distribution)):
        raise ValueError(f"unknown prior distribution {name!r} in the saved spec")
    return cls(**{k: np.asarray(v) for k, v in spec.get("params", {}).items()})


def _family_to_dict(family: Family) -> dict:
    out = {"name": family.name, **{k: v for k, v in family.options}}
    for nuisance in family.nuisance:
        if nuisance.prior is not None:
            out[f"{nuisance.name}_prior"] = distribution_to_dict(nuisance.prior)
    return out


def _family_from_dict(spec: dict | str) -> Family:
    if isinstance(spec, str):
        return get_family(spec)
    spec = dict(spec)
    name = spec.pop("name")
    if not spec:
        return get_family(name)
    for key in [k for k in spec if k.endswith("_prior")]:
        spec[key] = distribution_from_dict(spec[key])
    if name not in _FAMILY_FACTORIES:
        raise ValueError(f"unknown family {name!r} in the saved spec")
    return _FAMILY_FACTORIES[name](**spec)


def model_to_dict(model: Network) -> dict:
    """A JSON-ready description of the model spec."""
    prior = model.prior
    return {
        "family": _family_to_dict(model.family),
        "link": model.link.name,
        "hidden": list(model.hidden),
        "activation": [a.name for a in model.activations],
        "prior": {
            "scale": list(prior.scale) if isinstance(prior.scale, tuple) else prior.scale,
            "bias_scale": list(prior.bias_scale) if isinstance(prior.bias_scale, tuple) else prior.bias_scale,
            "hierarchical": prior.hierarchical,
            "autoscale": prior.autoscale,
        },
    }


def model_arguments(spec: dict) -> dict:
    """The constructor arguments of the model :func:`model_to_dict` described (its inverse, less the class)."""
    return {
        "family": _family_from_dict(spec["family"]),
        "link": spec["link"],
        "hidden": tuple(spec["hidden"]),
        "activation": list(spec["activation"]) if spec["hidden"] else "tanh",
        "prior": GaussianPrior(**spec["prior"]),
    }


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in the fit's JSON header")


def save_fit(fit, path) -> Path:
    """Write ``fit`` to ``path`` (netCDF); returns the path."""
    path = Path(path)
    variables = {}
    for name, value in fit.params.items():
        arr = np.asarray(value)
        variables[f"params/{name}"] = ([f"{name}_dim{i}" for i in range(arr.ndim)], arr)
    for name, value in (fit.samples or {}).items():
        arr = np.asarray(value)
        dims = ["chain", "draw"] + [f"{name}_dim{i}" for i in range(arr.ndim - 2)]
        variables[f"samples/{name}"] = (dims, arr)
    if fit.data is not None:
        # The training data, so a loaded fit can still build ArviZ groups and function-space diagnostics.
        for name in ("X", "y", "offset", "trials", "weights"):
            if getattr(fit.data, name) is None:
                continue
            arr = np.asarray(getattr(fit.data, name))
            variables[f"data/{name}"] = (["obs", "feature"][: arr.ndim], arr)
    if fit.covariance is not None:
        variables["covariance"] = (["parameter", "parameter_"], np.asarray(fit.covariance))
    formula = None
    if fit.formula is not None:
        # The formula and the raw training columns it reads: on load the design is rebuilt from them exactly
        # (factor levels, the state of stateful transforms), so predict takes raw DataFrames again.
        frame = fit.formula.data
        columns = [c for c in map(str, frame.columns) if c in fit.formula.required_columns]
        kinds = {}
        for column in columns:
            values = frame[column].to_numpy()
            numeric = np.issubdtype(values.dtype, np.number) or values.dtype == bool
            kinds[column] = "number" if numeric else "str"
            variables[f"formula_data/{column}"] = (["formula_row"], values.astype(float if numeric else str))
        formula = {"formula": fit.formula.formula, "columns": kinds}
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "method": fit.method,
        "model": model_to_dict(fit.model),
        "feature_names": fit.feature_names,
        "named_columns": fit.named_columns,
        "data_summary": fit.data_summary._asdict(),
        "info": fit.info,
        "has_samples": fit.samples is not None,
        "formula": formula,
    }
    import xarray as xr  # here, not at module level: importing bayes_rglm should not pay for xarray

    ds = xr.Dataset(
        {k.replace("/", "__"): v for k, v in variables.items()},
        attrs={"bayes_rglm": json.dumps(header, default=_json_default)},
    )
    _atomic_write(path, lambda tmp: ds.to_netcdf(tmp, engine="netcdf4"))
    return path


def read_fit(path) -> dict:
    """The fields of a fit written by :func:`save_fit`, by name (``model`` is :func:`model_to_dict`'s dict).

    Raises ValueError for missing, truncated or foreign files.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path {str(path)!r} does not exist or is not a file; pass the path given to fit.save()")
    try:
        import xarray as xr

        with xr.open_dataset(path, engine="netcdf4") as opened:
            ds = opened.load()
    except Exception as err:  # netCDF4 raises OSError/RuntimeError/ValueError on damaged files
        raise ValueError(f"path {str(path)!r} is not a readable netCDF file ({err})") from None
    try:
        header = json.loads(ds.attrs["bayes_rglm"])
    except (KeyError, json.JSONDecodeError):
        raise ValueError(f"path {str(path)!r} is a netCDF file but not a bayes_rglm fit") from None
    if header.get("format") != FORMAT or header.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"path {str(path)!r} has format {header.get('format')!r} version {header.get('format_version')!r}; "
            f"this bayes_rglm reads {FORMAT!r} up to version {FORMAT_VERSION}"
        )
    params = {k.split("__", 1)[1]: ds[k].values for k in ds.data_vars if k.startswith("params__")}
    samples = {k.split("__", 1)[1]: ds[k].values for k in ds.data_vars if k.startswith("samples__")}
    covariance = ds["covariance"].values if "covariance" in ds.data_vars else None
    summary = header["data_summary"]
    summary["class_freq"] = tuple(summary.get("class_freq", ()))
    data = None
    if "data__X" in ds.data_vars:
        data = Dataset(
            *(ds[f"data__{k}"].values for k in ("X", "y", "offset", "trials")),
            list(header["feature_names"]),
            DataSummary(**summary),
            bool(header.get("named_columns", False)),
            ds["data__weights"].values if "data__weights" in ds.data_vars else None,
        )
    return {
        "method": header["method"],
        "model": header["model"],
        "params": params,
        "samples": samples if header["has_samples"] else None,
        "covariance": covariance,
        "info": header["info"],
        "feature_names": header["feature_names"],
        "data_summary": DataSummary(**summary),
        "data": data,
        "named_columns": bool(header.get("named_columns", False)),
        "formula": _formula_from(header.get("formula"), ds),
    }


def _formula_from(spec: dict | None, ds):
    """``(formula, training columns as a DataFrame)`` of a saved formula fit, or None."""
    if not spec:
        return None
    import pandas as pd  # noqa: PLC0415 -- only formula fits reach this

    frame = pd.DataFrame({c: ds[f"formula_data__{c}"].values for c in spec["columns"]})
    for column, kind in spec["columns"].items():
        if kind == "str":
            frame[column] = frame[column].astype(str).astype(object)
    return spec["formula"], frame
