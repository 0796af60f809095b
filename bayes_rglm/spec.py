"""TOML model specs: data, model and inference in one file, checked key by key.

A spec has a top-level ``description`` (one line) and optional ``name`` and
``default``, and three tables::

    [data]       dataset, target, features or formula ("y ~ C(g) * x", the target on its left), standardise,
                 test_size, split_seed
    [model]      family, link, hidden, activation, [model.prior] scale/bias_scale/hierarchical,
                 [model.family_options] (e.g. lower/upper for tobit, sigma for a fixed noise scale)
    [inference]  method, and that method's options (num_warmup, num_samples, num_steps, ...)

Unknown keys, wrong types and unknown names raise :class:`SpecError` naming the
file, the key and what is allowed.

Examples
--------
>>> spec = parse_spec({"description": "d", "data": {"dataset": "iris"},
...                    "model": {"family": "categorical"}, "inference": {"method": "map"}}, "x.toml")
>>> spec.model().family.name
'categorical'
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from .families import FAMILIES
from .model import RGLM
from .priors import GaussianPrior


class SpecError(ValueError):
    """A spec file that cannot be used: names the file, the key and what is allowed."""


DATA_KEYS = {
    "dataset": str,
    "target": str,
    "features": list,
    "standardise": bool,
    "test_size": float,
    "split_seed": int,
    "trials": str,
    "formula": str,
}
MODEL_KEYS = {
    "family": str,
    "link": str,
    "hidden": list,
    "activation": (str, list),
    "prior": dict,
    "family_options": dict,
}
PRIOR_KEYS = {"scale": (float, list), "bias_scale": (float, list), "hierarchical": bool, "autoscale": bool}
TOP_KEYS = {"name": str, "description": str, "default": bool, "data": dict, "model": dict, "inference": dict}
INFERENCE_KEYS = {
    "method": str,
    "num_warmup": int,
    "num_samples": int,
    "num_chains": int,
    "chain_method": str,
    "target_accept": float,
    "dense_mass": bool,
    "max_tree_depth": int,
    "num_steps": int,
    "num_epochs": int,
    "batch_size": int,
    "learning_rate": float,
    "guide": str,
    "num_particles": int,
    "rank": int,
    "covariance": str,
    "max_iter": int,
    "tol": float,
    "num_restarts": int,
}
METHOD_NAMES = ("mle", "map", "laplace", "svi", "nuts")
QUICK = {"num_warmup": 100, "num_samples": 100, "num_chains": 2, "num_steps": 300, "num_epochs": 1, "num_restarts": 1}


def _type_name(expected) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(
        {str: "string", int: "integer", float: "number", bool: "true/false", list: "array", dict: "table"}[t]
        for t in types
    )


def _check_table(table: dict, allowed: dict, where: str, path: str) -> None:
    for key, value in table.items():
        if key not in allowed:
            raise SpecError(f"{path}: unknown key {where}{key!r}; allowed: {', '.join(sorted(allowed))}")
        expected = allowed[key] if isinstance(allowed[key], tuple) else (allowed[key],)
        ok = any(
            isinstance(value, t)
            and not (t in (int, float) and isinstance(value, bool))
            or (t is float and isinstance(value, int) and not isinstance(value, bool))
            for t in expected
        )
        if not ok:
            raise SpecError(f"{path}: key {where}{key} must be a {_type_name(allowed[key])}, got {value!r}")


@dataclass(frozen=True)
class Spec:
    """A parsed model spec."""

    name: str
    path: str
    description: str
    data: dict
    model_options: dict
    inference: dict
    default: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def method(self) -> str:
        return self.inference.get("method", "map")

    def method_options(self, method: str | None = None, quick: bool = False) -> dict:
        """Options for ``method`` (the spec's own only when it is the spec's method), shrunk by ``quick``."""
        method = method or self.method
        options = {k: v for k, v in self.inference.items() if k != "method"} if method == self.method else {}
        if quick:
            for key, cap in QUICK.items():
                if key in options:
                    options[key] = min(options[key], cap)
            defaults = {
                "nuts": {"num_warmup": 100, "num_samples": 100, "num_chains": 2},
                "svi": {"num_steps": 300},
                "laplace": {"num_samples": 200},
            }
            for key, value in defaults.get(method, {}).items():
                options.setdefault(key, value)
            if method == "svi" and "num_epochs" in options:
                options.pop("num_steps", None)
        return options

    def model(self) -> RGLM:
        """The :class:`~bayes_rglm.RGLM` this spec describes."""
        options = dict(self.model_options)
        prior = options.pop("prior", None)
        family_options = options.pop("family_options", None)
        family = options.pop("family")
        try:
            if family_options:
                family = FAMILIES[family](**family_options)
            return RGLM(
                family=family,
                prior=GaussianPrior(**prior) if prior else None,
                hidden=tuple(options.pop("hidden", ())),
                **options,
            )
        except (ValueError, TypeError) as err:
            raise SpecError(f"{self.path}: [model] {err}") from None

    def summary_row(self) -> dict:
        model = self.model()
        return {
            "name": self.name,
            "path": self.path,
            "family": model.family.name,
            "link": model.link.name,
            "hidden": list(model.hidden),
            "activations": [a.name for a in model.activations],
            "data": self.data.get("dataset"),
            "method": self.method,
            "default": self.default,
            "description": self.description,
        }


def parse_spec(raw: dict, path: str) -> Spec:
    """Check a loaded TOML document and build a :class:`Spec`."""
    _check_table(raw, TOP_KEYS, "", path)
    for section in ("data", "model"):
        if section not in raw:
            raise SpecError(f"{path}: missing table [{section}]")
    data, model, inference = raw["data"], dict(raw["model"]), dict(raw.get("inference", {}))
    _check_table(data, DATA_KEYS, "data.", path)
    _check_table(model, MODEL_KEYS, "model.", path)
    _check_table(inference, INFERENCE_KEYS, "inference.", path)
    if "dataset" not in data:
        raise SpecError(f"{path}: [data] needs dataset = NAME (e.g. 'iris' or 'csv:path.csv')")
    if "family" not in model:
        raise SpecError(f"{path}: [model] needs family = NAME; allowed: {', '.join(sorted(FAMILIES))}")
    if model["family"] not in FAMILIES:
        raise SpecError(
            f"{path}: model.family {model['family']!r} is not known; allowed: {', '.join(sorted(FAMILIES))}"
        )
    if "prior" in model:
        _check_table(model["prior"], PRIOR_KEYS, "model.prior.", path)
    if inference.get("method", "map") not in METHOD_NAMES:
        raise SpecError(
            f"{path}: inference.method {inference['method']!r} is not known; allowed: {', '.join(METHOD_NAMES)}"
        )
    if "formula" in data:
        if "features" in data:
            raise SpecError(f"{path}: give data.formula or data.features, not both (the formula picks the columns)")
        if data.get("standardise", False):
            raise SpecError(
                f"{path}: data.standardise does not apply with a formula; use center() or scale() in the formula"
            )
        if "~" not in data["formula"]:
            raise SpecError(f"{path}: data.formula must be 'target ~ terms', got {data['formula']!r}")
    test_size = data.get("test_size", 0.25)
    if not 0 < test_size < 1:
        raise SpecError(f"{path}: data.test_size must be in (0, 1), got {test_size!r}")
    name = raw.get("name", Path(path).stem)
    spec = Spec(name, str(path), raw.get("description", ""), data, model, inference, raw.get("default", False))
    spec.model()  # names of family, link, activation and prior values checked now
    return spec


def load_spec(path) -> Spec:
    """Read and check one TOML spec file."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such spec file")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{path}: not valid TOML ({err})") from None
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not a text file") from None
    return parse_spec(raw, str(path))


