"""Every figure the notebooks promise is in their committed outputs. Static: the .ipynb files and the package's
source are parsed, nothing is executed, so it runs in well under a second.

Two rules, each per notebook:

* drawn figures are shown: every call in a code cell of a package function (or method) that returns a matplotlib
  ``Figure`` must be displayed — the cell's last expression, passed to ``display()``, or assigned to a name that
  is displayed later — and the cell that shows it must hold an image output for it;
* figures the prose points at are there: a markdown cell that says "the plot", "the right panel", "the dashed
  line", ... must have an image next to it — in the code cells just before it (back to the previous markdown
  cell), in itself, or after it before the next heading. Under "Try it yourself" and "Key takeaways" the prose
  looks back, so an image anywhere above is enough there.
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "badnets_utils"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# What the notebooks say when they point at a figure beside the text. "below" alone is not one ("below 1 %",
# "the bar below" of a progress bar), nor "the preview" or "the painter" (live widgets), nor "Fig. 4" (the paper's).
_THING = (r"plots?|figures?|charts?|graphs?|pictures?|curves?|heat\s?maps?|histograms?|legend|panels?|stars?|"
          r"error bars?|bar charts?|confusion matrices|dashed line|dotted line|[xy]-axis")  # fmt: skip
_POINTER = (rf"\b(?:the|this|these)(?: (?:two|three|four|long|top|bottom|left|right|upper|lower))? (?:{_THING})\b"
            rf"|\b(?:left|right|top|bottom|upper|lower) panel\b|\bon the (?:left|right)\b|\bread off\b"
            rf"|\b(?:shown|drawn|plotted) below\b")  # fmt: skip
POINTERS = re.compile(_POINTER.replace(" ", r"\s+"), re.IGNORECASE)  # a phrase may run over a line break
# Sections whose prose looks back at the notebook's figures rather than at one beside it.
LOOKING_BACK = re.compile(r"try it yourself|key takeaways", re.IGNORECASE)
HEADING = re.compile(r"^#{1,6}\s+(.*)$", re.MULTILINE)
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
EMBEDDED_IMAGE = re.compile(r"!\[(?!Open In Colab\])[^\]]*\]\(|<img\b", re.IGNORECASE)


def source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def prose(cell: dict) -> str:
    """A markdown cell's text without code (fenced blocks and inline code)."""
    return INLINE_CODE.sub("", FENCE.sub("", source(cell)))


def image_outputs(cell: dict) -> int:
    return sum(
        any(mime.startswith("image/") for mime in out.get("data", {}))
        for out in cell.get("outputs", [])
        if out.get("output_type") in ("display_data", "execute_result")
    )


def shows_image(cell: dict) -> bool:
    if cell["cell_type"] == "code":
        return image_outputs(cell) > 0
    return cell["cell_type"] == "markdown" and bool(cell.get("attachments") or EMBEDDED_IMAGE.search(prose(cell)))


# ---------------------------------------------------------------- the package: what returns a Figure


def _is_figure_annotation(node: ast.expr | None) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        node = ast.parse(node.value, mode="eval").body
    return (isinstance(node, ast.Name) and node.id == "Figure") or (
        isinstance(node, ast.Attribute) and node.attr == "Figure"
    )


def _returns(fn: ast.FunctionDef) -> list[ast.expr | None]:
    """The values of ``fn``'s own return statements (not those of functions nested in it)."""
    found, todo = [], list(fn.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Return):
            found.append(node.value)
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(node))
    return found


def _module_name(path: Path) -> str:
    """A module's dotted name inside the package: ``course.plots``; a subpackage's ``__init__`` is the subpackage."""
    parts = path.relative_to(ROOT / PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_from(mod: str, node: ast.ImportFrom) -> str | None:
    """The package module (``course`` for ``from badnets_utils.course import plots``, relative imports too) that
    ``node`` imports from, "" for the package itself; None for a module outside the package."""
    if node.level == 0:
        if not node.module or node.module.split(".")[0] != PACKAGE:
            return None
        return node.module.removeprefix(PACKAGE).lstrip(".")
    here = mod.split(".") if mod else []
    is_package = (ROOT / PACKAGE / Path(*here) / "__init__.py").exists() if here else True
    base = here if is_package else here[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *(node.module.split(".") if node.module else [])])


