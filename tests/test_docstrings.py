"""Every example in the package's docstrings runs and prints what it says (doctest)."""

import doctest
import importlib
import pkgutil
import warnings

import jax
import pytest

import bayes_rglm

MODULES = sorted(name for _, name, _ in pkgutil.walk_packages(bayes_rglm.__path__, "bayes_rglm."))
# Their examples call internals that the public API reaches inside its precision scope; they turn x64 on as a
# caller of the internals must (every other module's examples run with JAX's default, x64 off).
INTERNALS = {"bayes_rglm.inference.objective", "bayes_rglm.inference.problem", "bayes_rglm.inference.target"}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    with warnings.catch_warnings(), jax.enable_x64(name in INTERNALS):
        warnings.simplefilter("error")  # an example that warns shows a user something we did not mean
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (see the output)"
