"""The package's shape: no import cycle, one module that starts training, a canvas without UI libraries."""

from __future__ import annotations

import ast
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "badnets_utils"


def _imports(path: Path) -> set[str]:
    """The package modules a module imports, at the top or inside functions (lazy imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1:
                found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("badnets_utils."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            pass  # the CLI's subcommands: checked below through SUBCOMMANDS
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    return {m for m in found if m in modules and m != path.stem}


def _graph() -> dict[str, set[str]]:
    graph = {p.stem: _imports(p) for p in PACKAGE.glob("*.py")}
    from badnets_utils.cli import SUBCOMMANDS

    graph["cli"] |= {module.split(".")[-1] for module, _ in SUBCOMMANDS.values()} - {"cli"}
    return graph


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack, node, nxt]))
            if nxt not in state:
                visit(nxt, [*stack, node])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [])


def test_only_the_experiment_module_starts_training():
    callers = []
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name == "fit":
                    callers.append(path.stem)
    assert set(callers) == {"experiment"}, callers
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            text = "".join(cell["source"])
            if cell["cell_type"] == "code":
                assert "fit(" not in text and ".backward(" not in text, f"{nb.name}: training outside the pipeline"


PLUMBING = {"files", "checkpoints", "allocator", "argparsing", "blocks", "pages", "benchmark_tables", "repo",
            "classroom", "editions", "grading", "results", "cli", "parallel"}  # fmt: skip


def test_notebooks_do_not_reach_into_plumbing():
    """A notebook's cell reads like a sentence: it imports the top-level names, the course helpers (notebook,
    exercises, plots...), the defences and the studies, never the safe-file, manifest or command-line plumbing."""
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            for node in ast.walk(ast.parse("".join(cell["source"]))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("badnets_utils."):
                    assert node.module.split(".")[1] not in PLUMBING, f"{nb.name}: from {node.module} import ..."
                if isinstance(node, ast.ImportFrom) and node.module == "badnets_utils":
                    assert not {a.name for a in node.names} & PLUMBING, f"{nb.name}: {ast.unparse(node)}"


def test_the_canvas_stands_without_ui_libraries():
    closure, todo = set(), ["canvas"]
    graph = _graph()
    while todo:
        m = todo.pop()
        if m not in closure:
            closure.add(m)
            todo.extend(graph[m])
    assert not closure & {"widgets", "plots", "variants", "defense_plots"}, closure
    for module in closure:
        imported = set()
        for node in ast.walk(ast.parse((PACKAGE / f"{module}.py").read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
        assert not imported & {"ipywidgets", "matplotlib", "IPython"}, module


def test_no_module_shadows_the_standard_library():
    import sys

    assert not {p.stem for p in PACKAGE.glob("*.py")} & set(sys.stdlib_module_names)
