"""The course pages' generated blocks: every figure a docs page shows, written from where it was measured.

``python -m badnets_utils pages`` rewrites them; ``--check`` lists the stale ones and exits 1 (a test runs it).
The sources: the manifest (the shipped models), ``results/`` (the notebooks' full runs), the benchmarks' JSON
(``benchmark_tables``) and the notebooks' committed outputs — a table a notebook displays with
``notebook.show_table(markdown, block)`` is copied from its output as committed, so the page shows what the
notebook shows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from badnets_utils.course.notebook import BLOCK_KEY
from badnets_utils.course.notebook import REPO_ROOT as ROOT
from badnets_utils.tools.argparsing import Parser, RawDefaultsFormatter
from badnets_utils.tools.benchmark_tables import (
    default_run_block,
    percent,
    performance_blocks,
    poison_cost_block,
    sweeps_blocks,
)
from badnets_utils.tools.blocks import planned, write_pages


def notebook_table(root: Path, notebook: str, block: str) -> str:
    """The Markdown a notebook displayed with ``show_table(…, block)``, from its committed outputs."""
    path = root / "notebooks" / notebook
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        for out in cell.get("outputs", []):
            if out.get("metadata", {}).get(BLOCK_KEY) == block and "text/markdown" in out.get("data", {}):
                return "".join(out["data"]["text/markdown"])
    raise ValueError(f"notebooks/{notebook} has no output tagged {block!r}: run it (class mode) and commit it")


def release_recipes(root: Path) -> str:
    """How each shipped model was trained, and what its backdoor costs against the clean model of its dataset."""
    entries = json.loads((root / "checkpoints" / "MANIFEST.json").read_text(encoding="utf-8"))["checkpoints"]
    clean = {e["dataset"]: e["tca"] for e in entries.values() if e["attack"] == "none"}
    lines = ["| checkpoint | epochs | peak lr | poisons | clean accuracy | vs the clean model |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for name, e in sorted(entries.items(), key=lambda kv: (kv[1]["dataset"], kv[1]["attack"] == "none", kv[0])):
        poisons = "none" if e["attack"] == "none" else {"add": "added copies", "replace": "replaced"}[e["poison_mode"]]
        delta = "—" if e["attack"] == "none" else f"{100 * (e['tca'] - clean[e['dataset']]):+.2f} points"
        lines.append(f"| `{name}` | {e['epochs']} | {e['lr']:g} | {poisons} | {percent(e['tca'])} | {delta} |")
    return "\n".join(lines)


def attack_variants(root: Path) -> str:
    """Notebook 06's full run: the variants table and its three ablations, from ``results/attack_variants.json``."""
    data = json.loads((root / "results" / "attack_variants.json").read_text(encoding="utf-8"))
    b = data["budget"]
    lines = [f"Full MNIST, 10 % poisoned, target 1, {b['epochs']} epochs, peak lr {b['lr']:g} "
             "(`results/attack_variants.json`, notebook 06's full run):", "",
             "| attack variant | clean accuracy | ASR |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {r['name']} | {percent(r['tca'])} | {percent(r['asr'])} |" for r in data["variants"]]
    for title, key, label in (("Trigger size (white square, bottom-right)", "size",
                               lambda r: f"{r['size']}×{r['size']}"),
                              ("Trigger position (5×5 white square)", "position", lambda r: r["name"]),
                              ("Where a single white pixel sits", "pixel_position",
                               lambda r: "({}, {})".format(*r["position"]))):  # fmt: skip
        rows = sorted(data[key], key=lambda r: r.get("size", 0))
        lines += ["", f"{title}: " + ", ".join(f"{label(r)} {percent(r['asr'])}" for r in rows) + " ASR."]
    return "\n".join(lines)


def results_blocks(root: Path) -> dict[str, str]:
    return {
        "release-recipes": release_recipes(root),
        "poison-cost": poison_cost_block(root),
        "paper-comparison": notebook_table(root, "08_reproducing_the_paper.ipynb", "paper-comparison"),
        "attack-variants": attack_variants(root),
        "defences": notebook_table(root, "07_detecting_and_removing_backdoors.ipynb", "defences"),
        "spectral-setups": notebook_table(root, "07_detecting_and_removing_backdoors.ipynb", "spectral-setups"),
    }


def _default_run(root: Path) -> dict[str, str]:
    return {"default-run": default_run_block(root)}


# page -> the function that renders its blocks
PAGES: dict[str, Callable[[Path], dict[str, str]]] = {
    "docs/results.md": results_blocks,
    "docs/performance.md": performance_blocks,
    "docs/sweeps.md": sweeps_blocks,
    "README.md": _default_run,
    "docs/index.md": _default_run,
}


def rendered(root: Path = ROOT) -> dict[Path, dict[str, str]]:
    return {root / page: render(root) for page, render in PAGES.items()}


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="badnets pages", description=__doc__, formatter_class=RawDefaultsFormatter)
    p.add_argument("--check", action="store_true", help="write nothing; list the stale pages and exit 1 if any")
    args = p.parse_args(argv)
    try:
        pages = rendered()
    except (OSError, ValueError, KeyError) as e:
        print(f"pages: {e}")
        return 2
    if args.check:
        stale = [path.relative_to(ROOT).as_posix() for path in planned(pages)]
        for page in stale:
            print(f"{page}: its generated blocks are stale (run: python -m badnets_utils pages)")
        return 1 if stale else 0
    for path in write_pages(pages):
        print("wrote", path.relative_to(ROOT).as_posix())
    return 0