def is_module(qualified: str) -> bool:
    """Whether ``course.plots`` (a dotted name inside the package) is one of its modules or subpackages."""
    path = ROOT / PACKAGE / Path(*qualified.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def figure_functions() -> tuple[set[str], set[str]]:
    """The package's functions (``module.name``, the module dotted as in ``course.plots``) and methods
    (``module.Class.name``) that return a Figure: annotated ``-> Figure``, or unannotated and returning only the
    result of another such call (``painter.show()``)."""
    paths = sorted((ROOT / PACKAGE).rglob("*.py"))
    modules = {_module_name(p): ast.parse(p.read_text(encoding="utf-8")) for p in paths if _module_name(p)}
    defs: dict[str, tuple[str, ast.FunctionDef]] = {}  # qualified name -> (its module, its definition)
    methods: set[str] = set()
    scope: dict[str, dict[str, str]] = {}  # per module: local name -> qualified name of a package function
    for mod, tree in modules.items():
        names = scope.setdefault(mod, {})
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                defs[f"{mod}.{node.name}"] = mod, node
                names[node.name] = f"{mod}.{node.name}"
            elif isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef):
                        defs[f"{mod}.{node.name}.{item.name}"] = mod, item
                        methods.add(f"{mod}.{node.name}.{item.name}")
            elif isinstance(node, ast.ImportFrom) and (base := _imported_from(mod, node)) is not None:
                for alias in node.names:
                    target = f"{base}.{alias.name}" if base else alias.name
                    names[alias.asname or alias.name] = target  # a function or, with `from … import plots`, a module

    def target(mod: str, call: ast.expr | None) -> str | None:
        if not isinstance(call, ast.Call):
            return None
        f = call.func
        if isinstance(f, ast.Name):
            return scope[mod].get(f.id)
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in scope[mod]:
            return f"{scope[mod][f.value.id]}.{f.attr}"
        return None

    figures = {q for q, (_, fn) in defs.items() if _is_figure_annotation(fn.returns)}
    while True:  # unannotated functions that return what a figure function returns
        more = {
            q for q, (mod, fn) in defs.items()
            if q not in figures and fn.returns is None and (values := _returns(fn))
            and all(target(mod, v) in figures for v in values)
        }  # fmt: skip
        if not more:
            break
        figures |= more
    return figures - methods, figures & methods


FUNCTIONS, METHODS = figure_functions()
INIT_EXPORTS = {  # `from badnets_utils import X` for a function that __init__.py re-exports
    alias.asname or alias.name: f"{base}.{alias.name}"
    for node in ast.parse((ROOT / PACKAGE / "__init__.py").read_text(encoding="utf-8")).body
    if isinstance(node, ast.ImportFrom) and (base := _imported_from("", node))
    for alias in node.names
}


def test_the_figure_functions_are_found():
    """The rules below are only as good as this list: it must hold the package's plotting functions."""
    assert {"course.plots.asr_vs_rate", "course.plots.image_grid", "course.paper_plots.pair_heatmaps",
            "course.defence_plots.pruning_plot", "course.variant_plots.variant_bars"} <= FUNCTIONS  # fmt: skip
    assert {"course.painter.TriggerPainter.show", "course.painter.TriggerPainter.results_figure"} <= METHODS
    assert "course.plots.figure_png" not in FUNCTIONS and "course.plots.to_display" not in FUNCTIONS


# ---------------------------------------------------------------- the notebooks' code


def parse_code(text: str) -> ast.Module:
    """A code cell's source as Python; IPython's magics and shell lines (``%...``, ``!...``) become ``pass``."""
    lines = [re.sub(r"^(\s*)[%!].*$", r"\1pass", line) for line in text.splitlines()]
    return ast.parse("\n".join(lines))


