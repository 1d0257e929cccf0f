"""The package's shape, by folder (docs/architecture.md): imports run one way, one module starts training, every
run default lives in Attack or Budget, names do not clash, functions fit on a screen, notebooks use the public
rooms only, data lives in data files.

Each rule is a function over the source, so that ``test_rules_catch_a_violation`` can feed it a deliberately
broken package and see it fail."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "badnets_utils"
# Imports run one way: a room may import its own modules and the rooms below it, never one above.
RANK = {"_io": 0, "core": 1, "defences": 2, "studies": 3, "course": 4, "tools": 5}
MAX_LINES, MAX_PARAMS = 60, 8
NOTEBOOK_ROOMS = {"course", "defences", "studies"}  # besides the top-level names
RUN_FIELDS = {
    "dataset",
    "trigger",
    "trigger_size",
    "position",
    "alpha",
    "mask",
    "target",
    "kind",
    "source",
    "rate",
    "count",
    "mode",
    "seed",
    "epochs",
    "batch_size",
    "lr",
    "optimizer",
    "loss",
    "device",
    "train_limit",
    "test_limit",
}  # fmt: skip  (Attack's and Budget's fields: tests/test_config.py checks the list)


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted name inside the package ('core.poison') -> file, for every module of every room."""
    return {".".join(p.relative_to(package).with_suffix("").parts): p for p in sorted(package.rglob("*.py"))}


def room(name: str) -> str | None:
    first = name.split(".")[0]
    return first if first in RANK else None


