"""The house's layout: which module may import which."""

import ast

import yaml

from tests.conftest import REPO

PACKAGES = ("stages", "scripts", "benchmarks")


def imports() -> dict[str, set[str]]:
    """Each module of the packages outside tests (stages.train, ...): the project modules it
    imports, at the top or inside a function."""
    modules = {
        ".".join(path.relative_to(REPO).with_suffix("").parts): path
        for package in PACKAGES
        for path in (REPO / package).rglob("*.py")
        if path.stem != "__init__"
    }
    graph = {}
    for module, path in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
                imported |= {f"{node.module}.{alias.name}" for alias in node.names}
        graph[module] = {name for name in imported if name.split(".")[0] in (*PACKAGES, "tests")}
        graph[module] = {
            name
            for name in graph[module]
            if name in modules or name == "tests" or name.startswith("tests.")
        }
    return graph


def test_no_module_imports_tests_or_a_stage_script():
    stages = {
        f"stages.{name}" for name in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    }
    for module, imported in imports().items():
        assert not {name for name in imported if name.split(".")[0] == "tests"}, module
        assert not imported & stages, module  # shared code lives in a module the stages import


def test_no_import_circle():
    graph = imports()

    def circle_from(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        for imported in sorted(graph.get(module, ())):
            if found := circle_from(imported, [*path, module]):
                return found
        return None

    for module in graph:
        assert circle_from(module, []) is None