@dataclass
class Names:
    """What a notebook's names stand for: package modules, figure functions, instances of package classes, and
    variables that hold a figure."""

    modules: dict[str, str] = field(default_factory=dict)  # alias -> module ("plots"; "" for the package itself)
    functions: dict[str, str] = field(default_factory=dict)  # local name -> "module.name"
    classes: dict[str, str] = field(default_factory=dict)  # local name -> "module.Class"
    instances: dict[str, str] = field(default_factory=dict)  # variable -> "module.Class"
    figures: dict[str, str] = field(default_factory=dict)  # variable -> how it was drawn
    shown: set[str] = field(default_factory=set)  # figure variables displayed somewhere

    def learn(self, tree: ast.Module) -> None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                        mod = alias.name.removeprefix(PACKAGE).lstrip(".")
                        self.modules[alias.asname or alias.name.split(".")[0]] = mod if alias.asname else ""
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == PACKAGE:
                mod = node.module.removeprefix(PACKAGE).lstrip(".")
                for alias in node.names:
                    local = alias.asname or alias.name
                    qualified = f"{mod}.{alias.name}" if mod else INIT_EXPORTS.get(alias.name, alias.name)
                    if qualified in FUNCTIONS:
                        self.functions[local] = qualified
                    elif any(m.startswith(qualified + ".") for m in METHODS):
                        self.classes[local] = qualified
                    elif is_module(qualified):
                        self.modules[local] = qualified  # `from badnets_utils.course import plots`
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                cls = self.dotted(node.value.func)
                cls = self.classes.get(cls, cls)
                for t in node.targets:
                    if isinstance(t, ast.Name) and any(m.startswith(f"{cls}.") for m in METHODS):
                        self.instances[t.id] = cls

    def dotted(self, node: ast.expr) -> str:
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        return ".".join([node.id, *reversed(parts)]) if isinstance(node, ast.Name) else ""

    def figure_call(self, node: ast.AST) -> str | None:
        """``plots.image_grid`` (as written) when ``node`` calls a package function or method that returns a Figure."""
        if not isinstance(node, ast.Call):
            return None
        written = self.dotted(node.func)
        head, _, rest = written.partition(".")
        if written in self.functions:
            return written
        if head in self.modules:
            mod = ".".join(p for p in (self.modules[head], rest) if p)
            return written if mod in FUNCTIONS else None
        if head in self.instances and f"{self.instances[head]}.{rest}" in METHODS:
            return written
        return None


def _is_display(node: ast.AST) -> bool:
    f = node.func if isinstance(node, ast.Call) else None
    return (isinstance(f, ast.Name) and f.id == "display") or (isinstance(f, ast.Attribute) and f.attr == "display")


def _title(call: ast.Call) -> str:
    for kw in call.keywords:
        if kw.arg == "title" and isinstance(kw.value, ast.Constant):
            return f' titled "{kw.value.value}"'
    return ""


@dataclass
class Drawn:
    """What a code cell shows: the fewest and the most figures any path through it shows (branches differ), and
    the figures it draws without showing them."""

    least: int = 0
    most: int = 0
    lost: list[str] = field(default_factory=list)


def drawn(tree: ast.Module, names: Names, last_shown: bool) -> Drawn:
    """Figures ``tree`` shows. An if/else or try/except counts each alternative, a loop body once; calls inside
    function definitions are not run by the cell."""
    result = Drawn()
    last = tree.body[-1] if tree.body else None

    def shown_in(value: ast.expr) -> int:
        """Figures that an expression passes to display(): a figure call or a variable holding one."""
        count = 0
        for node in ast.walk(value):
            for arg in node.args if _is_display(node) else []:
                if isinstance(arg, ast.Name) and arg.id in names.figures:
                    names.shown.add(arg.id)
                    count += 1
                elif names.figure_call(arg):
                    count += 1
        return count

    def walk(body: list[ast.stmt]) -> tuple[int, int]:
        least = most = 0
        for stmt in body:
            if isinstance(stmt, ast.If):
                paths = [walk(stmt.body), walk(stmt.orelse)]
            elif isinstance(stmt, ast.Try):
                fin_lo, fin_hi = walk(stmt.finalbody)
                alternatives = [walk(stmt.body + stmt.orelse), *(walk(h.body) for h in stmt.handlers)]
                paths = [(lo + fin_lo, hi + fin_hi) for lo, hi in alternatives]
            elif isinstance(stmt, (ast.For, ast.While, ast.With)):
                paths = [walk(stmt.body + getattr(stmt, "orelse", []))]
            elif isinstance(stmt, ast.Assign) and (what := names.figure_call(stmt.value)):
                names.figures.update({t.id: f"`{what}(...)`{_title(stmt.value)}" for t in stmt.targets
                                      if isinstance(t, ast.Name)})  # fmt: skip
                continue
            elif isinstance(stmt, ast.Expr):
                value = stmt.value
                what = names.figure_call(value)
                held = isinstance(value, ast.Name) and value.id in names.figures
                if stmt is last and last_shown and (what or held):  # the cell's last expression: Jupyter shows it
                    names.shown.update([value.id] if held else [])
                    paths = [(1, 1)]
                elif what:
                    result.lost.append(
                        f"`{what}(...)`{_title(value)} (line {stmt.lineno}) is drawn but never shown: it is not the "
                        f"cell's last expression and not passed to display()"
                    )
                    continue
                else:
                    paths = [(shown_in(value),) * 2]
            else:  # other statements (and function definitions, not run here) show nothing
                continue
            least += min(lo for lo, _ in paths)
            most += max(hi for _, hi in paths)
        return least, most

    result.least, result.most = walk(tree.body)
    return result


