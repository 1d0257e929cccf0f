"""Measure how long every notebook takes to run, and render the times where the docs show them.

    python benchmarks/notebook_times.py                         # class and quick mode, every notebook
    python benchmarks/notebook_times.py --modes retrain --notebooks 03 04   # full retrain: slow
    python benchmarks/notebook_times.py --render-only           # only re-render from notebook_times.json
    python benchmarks/notebook_times.py --modes class --write-outputs   # also commit the class-mode outputs

Each notebook runs top to bottom with nbclient (kernel python3, working directory notebooks/; the files are not
modified), timed from kernel start to the last cell, in up to three modes:

* ``class``: no BADNETS_* switch set, i.e. the notebooks' defaults (shipped results where training is long);
* ``quick``: ``BADNETS_QUICK=1`` (small data, few epochs: what the tests run);
* ``retrain``: ``BADNETS_RETRAIN=1`` (train everything from scratch; very slow, so not in the default modes).

The results go to benchmarks/notebook_times.json (merged with earlier ones, written atomically) and are rendered
(``badnets_utils.tools.blocks``) as a table between ``<!-- notebook-times -->`` and ``<!-- /notebook-times -->`` in
README.md and docs/teaching.md, and as one line between ``<!-- time -->`` and ``<!-- /time -->`` in each notebook's
markdown. Files without the markers are left alone. ``check_times(root)`` lists the places whose text disagrees
with the JSON.

With ``--write-outputs`` (class mode only) each executed notebook is also written back as its committed output,
cleaned for reading (``clean_outputs``): no progress-bar widgets (each epoch prints a final text line anyway), no
widget state except that of the widgets still shown (the painter of notebook 05), no per-cell timing metadata,
execution counts kept, and the notebook metadata JupyterLab 4 writes itself (``repo.KERNELSPEC``,
``repo.LANGUAGE_INFO``), so that opening a notebook does not mark it modified.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from a checkout

from badnets_utils._io.files import atomic_write_text  # noqa: E402
from badnets_utils.tools import benchmark_tables, blocks  # noqa: E402
from badnets_utils.tools.github import KERNELSPEC, LANGUAGE_INFO, notebook_text  # noqa: E402

JSON_FILE = Path("benchmarks") / "notebook_times.json"
TABLE_FILES = (Path("README.md"), Path("docs") / "teaching.md")
MODES = {"class": {}, "quick": {"BADNETS_QUICK": "1"}, "retrain": {"BADNETS_RETRAIN": "1"}}
DEFAULT_MODES = ("class", "quick")
LABELS = {"class": "class mode", "quick": "quick mode", "retrain": "full retrain"}
SWITCHES = ("BADNETS_QUICK", "BADNETS_RETRAIN")
TABLE = "notebook-times"  # the generated block of the table (badnets_utils.tools.blocks)
NOTE = "time"  # the inline block of a notebook's header note


def machine() -> str:
    """A short description of this machine: CPU model, cores and GPU (as the benchmarks' results record it)."""
    return benchmark_tables.machine_text(benchmark_tables.this_machine())


@contextlib.contextmanager
def switches(mode: str) -> Iterator[None]:
    """Set exactly the environment of ``mode`` (the kernel inherits it), then restore the old one."""
    saved = {k: os.environ.get(k) for k in SWITCHES}
    for k in SWITCHES:
        os.environ.pop(k, None)
    os.environ.update(MODES[mode])
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PROGRESS = re.compile(r"\d+%\||it/s\]|s/it\]")  # a tqdm bar's text


def _is_progress(output: dict) -> bool:
    """A tqdm progress bar: a widget view (or a stderr stream) whose text is a bar."""
    text = output.get("text") or output.get("data", {}).get("text/plain", "")
    text = "".join(text) if isinstance(text, list) else text
    if WIDGET_VIEW in output.get("data", {}):
        return bool(PROGRESS.search(text)) or text.startswith("HBox(children=(HTML(value='")
    return output.get("output_type") == "stream" and output.get("name") == "stderr" and bool(PROGRESS.search(text))


def _referenced(state: dict, roots: set[str]) -> set[str]:
    """The widget models ``roots`` and every model they reference (children, layouts, styles…)."""
    seen, todo = set(), list(roots)
    while todo:
        model = todo.pop()
        if model in seen or model not in state:
            continue
        seen.add(model)
        todo += re.findall(r"IPY_MODEL_([0-9a-f]+)", json.dumps(state[model].get("state", {})))
    return seen


def clean_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` (modified in place) cleaned for committing: see the module's docstring."""
    kept_views = set()
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        cell.outputs = [o for o in cell.outputs if not _is_progress(o)]
        kept_views |= {o["data"][WIDGET_VIEW]["model_id"] for o in cell.outputs if WIDGET_VIEW in o.get("data", {})}
    widgets = nb.metadata.get("widgets", {}).get(WIDGET_STATE)
    if widgets and kept_views:
        state = widgets.get("state", {})
        keep = _referenced(state, kept_views)
        widgets["state"] = {k: v for k, v in state.items() if k in keep}
    else:
        nb.metadata.pop("widgets", None)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = dict(LANGUAGE_INFO)
    return nb


def run_notebook(path: Path, mode: str, timeout: int = 7200, write_outputs: bool = False) -> float:
    """Seconds to execute the notebook at ``path`` in ``mode`` (cwd: its folder); raises if a cell fails.

    ``write_outputs``: write the executed notebook back to ``path``, cleaned (``clean_outputs``).
    """
    from nbclient import NotebookClient

    from badnets_utils.tools.github import write_notebook

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
    )  # fmt: skip
    with switches(mode):
        start = time.perf_counter()
        client.execute()
        seconds = time.perf_counter() - start
    if write_outputs:
        write_notebook(path, clean_outputs(nb))
    return seconds


def select(root: Path, prefixes: list[str] | None) -> list[Path]:
    """The notebooks under notebooks/ whose names start with one of ``prefixes`` (all if None)."""
    paths = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    return [p for p in paths if not prefixes or any(p.name.startswith(x) for x in prefixes)]


def load(root: Path) -> dict:
    path = root / JSON_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"notebooks": {}}


def measure(root: Path, paths: list[Path], modes: list[str], write_outputs: bool = False) -> dict:
    """Run and time every notebook in every mode; merge into the JSON (written after each run) and return it.

    ``write_outputs``: the class-mode run of each notebook becomes its committed output.
    """
    data = load(root)
    here = {"machine": machine(), "date": datetime.date.today().isoformat()}
    for path in paths:
        for mode in modes:
            print(f"{path.name} [{mode}] ...", end=" ", flush=True)
            seconds = run_notebook(path, mode, write_outputs=write_outputs and mode == "class")
            print(f"{seconds:.1f} s", flush=True)
            data["notebooks"].setdefault(path.stem, {})[mode] = round(seconds, 1)
            data.setdefault("measured", {})[mode] = here
            atomic_write_text(root / JSON_FILE, json.dumps(data, indent=1, sort_keys=True) + "\n")
    return data


def duration(seconds: float | None) -> str:
    """12 s, 3 min 20 s, 25 min; an em dash when not measured."""
    if seconds is None:
        return "—"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 600:
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    return f"{round(s / 60)} min"


def title(stem: str) -> str:
    number, _, words = stem.partition("_")
    return f"{number} · {words.replace('_', ' ')}"


def render_table(data: dict) -> str:
    """The markdown table of every measured notebook and mode, with where it was measured."""
    rows = ["| Notebook | " + " | ".join(LABELS.values()) + " |", "|---|" + "---:|" * len(LABELS)]
    for stem, times in sorted(data["notebooks"].items()):
        rows.append(f"| {title(stem)} | " + " | ".join(duration(times.get(m)) for m in LABELS) + " |")
    rows += ["", f"Measured with `python benchmarks/notebook_times.py`: {where(data, with_dates=True)}. Class mode = "
             "the notebooks' defaults, quick mode = `BADNETS_QUICK=1`, full retrain = `BADNETS_RETRAIN=1`; kernel "
             "start included."]  # fmt: skip
    return "\n".join(rows)


def where(data: dict, with_dates: bool = False, modes=LABELS) -> str:
    """Where (and when) each mode was measured: "class mode and quick mode on A (date); full retrain on B (date)"."""
    groups: dict[tuple, list[str]] = {}
    for mode, label in LABELS.items():
        if mode not in modes:
            continue
        at = data.get("measured", {}).get(mode)
        if at:
            groups.setdefault((at["machine"], at["date"] if with_dates else ""), []).append(label)
    return "; ".join(" and ".join(labels) + f" on {m}" + (f" ({d})" if d else "") for (m, d), labels in groups.items())


def render_note(data: dict, stem: str) -> str | None:
    """One line for a notebook's header, e.g. "class mode: 12 s · quick mode: 7 s"; None if not measured."""
    times = data["notebooks"].get(stem)
    if not times:
        return None
    parts = [f"{LABELS[m]}: {duration(times[m])}" for m in LABELS if m in times]
    return " · ".join(parts) + f" (measured: {where(data, modes=times)})"


def replace_note(text: str, note: str) -> str | None:
    """``text`` with its inline ``<!-- time -->…<!-- /time -->`` holding ``note``; None if it has no such block."""
    return None if blocks.read_block(text, NOTE) is None else blocks.replace_block(text, NOTE, note)


def planned(root: Path, data: dict, paths: list[Path] | None = None) -> dict[Path, str]:
    """Every file whose rendered text differs from what it holds now, with the new text."""
    table = render_table(data)
    pages = {}
    for rel in TABLE_FILES:
        path = root / rel
        if path.is_file() and blocks.read_block(path.read_text(encoding="utf-8"), TABLE) is not None:
            pages[path] = {TABLE: table}
    out = blocks.planned(pages)
    for path in select(root, None) if paths is None else paths:
        note = render_note(data, path.stem)
        if note is None:
            continue
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                new = replace_note(cell.source, note)
                if new is not None:
                    cell.source = new
        text = notebook_text(nb)
        if text != path.read_text(encoding="utf-8"):
            out[path] = text
    return out


def render(root: Path, data: dict) -> list[Path]:
    """Write the tables and notebook notes (atomically, only files that change); return what was written."""
    plan = planned(root, data)
    for path, text in plan.items():
        atomic_write_text(path, text)
    return list(plan)


def check_times(root: str | Path = ROOT) -> list[str]:
    """The files whose rendered times disagree with benchmarks/notebook_times.json; empty when all agree."""
    root = Path(root)
    if not (root / JSON_FILE).is_file():
        return []
    return [f"{p.relative_to(root).as_posix()}: times differ from {JSON_FILE.as_posix()} (run --render-only)"
            for p in planned(root, load(root))]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--modes", nargs="+", choices=list(MODES), default=list(DEFAULT_MODES), help="modes to time")
    p.add_argument("--notebooks", nargs="+", metavar="NN", help="only these notebooks (name prefixes: 01 03)")
    p.add_argument("--render-only", action="store_true", help="do not run anything: render from the JSON")
    p.add_argument("--write-outputs", action="store_true",
                   help="write each class-mode run back into its notebook as its committed output")  # fmt: skip
    p.add_argument("--root", type=Path, default=ROOT, help="repository root (default: this checkout)")
    args = p.parse_args(argv)
    paths = select(args.root, args.notebooks)
    if not paths:
        p.exit(2, f"notebook_times: error: no notebook matches {args.notebooks}\n")
    if args.write_outputs and "class" not in args.modes:
        p.exit(2, "notebook_times: error: --write-outputs writes the class-mode run: add --modes class\n")
    data = load(args.root) if args.render_only else measure(args.root, paths, args.modes, args.write_outputs)
    written = render(args.root, data)
    print(
        "rendered into " + (", ".join(p.relative_to(args.root).as_posix() for p in written) or "nothing (up to date)")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