def imports(path: Path) -> set[str]:
    """The package modules ``path`` imports ('core.config', 'defences' …), at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("badnets_utils"):
            base = node.module.removeprefix("badnets_utils").lstrip(".")
            found |= {f"{base}.{a.name}".lstrip(".") for a in node.names}
            if base:
                found.add(base)
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("badnets_utils.") for a in node.names if a.name.startswith("badnets_utils.")}
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: a relative import; write the package's absolute path")
    return found


def upward_imports(package: Path = PACKAGE) -> list[str]:
    """Rule 1: 'module imports module' for every import that points at a higher room."""
    bad = []
    for name, path in modules(package).items():
        mine = room(name)
        if mine is None:  # __init__ and __main__: the public names and the entry point
            continue
        for target in imports(path):
            theirs = room(target)
            if theirs is not None and RANK[theirs] > RANK[mine]:
                bad.append(f"{name} imports {target}")
    return bad


def fit_callers(package: Path = PACKAGE) -> set[str]:
    """Rule 1: the modules that call ``fit`` (only the pipeline may)."""
    callers = set()
    for name, path in modules(package).items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and (getattr(node.func, "id", None) or getattr(node.func, "attr", None)) == "fit"
            ):
                callers.add(name)
    return callers


def functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def _params(fn: ast.FunctionDef) -> list[tuple[ast.arg, ast.expr | None]]:
    a = fn.args
    positional = [*a.posonlyargs, *a.args]
    defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    pairs = list(zip(positional, defaults, strict=True)) + list(zip(a.kwonlyargs, a.kw_defaults, strict=True))
    return [(arg, d) for arg, d in pairs if arg.arg not in ("self", "cls")]


def run_defaults_below_config(package: Path = PACKAGE) -> list[str]:
    """Rule 2: below Attack and Budget (the core) no parameter named after one of their fields has a
    default of its own; it takes the config, or is keyword-only without a default, or reads ``Attack.x``."""
    bad = []
    for name, path in modules(package).items():
        if room(name) != "core" or name == "core.config":
            continue
        for fn in functions(path):
            for arg, default in _params(fn):
                own = default is not None and not (isinstance(default, ast.Constant) and default.value is None)
                config = isinstance(default, ast.Attribute) and getattr(default.value, "id", "") in ("Attack", "Budget")
                if arg.arg in RUN_FIELDS and own and not config:
                    bad.append(f"{name}.{fn.name}({arg.arg}={ast.unparse(default)})")
    return bad


def name_clashes(package: Path = PACKAGE) -> list[str]:
    """Rule 4: no module and function (or class) share a name anywhere in the package."""
    names = {n.split(".")[-1] for n in modules(package)} | {p.name for p in package.iterdir() if p.is_dir()}
    clashes = []
    for name, path in modules(package).items():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names:
                clashes.append(f"{name}.{node.name}")
    return clashes


def too_long(package: Path = PACKAGE) -> list[str]:
    """Rule 5: functions over ``MAX_LINES`` lines or ``MAX_PARAMS`` parameters."""
    bad = []
    for name, path in modules(package).items():
        for fn in functions(path):
            lines, params = fn.end_lineno - fn.lineno + 1, len(_params(fn))
            if lines > MAX_LINES or params > MAX_PARAMS:
                bad.append(f"{name}.{fn.name}: {lines} lines, {params} parameters")
    return bad


def notebook_imports(notebooks: Path = ROOT / "notebooks") -> list[str]:
    """Rule 6: a notebook imports the top-level names, ``course``, ``defences`` and ``studies``, never the core's
    modules, the tools or the plumbing."""
    bad = []
    for nb in sorted(notebooks.glob("*.ipynb")):
        for cell in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] != "code":
                continue
            for node in ast.walk(ast.parse("".join(cell["source"]))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("badnets_utils."):
                    if node.module.split(".")[1] not in NOTEBOOK_ROOMS:
                        bad.append(f"{nb.name}: from {node.module} import ...")
                elif isinstance(node, ast.ImportFrom) and node.module == "badnets_utils":
                    public = set(__import__("badnets_utils").__all__) | NOTEBOOK_ROOMS
                    bad += [f"{nb.name}: badnets_utils.{a.name}" for a in node.names if a.name not in public]
    return bad


def test_imports_run_one_way():
    assert upward_imports() == []


def test_only_the_pipeline_starts_training():
    assert fit_callers() == {"core.pipeline"}
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
            text = "".join(cell["source"])
            if cell["cell_type"] == "code":
                assert "fit(" not in text and ".backward(" not in text, f"{nb.name}: training outside the pipeline"


def test_every_run_default_is_a_config_field():
    from badnets_utils import Attack, Budget

    fields = {f for cls in (Attack, Budget) for f in cls.__dataclass_fields__} - {"name"}
    assert fields == RUN_FIELDS
    assert run_defaults_below_config() == []


def test_no_module_and_function_share_a_name():
    assert name_clashes() == []


def test_functions_fit_on_a_screen():
    assert too_long() == []


def test_notebooks_import_only_the_public_rooms():
    assert notebook_imports() == []


def test_data_is_not_code():
    """Rule 7: hint texts, sealed answers and the release registry are data files beside their module."""
    from badnets_utils.course import exercises
    from badnets_utils.tools import releases

    assert exercises.TEXTS.parent == PACKAGE / "course" and exercises.TEXTS.suffix == ".json"
    assert releases.REGISTRY.parent == PACKAGE / "tools" and releases.REGISTRY.suffix == ".json"
    registry = json.loads(releases.REGISTRY.read_text(encoding="utf-8"))["releases"]
    assert set(registry) == set(releases.RELEASES)


TEST_ROOMS = {*RANK, "notebooks", "site"}  # tests/<room>/: the package's rooms, then the notebooks and the site


def test_tests_are_named_by_subject_and_mirror_the_rooms():
    """Rule 8: a test file says what it tests, not when (no hardening rounds, no dates), and sits in the folder of
    the room it tests; only the package-wide checks stay at the top."""
    import re

    tests = sorted((ROOT / "tests").rglob("test_*.py"))
    assert [p.name for p in tests if re.search(r"round\d|hardening|\d{4}", p.name)] == []
    top = {p.name for p in tests if p.parent == ROOT / "tests"}
    assert top == {"test_architecture.py", "test_packaging.py", "test_wheel.py"}, top
    assert {p.parent.name for p in tests if p.parent != ROOT / "tests"} <= TEST_ROOMS
    assert len({p.name for p in tests}) == len(tests), "two test files of one name: pytest needs them unique"


def test_the_canvas_stands_without_ui_libraries():
    closure, todo = set(), ["course.canvas"]
    graph = {name: {t for t in imports(path) if t in modules()} for name, path in modules().items()}
    while todo:
        m = todo.pop()
        if m not in closure:
            closure.add(m)
            todo.extend(graph[m])
    assert not closure & {"course.painter", "course.plots"}, closure
    for module in closure:
        imported = set()
        for node in ast.walk(ast.parse(modules()[module].read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
        assert not imported & {"ipywidgets", "matplotlib", "IPython"}, module


def test_no_module_shadows_the_standard_library():
    import sys

    assert not {n.split(".")[-1] for n in modules()} & set(sys.stdlib_module_names)


VIOLATIONS = {
    "core/poison.py": ("\nfrom badnets_utils.course import plots\n", upward_imports, "core.poison imports course"),
    "studies/variants.py": ("\ndef f(m, d):\n    return fit(m, d)\n", fit_callers, "studies.variants"),
    "core/training.py": ("\ndef g(x, epochs=3):\n    pass\n", run_defaults_below_config, "core.training.g(epochs=3)"),
    "core/metrics.py": ("\ndef poison():\n    pass\n", name_clashes, "core.metrics.poison"),
    "core/models.py": ("\ndef h(a, b, c, d, e, f, g, i, j):\n    pass\n", too_long, "core.models.h: 2 lines, 9"),
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(VIOLATIONS))
def test_rules_catch_a_violation(tmp_path, module):
    """Each enforceable rule fails on a package copy that breaks it once."""
    copy = tmp_path / "badnets_utils"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    code, rule, expected = VIOLATIONS[module]
    assert not any(expected in line for line in map(str, _found(rule, copy)))
    with open(copy / module, "a", encoding="utf-8") as f:
        f.write(code)
    assert any(expected in line for line in map(str, _found(rule, copy))), _found(rule, copy)


def _found(rule, package: Path):
    found = rule(package)
    return found if isinstance(found, (list, set)) else [found]


def test_a_notebook_reaching_into_the_core_is_caught(tmp_path):
    cell = {"cell_type": "code", "source": ["from badnets_utils.core.pipeline import run\n"], "metadata": {}}
    (tmp_path / "x.ipynb").write_text(json.dumps({"cells": [cell]}), encoding="utf-8")
    assert notebook_imports(tmp_path) == ["x.ipynb: from badnets_utils.core.pipeline import ..."]