def ends_with_semicolon(code: str) -> bool:
    """IPython shows a cell's last expression unless the cell's last token is ``;``."""
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.ENDMARKER, tokenize.DEDENT, tokenize.INDENT}
    try:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(code).readline) if t.type not in skip]
    except (tokenize.TokenError, SyntaxError):
        return code.rstrip().endswith(";")
    return bool(tokens) and tokens[-1].string == ";"


# ---------------------------------------------------------------- the rules


def sections(cells: list[dict]) -> list[str]:
    """The heading each cell is under (the last heading of the cells up to and including it)."""
    current, out = "", []
    for cell in cells:
        if cell["cell_type"] == "markdown" and (found := HEADING.findall(prose(cell))):
            current = found[-1].strip()
        out.append(current)
    return out


def where(path: Path, index: int, cell: dict, section: str) -> str:
    first = next((line.strip() for line in source(cell).splitlines() if line.strip()), "")
    return f"{path.name}, cell {index} ({cell['cell_type']}, under '{section or 'the top'}', starting {first[:60]!r})"


def drawn_but_missing(path: Path, nb: dict) -> list[str]:
    """Rule 1: every figure a code cell draws is shown, and the committed outputs hold its image."""
    cells, problems, names = nb["cells"], [], Names()
    trees = {i: parse_code(source(c)) for i, c in enumerate(cells) if c["cell_type"] == "code"}
    for tree in trees.values():
        names.learn(tree)
    heads = sections(cells)
    for i, tree in trees.items():
        cell, section = cells[i], heads[i]
        d = drawn(tree, names, last_shown=not ends_with_semicolon(source(cell)))
        problems += [f"{where(path, i, cell, section)}: {lost}" for lost in d.lost]
        images = image_outputs(cell)
        if images < d.least or (images < d.most and not cell.get("outputs")):
            problems.append(
                f"{where(path, i, cell, section)}: the code shows {d.least if images < d.least else d.most} "
                f"figure(s) but the committed outputs hold {images} image(s)"
                + ("" if cell.get("outputs") else " and no other output either")
                + " (re-run the notebook and save it with its outputs)"
            )
    for var, what in names.figures.items():
        if var not in names.shown:
            problems.append(
                f"{path.name}: {what}, assigned to `{var}`, is never shown (display({var}) or `{var}` last)"
            )
    return problems


def promised_but_missing(path: Path, nb: dict) -> list[str]:
    """Rule 2: a markdown cell that points at a figure has one beside it."""
    cells, problems = nb["cells"], []
    heads = sections(cells)
    for i, cell in enumerate(cells):
        text = prose(cell)
        pointers = list(POINTERS.finditer(text)) if cell["cell_type"] == "markdown" else []
        if not pointers or shows_image(cell):
            continue
        start, end = pointers[0].start(), pointers[-1].end()
        own_heading = HEADING.findall(text, 0, start)  # the pointer opens a section: only what follows counts
        section = own_heading[-1].strip() if own_heading else (heads[i - 1] if i else "")
        if LOOKING_BACK.search(section):
            if any(shows_image(c) for c in cells[:i]):
                continue
            nearby = "anywhere above it"
        else:
            before = []
            for j in range(i - 1, -1, -1):
                if own_heading or cells[j]["cell_type"] != "code":
                    break
                before.append(j)
            after = []
            for j in range(i + 1, len(cells)):
                if HEADING.search(text, end) or (
                    cells[j]["cell_type"] == "markdown" and HEADING.search(prose(cells[j]))
                ):
                    break
                after.append(j)
            if any(shows_image(cells[j]) for j in before + after):
                continue
            nearby = (
                f"in the code cells just before it ({', '.join(map(str, sorted(before))) or 'none'}), nor after "
                f"it before the next heading ({', '.join(map(str, after)) or 'none'})"
            )
        said = ", ".join(dict.fromkeys(repr(" ".join(m.group(0).split())) for m in pointers))
        problems.append(f"{where(path, i, cell, section)} says {said}, but there is no image {nearby}")
    return problems


