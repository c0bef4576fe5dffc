"""The package's shape: its modules import each other as a tree (no import circle), and no module or function
is longer than a reader can hold in mind (400 lines, 60 lines), except the allow-listed ones below."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "tpainn"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

# Modules and functions over the limits, by path relative to python/ (functions as path::Qualified.name).
ALLOWED_LONG = {
    # the training loop: set-up, the epoch loop and the finish read best as one story; issue 15 follow-up
    "tpainn/train/trainer.py::train",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _top_level_statements(body):
    """The statements run when the module is imported: not those inside functions or classes' methods."""
    for node in body:
        yield node
        if isinstance(node, (ast.If, ast.Try, ast.With)):
            for block in ("body", "orelse", "finalbody", "handlers"):
                for child in getattr(node, block, []):
                    yield from _top_level_statements(child.body if isinstance(child, ast.ExceptHandler) else [child])


def _imported_modules(module: str, node: ast.stmt) -> list[str]:
    """The package's modules an import statement loads by name (a name imported from a package that is one of
    its modules counts as that module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in MODULES]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:  # relative: from the module's package, level - 1 packages up
        package = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
    else:
        base = node.module
    found = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES]
    return found + ([base] if base in MODULES and len(found) < len(node.names) else [])


def import_graph(inside_functions: bool = False) -> dict[str, set[str]]:
    """module -> the package's modules it imports at module level (and, with inside_functions, in functions)."""
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        statements = ast.walk(tree) if inside_functions else _top_level_statements(tree.body)
        graph[module] = {target for node in statements for target in _imported_modules(module, node)} - {module}
    return graph


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle (its modules, the first repeated at the end), or None."""
    state: dict[str, str] = {}  # "open" while on the depth-first path, "done" after

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                return path[path.index(target):] + [module, target] if target in path else [module, target]
            if target not in state and (circle := visit(target, path + [module])):
                return circle
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (circle := visit(module, [])):
            return circle
    return None


@pytest.mark.parametrize("inside_functions", [False, True])
def test_the_package_imports_as_a_tree(inside_functions):
    # An import moved into a function hides a circle from the interpreter, not from the design: count those too.
    circle = find_circle(import_graph(inside_functions))
    assert circle is None, "import circle: " + " -> ".join(circle)


def test_the_circle_finder_finds_circles():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_imports_by_module_and_by_name():
    graph = import_graph()
    assert {"tpainn.data.hdf5", "tpainn.data.readers", "tpainn.data.registry"} <= graph["tpainn.data.frames"]
    assert "tpainn.data.formats.qm9" in graph["tpainn.data"]
    # hdf5 only stores: it needs nothing that reads other formats or knows the registry.
    assert graph["tpainn.data.hdf5"] <= {"tpainn.data.checks", "tpainn.data.errors", "tpainn.data.labels"}


def _long_functions(tree: ast.AST, prefix: str = ""):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                yield prefix + node.name, node.end_lineno - node.lineno + 1
            yield from _long_functions(node, prefix + node.name + ".")
        elif isinstance(node, ast.ClassDef):
            yield from _long_functions(node, prefix + node.name + ".")
        else:
            yield from _long_functions(node, prefix)


def _too_long() -> dict[str, int]:
    found = {}
    for path in MODULES.values():
        name = path.relative_to(PACKAGE.parent).as_posix()
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            found[name] = len(text.splitlines())
        found.update({f"{name}::{function}": n for function, n in _long_functions(ast.parse(text))})
    return found


def test_modules_and_functions_are_short():
    too_long = {name: n for name, n in _too_long().items() if name not in ALLOWED_LONG}
    assert not too_long, f"over {MAX_MODULE_LINES} lines per module / {MAX_FUNCTION_LINES} per function: {too_long}"


def test_the_allow_list_names_only_what_is_still_long():
    # An entry that has been shortened (or renamed) comes off the list, so that the list cannot hide a new offender.
    assert ALLOWED_LONG <= set(_too_long()), f"shortened, take off ALLOWED_LONG: {sorted(ALLOWED_LONG - set(_too_long()))}"


@pytest.mark.parametrize("source, expected", [
    ("def f():\n" + "    x = 1\n" * 60, ["f"]),
    ("class C:\n    def m(self):\n" + "        x = 1\n" * 60 + "\ndef g():\n    pass\n", ["C.m"]),
    ("def f():\n" + "    x = 1\n" * 59, []),
])  # fmt: skip
def test_long_functions_are_found(source, expected):
    assert [name for name, _ in _long_functions(ast.parse(source))] == expected


BENCHMARKS = sorted((PACKAGE.parents[1] / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("script", BENCHMARKS, ids=[path.name for path in BENCHMARKS])
def test_benchmark_scripts_import_the_package_as_it_is(script):
    """Benchmarks are not run by the suite; their imports are, so a renamed function cannot break them unseen."""
    result = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, cwd=script.parent, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage" in result.stdout.lower()
