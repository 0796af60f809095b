"""Formulas (``"y ~ C(g) * x + np.log(z) + offset(np.log(e))"``), through formulaic.

A formula is evaluated on a DataFrame by formulaic, as glum and bambi do: factors get treatment
contrasts (the first level is the reference; strings and categoricals are factors without ``C()``),
``:`` and ``*`` make interactions, ``I()`` and ``np.`` functions transform, and formulaic's ``bs``,
``center``, ``scale`` and ``poly`` are available.  ``offset(expr)`` adds ``expr`` to the linear
predictor, as in R and bambi.  The model always has its own intercept ``b0``, so the design is the
formula's without its ``Intercept`` column (a formula without an intercept is refused).

The design is kept with the fit: :meth:`FormulaDesign.transform` reapplies it to new data with the
training levels and the stateful transforms' training state; a level not seen in training is a
``ValueError`` naming the column and the level.

Examples
--------
>>> import pandas as pd
>>> df = pd.DataFrame({"y": [1.0, 2.0, 4.0, 3.0], "g": ["a", "b", "a", "b"], "x": [0.0, 1.0, 2.0, 3.0]})
>>> design, X, y, offset = FormulaDesign.from_formula("y ~ g + x", df)
>>> list(X.columns)
['g[T.b]', 'x']
"""

from __future__ import annotations

import re
import warnings

import numpy as np

from .data import is_dataframe


def _offset(values):
    return np.asarray(values, dtype=np.float64)


CONTEXT = {"np": np, "offset": _offset}  # names a formula may use beside the data's columns and formulaic's own


class FormulaDesign:
    """A formula and formulaic's ``ModelSpecs`` fitted to the training data (levels, transform state)."""

    def __init__(self, formula: str, spec, columns: list[str], offset_columns: list[str]):
        self.formula, self.spec, self.columns, self.offset_columns = formula, spec, columns, offset_columns

    @classmethod
    def from_formula(cls, formula: str, data):
        """``(design, X, y, offset)``: the design, the design matrix (a DataFrame), the response and the
        formula's offset (None without ``offset()``)."""
        formulaic = _formulaic()
        if not is_dataframe(data):
            raise TypeError(
                f"a formula needs data=, a pandas DataFrame with its columns, got {type(data).__name__}; "
                "e.g. model.fit('y ~ x + C(g)', data=df)"
            )
        parsed = _parse(formulaic, formula)
        if not hasattr(parsed, "lhs"):
            raise ValueError(f"formula {formula!r} has no response; write it as 'y ~ x1 + x2'")
        missing = sorted(set(parsed.required_variables) - set(map(str, data.columns)) - set(CONTEXT))
        if missing:
            raise ValueError(
                f"formula {formula!r} names {missing[0]!r}, which is not a column of data "
                f"(columns: {', '.join(map(str, data.columns))})"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            matrices = formulaic.model_matrix(formula, data, context=CONTEXT, na_action="raise")
        y = matrices.lhs
        if y.shape[1] != 1:
            raise ValueError(f"formula {formula!r} has {y.shape[1]} response columns; give one (e.g. 'y ~ x')")
        rhs = matrices.rhs
        names = [str(c) for c in rhs.columns]
        if "Intercept" not in names:
            raise ValueError(
                f"formula {formula!r} has no intercept; the model always fits its own (b0), so drop '0 +' or '- 1'"
            )
        offsets = [c for c in names if c.startswith("offset(")]
        columns = [c for c in names if c != "Intercept" and c not in offsets]
        design = cls(formula, matrices.model_spec, columns, offsets)
        design.required_columns = _referenced(formula, data.columns)
        design.data = data  # the training rows, for marginal effects averaged over them (not saved)
        X, offset = design._split(rhs)
        return design, X, y.iloc[:, 0].to_numpy(dtype=np.float64), offset

    def transform(self, data, argument: str = "X"):
        """``(X, offset)`` for new data: the training design reapplied (levels and transform state kept)."""
        if not is_dataframe(data):
            raise TypeError(
                f"{argument} must be a DataFrame with the formula's columns (this fit was made from "
                f"{self.formula!r}), got {type(data).__name__}"
            )
        rhs_spec = self.spec.rhs
        rhs = self.formula.split("~", 1)[1]
        needed = sorted(
            (self.required_columns & set(re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", rhs))) - set(map(str, data.columns))
        )
        if needed:
            raise ValueError(f"{argument} is missing column {needed[0]!r}, which the formula {self.formula!r} uses")
        self._check_levels(data, argument)
        rhs = rhs_spec.get_model_matrix(data, context=CONTEXT, na_action="raise")
        return self._split(rhs)

    def _split(self, rhs):
        offset = None
        if self.offset_columns:
            offset = np.sum([rhs[c].to_numpy(dtype=np.float64) for c in self.offset_columns], axis=0)
        return rhs[self.columns].astype(np.float64), offset

    def _check_levels(self, data, argument: str) -> None:
        """An unseen level would be encoded as all-zero dummies (formulaic only warns): refuse it."""
        for factor, (_, state) in self.spec.rhs.encoder_state.items():
            levels = state.get("categories") if isinstance(state, dict) else None
            if levels is None:
                continue
            column = factor_column(factor)
            if column not in data.columns:
                continue
            seen = set(levels)
            unseen = [v for v in data[column].unique() if v not in seen]
            if unseen:
                raise ValueError(
                    f"{argument} column {column!r} has level {unseen[0]!r}, which the training data did not have "
                    f"(levels: {', '.join(map(str, levels))}); a model cannot predict an unseen level"
                )


def _referenced(formula: str, columns) -> set[str]:
    """The columns a formula reads: its identifiers that are columns (formulaic's ``required_variables``
    misses those inside stateful transforms such as ``bs(x, df=4)``)."""
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", formula)) & set(map(str, columns))


def factor_column(factor: str) -> str:
    """The data column of a categorical factor: ``"C(g)"`` and ``"C(g, ...)"`` -> ``"g"``; ``"g"`` -> ``"g"``."""
    match = re.fullmatch(r"C\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*(,.*)?\)", factor)
    return match.group(1) if match else factor


def _parse(formulaic, formula: str):
    try:
        return formulaic.Formula(formula)
    except Exception as err:  # formulaic's parser errors are of several types
        raise ValueError(f"formula {formula!r} could not be parsed: {err}") from None


def _formulaic():
    import formulaic  # noqa: PLC0415 -- a third-party import, paid only by formula users (0.1 s)

    return formulaic
