"""What a stage's code reads of params.yaml, derived from the code itself (its syntax tree).

From the stage's main(), follow every name this code can resolve (a function may be called or
handed on): a function, class or module-level value of the same module, one imported from another
stages module, `module.name`, and `anything.method` (every method of that name in stages/). In
what is reached, `x.section.key` reads that key, and so does `name.key` where the name holds a
section: a parameter annotated with the section's class (`model: ModelParams`), or a name given
`x.section` (`data = params.load().data`).
"""

import ast
from dataclasses import fields
from pathlib import Path

from stages.common import params

STAGES_FOLDER = Path(__file__).resolve().parents[1] / "stages"
SECTION_KEYS = {name: {key.name for key in fields(kind)} for name, kind in params.SECTIONS.items()}
SECTION_OF_CLASS = {kind.__name__: name for name, kind in params.SECTIONS.items()}


def params_read(stage: str) -> set[str]:
    """The keys, as section.key, that stages/{stage}.py's main() reads, directly or not."""
    functions, methods = _definitions()
    modules = _modules()
    reached: dict[tuple[str, str], ast.AST] = {}
    pending = [(stage, "main")]
    while pending:
        module, name = pending.pop()
        if (module, name) in reached or (module, name) not in functions:
            continue
        reached[(module, name)] = node = functions[(module, name)]
        imported = _imported(module)
        for target in ast.walk(node):
            # Any name or attribute: a function may be called, or passed on to be called.
            if isinstance(target, ast.Name):
                pending.append(imported.get(target.id, (module, target.id)))
            elif isinstance(target, ast.Attribute):
                if isinstance(target.value, ast.Name) and target.value.id in modules:
                    pending.append((target.value.id, target.attr))
                pending.extend(methods.get(target.attr, []))
    return _reads(reached.values())


def _reads(functions) -> set[str]:
    keys = set()
    for function in functions:
        # The names that hold a section: parameters annotated with its class, and names given
        # `anything.section` (data = params.load().data).
        holders = {
            argument.arg: SECTION_OF_CLASS[_last_name(argument.annotation)]
            for argument in ast.walk(function)
            if isinstance(argument, ast.arg) and _last_name(argument.annotation) in SECTION_OF_CLASS
        }
        for node in ast.walk(function):
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr in SECTION_KEYS
            ):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        holders[target.id] = node.value.attr
        for node in ast.walk(function):
            if not isinstance(node, ast.Attribute):
                continue
            inner = node.value
            if isinstance(inner, ast.Attribute) and inner.attr in SECTION_KEYS:
                section = inner.attr
            elif isinstance(inner, ast.Name) and inner.id in holders:
                section = holders[inner.id]
            else:
                continue
            if node.attr in SECTION_KEYS[section]:
                keys.add(f"{section}.{node.attr}")
    return keys


def _last_name(annotation) -> str:
    """DataParams, of `DataParams` or `params.DataParams`."""
    if isinstance(annotation, ast.Attribute):
        return annotation.attr
    return annotation.id if isinstance(annotation, ast.Name) else ""


def _modules() -> set[str]:
    """The modules of stages/ and stages/common/, by their names (no two share one)."""
    return {path.stem for path in STAGES_FOLDER.rglob("*.py")}


def _tree(module: str) -> ast.Module:
    return ast.parse(next(STAGES_FOLDER.rglob(f"{module}.py")).read_text())


def _definitions():
    """(module, name) -> each function, class (its methods as one) and method; method name ->
    the (module, Class.method) that define it."""
    functions, methods = {}, {}
    for module in _modules():
        for node in _tree(module).body:
            if isinstance(node, ast.Assign | ast.AnnAssign):  # BUILDERS = {"dense": dense, ...}
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        functions[(module, target.id)] = node
            elif isinstance(node, ast.FunctionDef):
                functions[(module, node.name)] = node
            elif isinstance(node, ast.ClassDef):
                functions[(module, node.name)] = node
                for method in node.body:
                    if isinstance(method, ast.FunctionDef):
                        functions[(module, f"{node.name}.{method.name}")] = method
                        methods.setdefault(method.name, []).append(
                            (module, f"{node.name}.{method.name}")
                        )
    return functions, methods


def _imported(module: str) -> dict[str, tuple[str, str]]:
    """The functions and classes a module imports from other stages modules, by the names it
    gives them: (module, name)."""
    names = {}
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stages."):
            source = node.module.rsplit(".", 1)[-1]  # stages.common.params: params
            names |= {alias.asname or alias.name: (source, alias.name) for alias in node.names}
    return names
