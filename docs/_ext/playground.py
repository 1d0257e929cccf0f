"""The Playground page's build step (a Sphinx extension, listed in docs/conf.py): models, runtime, data, presets.

On ``builder-inited`` (HTML builds only):

* the three shipped MNIST models (``MODELS``) are exported to ONNX with ``python -m badnets_utils export-onnx``'s
  function (``badnets_utils.tools.onnx_export``), into a cache in the doctrees folder keyed by each checkpoint's
  SHA-256 and the exporter's versions, so that a rebuild exports nothing that has not changed;
* the page's configuration is made: each model file's SHA-256 (the page checks it with Web Crypto before it uses
  the file), the trigger presets drawn by the package's own functions (``presets``), the digits' labels
  (``docs/playground/digits.json``) and the runtime's version.

On ``source-read`` the configuration replaces ``CONFIG_TOKEN`` in docs/playground.md (the page is read again at
every build). On ``build-finished`` the models, onnxruntime-web's WebAssembly build (``RUNTIME``, from
``node_modules/``, installed by ``npm ci`` from the repository's package-lock.json), the page's script and style and
the digits' image go to ``_playground/`` of the built site; the page's script loads the runtime (no other page
does). Nothing of this is committed but the sources in ``docs/playground/``.

When something is missing (``npm ci`` not run, the ``docs`` extra not installed, no checkpoints), the page says so
instead of running; in CI (``CI=true``) the build fails: a warning, which ``-W`` makes an error, and exit status 1.

``python docs/_ext/playground.py digits`` writes docs/playground/digits.png and digits.json again from real MNIST
(``$BADNETS_DATA``): the 1,000 test images "Measure it" uses, then a few of every class to pick from.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "docs" / "playground"  # committed: playground.js, playground.css, digits.png, digits.json
OUT = "_playground"  # the folder of the built site that holds what the page loads
DOCNAME = "playground"
CONFIG_TOKEN = "@PLAYGROUND_CONFIG@"
# what the page shows, by id: the shipped checkpoint, and how the page names it
MODELS = {
    "clean": ("clean-MNIST.pth", "Clean model"),
    "badnet": ("badnet-MNIST.pth", "BadNet (all-to-one)"),
    "all2all": ("badnet-MNIST-all2all.pth", "BadNet (all-to-all)"),
}
NPM_PACKAGE = "onnxruntime-web"
RUNTIME_DIST = ROOT / "node_modules" / NPM_PACKAGE / "dist"
# the wasm-only build: the script, the module it imports, and its one WebAssembly binary (SIMD; threads unused)
RUNTIME = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
PAGE_FILES = ("playground.js", "playground.css", "digits.png")
SHEET_COLUMNS = 40  # digits.png: 28×28 cells, row after row
MEASURE_COUNT = 1000  # "Measure it": the first test images whose label is not the target
PICK_PER_CLASS = 4  # the digits to pick from: the first few of each class
BLEND_ALPHA = 0.2  # the blended-noise variant's alpha in notebook 06 ("blended noise α=0.2")


# ----------------------------------------------------------------------------- what the page is given


def presets(root: Path = ROOT) -> list[dict]:
    """The trigger presets, each drawn by the package exactly as the notebooks draw it: a uint8 patch, its top-left
    (row, col) on a 28×28 digit and its alpha, as ``apply_trigger(images, trigger, position, alpha)`` takes them."""
    from badnets_utils import load_trigger, make_trigger
    from badnets_utils.core.triggers import trigger_position
    from badnets_utils.studies.paper import PATTERN, PIXEL
    from badnets_utils.studies.variants import blend_pattern

    entry = _manifest(root)["checkpoints"][MODELS["badnet"][0]]
    square = load_trigger(root / entry["trigger"], entry["trigger_size"])
    chosen = [
        ("square", f"{entry['trigger_size']}×{entry['trigger_size']} white square", square, "bottom-right", 1.0,
         "the BadNets' own trigger (checkpoints/MANIFEST.json)", "03"),
        ("pattern", "3×3 pattern", make_trigger(PATTERN.trigger, PATTERN.trigger_size), PATTERN.position, 1.0,
         "the paper's pattern (paper.PATTERN)", "08"),
        ("pixel-corner", "pixel at (27, 27)", load_trigger(root / "triggers" / "trigger_pixel.png", 1),
         "bottom-right", 1.0, "triggers/trigger_pixel.png, one pixel in the very corner", "06"),
        ("pixel-24", "pixel at (24, 24)", make_trigger(PIXEL.trigger, PIXEL.trigger_size), PIXEL.position, 1.0,
         "the paper's single pixel (paper.PIXEL)", "08"),
        ("noise", "blended noise", blend_pattern("noise", (1, 28, 28), seed=0), "top-left", BLEND_ALPHA,
         "notebook 06's blended noise (variants.blend_pattern)", "06"),
        ("l-shape", "5×5 L shape", load_trigger(root / "triggers" / "trigger_l_shape.png", 5), "bottom-right", 1.0,
         "triggers/trigger_l_shape.png", "06"),
    ]  # fmt: skip
    out = []
    for key, name, trigger, position, alpha, source, notebook in chosen:
        h, w = trigger.shape[-2:]
        row, col = trigger_position((28, 28), (h, w), position)
        out.append({"id": key, "name": name, "pixels": trigger[0].tolist(), "position": [row, col], "alpha": alpha,
                    "source": source, "notebook": notebook})  # fmt: skip
    return out


def _manifest(root: Path) -> dict:
    return json.loads((root / "checkpoints" / "MANIFEST.json").read_text(encoding="utf-8"))


def digit_sheet(test, target: int) -> tuple:
    """(pixels, meta) of digits.png: uint8 (rows·28, ``SHEET_COLUMNS``·28) and what each cell is.

    Cells 0.. hold the first ``MEASURE_COUNT`` test images whose label is not ``target`` (in test-set order), then
    the first ``PICK_PER_CLASS`` test images of each class, class after class.
    """
    import torch

    labels = test.labels
    measure = torch.nonzero(labels != target).flatten()[:MEASURE_COUNT]
    pick = torch.cat([torch.nonzero(labels == k).flatten()[:PICK_PER_CLASS] for k in range(10)])
    order = torch.cat([measure, pick])
    rows = -(-len(order) // SHEET_COLUMNS)
    cells = torch.zeros(rows * SHEET_COLUMNS, 28, 28, dtype=torch.uint8)
    cells[: len(order)] = test.images[order, 0]
    sheet = cells.view(rows, SHEET_COLUMNS, 28, 28).permute(0, 2, 1, 3).reshape(rows * 28, SHEET_COLUMNS * 28)
    meta = {
        "columns": SHEET_COLUMNS,
        "target": target,
        "source": "MNIST test set",
        "measure": {"first": 0, "indices": measure.tolist(), "labels": labels[measure].tolist()},
        "pick": {"first": len(measure), "indices": pick.tolist(), "labels": labels[pick].tolist()},
    }
    return sheet.numpy(), meta


def write_digits(root: Path = ROOT, data_root: str | None = None) -> list[Path]:
    """Write docs/playground/digits.png and digits.json from real MNIST's test set."""
    from PIL import Image

    from badnets_utils import load_dataset
    from badnets_utils._io.files import atomic_write, atomic_write_text

    target = _manifest(root)["checkpoints"][MODELS["badnet"][0]]["trigger_label"]
    pixels, meta = digit_sheet(load_dataset("MNIST", train=False, root=data_root), target)
    folder = root / "docs" / "playground"
    png = atomic_write(folder / "digits.png", lambda f: Image.fromarray(pixels).save(f, "PNG", optimize=True))
    return [png, atomic_write_text(folder / "digits.json", json.dumps(meta, separators=(",", ":")) + "\n")]


