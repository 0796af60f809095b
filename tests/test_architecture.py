"""Imports run one way (links, priors -> families -> network -> inference -> results -> model -> spec, sklearn,
cli), and no module dodges a cycle with a function-level import of a bayes_rglm module (cli may defer its
imports to start fast); ``import bayes_rglm`` loads no heavy optional library."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bayes_rglm"


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(path: Path, node: ast.ImportFrom) -> list[str]:
    package = _module(path) if path.name == "__init__.py" else _module(path).rsplit(".", 1)[0]
    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
    if node.module is None:
        return [".".join([*base, alias.name]) for alias in node.names]
    return [".".join([*base, node.module])]


def _imports(path: Path, top_level: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level else [n for n in ast.walk(tree) if n not in tree.body]
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.level:
            found.update(_resolve(path, node))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bayes_rglm"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("bayes_rglm"))
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        deps = {d for d in _imports(path, top_level=True) if d in files}
        # Importing a module of a subpackage from outside it runs the subpackage's __init__ first. (The
        # root package's __init__ only re-exports, and a package's own modules import each other freely.)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for dep in list(deps):
            parent = dep.rsplit(".", 1)[0]
            if parent in files and parent != "bayes_rglm" and not package.startswith(parent):
                deps.add(parent)
        graph[name] = deps - {name}
    return graph


def _cycle(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                return stack[stack.index(dep) :] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_module_imports_have_no_cycle():
    graph = _graph()
    assert "bayes_rglm.network" in graph and "bayes_rglm.inference.target" in graph  # the parser sees the package
    assert _cycle(graph) is None


def test_layers_import_only_downwards():
    graph = _graph()
    below_engines = ["bayes_rglm.links", "bayes_rglm.families", "bayes_rglm.network", "bayes_rglm.priors"]
    for name in below_engines:
        assert not any(d.startswith("bayes_rglm.inference") for d in graph[name]), name
    for name in ("bayes_rglm.results", "bayes_rglm.serialize", "bayes_rglm.diagnostics", "bayes_rglm.predictive"):
        assert not any(d.startswith(("bayes_rglm.inference", "bayes_rglm.model")) for d in graph[name]), name
    engines = [n for n in graph if n.startswith("bayes_rglm.inference.")]
    for name in engines:
        assert not graph[name] & {"bayes_rglm.model", "bayes_rglm.results", "bayes_rglm.spec", "bayes_rglm.cli"}, name


def test_no_function_level_import_of_the_package_outside_cli():
    offenders = {
        _module(p): sorted(found)
        for p in PACKAGE.rglob("*.py")
        if p.name != "cli.py" and (found := _imports(p, top_level=False))
    }
    assert offenders == {}


def test_import_loads_no_optional_heavy_library():
    code = (
        "import sys, bayes_rglm; "
        "print(sorted(m for m in ('arviz', 'xarray', 'pandas', 'matplotlib', 'sklearn', 'statsmodels', 'optax') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