def models_dir() -> Path:
    """The folder of ready specs: ``$BAYES_RGLM_MODELS``, or the package's own ``bayes_rglm/models/`` (shipped
    in the wheel, found through ``importlib.resources``, so ``bayes-rglm`` works outside a checkout)."""
    env = os.environ.get("BAYES_RGLM_MODELS")
    if env:
        return Path(env)
    return Path(str(files("bayes_rglm") / "models"))


def list_specs() -> list[Spec]:
    """Every spec in :func:`models_dir`, sorted by name."""
    folder = models_dir()
    if not folder.is_dir():
        raise SpecError(f"{folder}: the models folder does not exist (set BAYES_RGLM_MODELS)")
    return sorted((load_spec(p) for p in folder.glob("*.toml")), key=lambda s: s.name)


def find_spec(name_or_path: str | None) -> Spec:
    """A spec by path, by name in :func:`models_dir`, or the default spec when ``None``."""
    if name_or_path is None:
        defaults = [s for s in list_specs() if s.default]
        if len(defaults) != 1:
            raise SpecError(f"{models_dir()}: expected exactly one spec with default = true, found {len(defaults)}")
        return defaults[0]
    if os.path.exists(name_or_path) or name_or_path.endswith(".toml"):
        return load_spec(name_or_path)
    candidate = models_dir() / f"{name_or_path}.toml"
    if candidate.is_file():
        return load_spec(candidate)
    names = ", ".join(s.name for s in list_specs())
    raise SpecError(f"{name_or_path}: no such spec file or spec name; names: {names}")