# ----------------------------------------------------------------------------- the build


def _missing(root: Path) -> str | None:
    """Why the page cannot run in this build (None: it can)."""
    from badnets_utils.tools.onnx_export import missing_packages

    absent = [name for name in RUNTIME if not (RUNTIME_DIST / name).is_file()]
    if absent:
        return (f"{NPM_PACKAGE} is not installed (node_modules/{NPM_PACKAGE}/dist/{absent[0]} is missing): run "
                "`npm ci` in the repository root, which installs the version package-lock.json pins")  # fmt: skip
    packages = missing_packages()
    if packages:
        return f'{", ".join(packages)} missing: pip install -e ".[docs]"'
    gone = [name for name, _ in MODELS.values() if not (root / "checkpoints" / name).is_file()]
    if gone:
        return f"checkpoints/{gone[0]} is missing"
    return None


def _cache_key(checkpoint: Path) -> str:
    """What an exported file depends on: the checkpoint, the exporter's code, torch's and onnx's versions."""
    from badnets_utils._io.files import sha256_file
    from badnets_utils.tools import onnx_export

    parts = [sha256_file(checkpoint), sha256_file(onnx_export.__file__)]
    parts += [importlib.metadata.version(p) for p in ("torch", "onnx", "onnxscript")]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _export(root: Path, cache: Path) -> dict[str, Path]:
    """Each model's ONNX file, exported into ``cache`` unless an export of the same inputs is there."""
    from badnets_utils.tools.onnx_export import export_checkpoint

    cache.mkdir(parents=True, exist_ok=True)
    files = {}
    for key, (name, _) in MODELS.items():
        checkpoint = root / "checkpoints" / name
        path = cache / f"{Path(name).stem}-{_cache_key(checkpoint)}.onnx"
        if not path.is_file():
            for stale in cache.glob(f"{Path(name).stem}-*.onnx"):
                stale.unlink()
            export_checkpoint(checkpoint, path)
        files[key] = path
    return files