@pytest.fixture(params=NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def notebook(request):
    return request.param, json.loads(request.param.read_text(encoding="utf-8"))


def test_every_figure_drawn_is_shown_in_the_committed_outputs(notebook):
    problems = drawn_but_missing(*notebook)
    assert not problems, "figures missing from the committed outputs:\n" + "\n".join(problems)


def test_every_figure_the_prose_points_at_is_there(notebook):
    problems = promised_but_missing(*notebook)
    assert not problems, "the text points at a figure that is not there:\n" + "\n".join(problems)


def _code(text: str, images: int = 0, other: bool = False) -> dict:
    outputs = [{"output_type": "display_data", "data": {"image/png": "", "text/plain": ""}}] * images
    return {"cell_type": "code", "source": text, "outputs": outputs + [{"output_type": "stream", "text": "x"}] * other}


def _md(text: str) -> dict:
    return {"cell_type": "markdown", "source": text}


IMPORTS = _code("from badnets_utils.course import plots")


@pytest.mark.parametrize(
    ("cells", "ok"),
    [
        ([IMPORTS, _code("plots.threat_model()", 1)], True),
        ([IMPORTS, _code("plots.threat_model()\nassert True", 1)], False),  # not the last expression
        ([IMPORTS, _code("plots.threat_model();", 1)], False),  # suppressed
        ([IMPORTS, _code("plots.threat_model()")], False),  # no image committed
        ([IMPORTS, _code("fig = plots.threat_model()"), _code("display(fig)", 1)], True),
        ([IMPORTS, _code("fig = plots.threat_model()"), _code("print(1)")], False),  # never shown
        ([IMPORTS, _code("for i in range(2):\n    display(plots.threat_model())")], False),
        ([IMPORTS, _code("if x:\n    display(plots.threat_model())\nelse:\n    print('skipped')", 0, True)], True),
        ([IMPORTS, _code("if x:\n    display(plots.threat_model())\nelse:\n    print('skipped')")], False),
    ],
)
def test_rule_1_on_small_notebooks(cells, ok):
    assert (not drawn_but_missing(Path("x.ipynb"), {"cells": cells})) == ok


@pytest.mark.parametrize(
    ("cells", "ok"),
    [
        ([_md("## A\nThe plot shows it."), _code("x", 1)], True),
        ([_code("x", 1), _code("y"), _md("Reading the chart: fine.")], True),
        ([_md("## A\nThe plot shows it."), _code("x"), _md("## B"), _code("y", 1)], False),
        ([_code("x", 1), _md("## B\nthe right panel")], False),  # a new section: only what follows counts
        ([_code("x", 1), _md("## Key takeaways\n* the dashed line")], True),
        ([_md("## Key takeaways\n* the dashed line")], False),
        ([_md("It is below 1 % here.")], True),
    ],
)
def test_rule_2_on_small_notebooks(cells, ok):
    assert (not promised_but_missing(Path("x.ipynb"), {"cells": cells})) == ok


def test_notebook_04_passes_with_its_plot_back():
    path = ROOT / "notebooks" / "04_asr_vs_poisoning_rate.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    at = next(i for i, c in enumerate(nb["cells"]) if "read off the plot" in source(c))
    nb["cells"].insert(at, _code("plots.asr_vs_rate(rates, asr, tca)", 1))
    assert not promised_but_missing(path, nb) and not drawn_but_missing(path, nb)