def page_config(root: Path, files: dict[str, Path]) -> dict:
    """What the page is given (inlined into it as JSON): models with their digests, presets, digits, runtime."""
    from badnets_utils._io.files import sha256_file

    manifest = _manifest(root)["checkpoints"]
    models = []
    for key, (name, title) in MODELS.items():
        entry, path = manifest[name], files[key]
        models.append({"id": key, "title": title, "checkpoint": name, "file": f"{OUT}/{Path(name).stem}.onnx",
                       "sha256": sha256_file(path), "bytes": path.stat().st_size, "attack": entry["attack"],
                       "target": entry["trigger_label"], "tca": entry["tca"], "asr": entry["asr"]})  # fmt: skip
    version = json.loads((RUNTIME_DIST.parent / "package.json").read_text(encoding="utf-8"))["version"]
    digits = json.loads((SOURCES / "digits.json").read_text(encoding="utf-8"))
    return {
        "models": models,
        "presets": presets(root),
        "digits": {**digits, "image": f"{OUT}/digits.png"},
        "runtime": {"name": NPM_PACKAGE, "version": version, "path": f"{OUT}/", "script": RUNTIME[0]},
        "input": "uint8 pixels 0..255",
    }


def _problem(app, message: str) -> None:
    """A missing piece: the page says it; in CI the build fails."""
    from sphinx.util import logging

    app.env.playground_problem = message  # type: ignore[attr-defined]
    text = f"the Playground page cannot run: {message}"
    if os.environ.get("CI") == "true":
        logging.getLogger(__name__).warning(text, type="playground")
    else:
        logging.getLogger(__name__).info(f"note: {text} (the page says so; in CI this fails the build)")


def prepare(app) -> None:
    """builder-inited: export the models (or reuse the cache) and make the page's configuration."""
    app.playground = {"config": None, "files": {}}  # type: ignore[attr-defined]
    if app.builder.format != "html" or not (Path(app.srcdir) / f"{DOCNAME}.md").is_file():
        app.playground = None  # type: ignore[attr-defined]  # not an HTML build, or a docs tree without the page
        return
    root = ROOT
    reason = _missing(root)
    if reason is None:
        try:
            files = _export(root, Path(app.doctreedir) / "playground-models")
        except (ValueError, OSError) as err:
            reason = f"exporting the models failed: {err}"
    if reason is not None:
        app.playground["config"] = {"unavailable": reason}
        _problem(app, reason)
        return
    app.playground["files"] = files
    app.playground["config"] = page_config(root, files)


def fill_config(app, docname: str, source: list[str]) -> None:
    """source-read: the configuration, as JSON that cannot end the page's <script> element early."""
    if docname != DOCNAME or CONFIG_TOKEN not in source[0]:
        return
    config = (getattr(app, "playground", None) or {}).get("config") or {"unavailable": "this is not an HTML build"}
    text = json.dumps(config, separators=(",", ":")).replace("<", "\\u003c")
    source[0] = source[0].replace(CONFIG_TOKEN, text)


def always_read(app, env, added, changed, removed) -> list[str]:
    """env-get-outdated: the page holds the build's digests, so it is read at every build."""
    return [DOCNAME] if DOCNAME in env.found_docs else []


def copy_files(app, exception) -> None:
    """build-finished: the models, the runtime and the page's files into ``_playground/`` of the built site."""
    state = getattr(app, "playground", None)
    if exception is not None or state is None or app.builder.format != "html":
        return
    out = Path(app.outdir) / OUT
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in PAGE_FILES:
        shutil.copyfile(SOURCES / name, out / name)
    if not state["files"]:
        if os.environ.get("CI") == "true":
            app.statuscode = 1
        return
    for key, path in state["files"].items():
        shutil.copyfile(path, out / f"{Path(MODELS[key][0]).stem}.onnx")
    for name in RUNTIME:
        shutil.copyfile(RUNTIME_DIST / name, out / name)


def setup(app):
    app.connect("builder-inited", prepare)
    app.connect("source-read", fill_config)
    app.connect("env-get-outdated", always_read)
    app.connect("build-finished", copy_files)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":  # python docs/_ext/playground.py digits
    if sys.argv[1:] != ["digits"]:
        sys.exit("usage: python docs/_ext/playground.py digits   (writes docs/playground/digits.png and digits.json)")
    sys.path.insert(0, str(ROOT))
    for written in write_digits():
        print("wrote", written.relative_to(ROOT).as_posix())
