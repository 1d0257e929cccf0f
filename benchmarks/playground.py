"""The Playground page in headless Chromium: load → first prediction, one prediction, "Measure it", page weight.

    python benchmarks/playground.py [--site DIR] [--repeats N] [--predictions N]

Without ``--site`` the site is built first with the README's command (into build/site). The site is served on
127.0.0.1 by Python's static server, as ``python -m http.server`` serves it (no compression, no cache headers), and
opened in Debian's Chromium (headless, through playwright). Measured, as the page itself times them:

* load → first prediction: from navigation to the first answers shown (the runtime loaded, the three models
  downloaded, checked against their SHA-256 and loaded, the digits decoded), in a fresh browser context each time
  (nothing cached); the median of ``--repeats`` loads;
* one prediction: the three models on one digit after the trigger moves one pixel (stamping, inference, drawing the
  bars); the median of ``--predictions``;
* "Measure it": the three models on the 1,000 digits it uses; the median of ``--repeats``;
* page weight: every byte of every response the page loads, as served, and gzipped (level 6, what a compressing web
  server sends), in total and for the WebAssembly runtime and the models.

Records the figures in benchmarks/results/playground.json (replacing the run recorded there) and writes the table
into docs/performance.md's ``bench-playground`` block (``render`` makes it from the results file).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gzip
import http.server
import json
import re
import statistics
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from badnets_utils.tools.benchmark_tables import caption, newest, record, runs, table  # noqa: E402
from badnets_utils.tools.blocks import write_pages  # noqa: E402

SCRIPT = "playground"
BLOCK = "bench-playground"
PAGE = ROOT / "docs" / "performance.md"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip
GZIP_LEVEL = 6


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def serve(site: Path):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def build_site() -> Path:
    """The site, built with the README's command (build/site)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = re.search(r"^python -m sphinx .+ docs build/site$", readme, re.M).group(0).split()
    subprocess.run([sys.executable, *command[1:]], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return ROOT / "build" / "site"


def load(browser, base: str) -> tuple:
    """A fresh context, the page loaded to its first prediction: (context, page, seconds, served paths)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors, paths = [], []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: paths.append(urlparse(r.url).path))
    page.goto(f"{base}/playground.html", wait_until="load")
    page.wait_for_function("() => window.badnetsPlayground && window.badnetsPlayground.ready")
    page.evaluate("() => window.badnetsPlayground.ready.then(() => true)")
    page.wait_for_load_state("networkidle")
    errors += page.evaluate("() => window.badnetsPlayground.problems")
    if errors:
        raise SystemExit(f"the page reported problems: {errors}")
    mark = page.evaluate("() => performance.getEntriesByName('playground-first-prediction')[0].startTime")
    return context, page, mark / 1000, paths


def weight(site: Path, paths: list[str]) -> dict:
    """Bytes of every file the page loaded, as served and gzipped, in total and by kind."""
    out = {"files": 0}
    for kind in ("page", "wasm", "models"):
        out[f"{kind}_bytes"] = out[f"{kind}_gzip_bytes"] = 0
    for path in sorted(set(paths)):
        file = site / path.lstrip("/")
        if not file.is_file():
            continue
        data = file.read_bytes()
        packed = len(gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0))
        out["files"] += 1
        for kind, wanted in (("page", True), ("wasm", file.suffix == ".wasm"), ("models", file.suffix == ".onnx")):
            if wanted:
                out[f"{kind}_bytes"] += len(data)
                out[f"{kind}_gzip_bytes"] += packed
    return out


def measure(site: Path, repeats: int, predictions: int) -> dict:
    from playwright.sync_api import sync_playwright

    with serve(site) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        firsts, measures, served = [], [], []
        for i in range(repeats):
            context, page, first, paths = load(browser, base)
            firsts.append(first)
            served = served or paths
            if i == 0:
                config = json.loads(page.locator("#playground-config").text_content())
                singles = []
                page.focus("[data-control=image]")
                for k in range(predictions):
                    page.keyboard.press("ArrowLeft" if k % 2 else "ArrowRight")
                    page.evaluate("() => window.badnetsPlayground.settled().then(() => true)")
                    singles.append(page.evaluate("() => window.badnetsPlayground.timings.lastPredictionMs"))
            page.click("[data-control=measure]")
            page.wait_for_function("() => (window.badnetsPlayground.measureCount || 0) > 0", timeout=120_000)
            measures.append(page.evaluate("() => window.badnetsPlayground.timings.lastMeasureMs") / 1000)
            context.close()
        version = browser.version
        browser.close()
    return {
        "first_prediction_s": round(statistics.median(firsts), 3),
        "first_prediction_runs_s": [round(x, 3) for x in firsts],
        "prediction_ms": round(statistics.median(singles), 2), "predictions": predictions,
        "measure_s": round(statistics.median(measures), 3), "measure_runs_s": [round(x, 3) for x in measures],
        "measure_digits": len(config["digits"]["measure"]["indices"]), "repeats": repeats,
        "models": len(config["models"]), "runtime": f"{config['runtime']['name']} {config['runtime']['version']}",
        "chromium": version, **weight(site, served),
    }  # fmt: skip


def megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def playground_table(run: dict) -> str:
    f = run["figures"]
    rest = f["page_bytes"] - f["wasm_bytes"] - f["models_bytes"]
    rest_gzip = f["page_gzip_bytes"] - f["wasm_gzip_bytes"] - f["models_gzip_bytes"]
    return table([
        (f"page load → first prediction: the runtime, {f['models']} models downloaded, checked (SHA-256) and loaded, "
         f"the digits decoded; fresh browser context, median of {f['repeats']} loads",
         f"**{f['first_prediction_s']:.2f} s**"),
        (f"one prediction: {f['models']} models on one digit after the trigger moves, bars drawn; median of "
         f"{f['predictions']}", f"{f['prediction_ms']:.1f} ms"),
        (f"*Measure it*: {f['models']} models on {f['measure_digits']:,} digits; median of {f['repeats']}",
         f"**{f['measure_s']:.2f} s**"),
        (f"page weight as served ({f['files']} files, no compression)",
         f"**{megabytes(f['page_bytes'])}**: WebAssembly runtime {megabytes(f['wasm_bytes'])}, models "
         f"{megabytes(f['models_bytes'])}, the rest {megabytes(rest)}"),
        (f"page weight gzipped (level {GZIP_LEVEL})",
         f"**{megabytes(f['page_gzip_bytes'])}**: WebAssembly runtime {megabytes(f['wasm_gzip_bytes'])}, models "
         f"{megabytes(f['models_gzip_bytes'])}, the rest {megabytes(rest_gzip)}"),
    ])  # fmt: skip


def render(root: Path = ROOT) -> str:
    """docs/performance.md's ``bench-playground`` block, from benchmarks/results/playground.json."""
    run = newest(runs(root, SCRIPT))
    f = run["figures"]
    detail = f"headless Chromium {f['chromium']}, {f['runtime']} on WebAssembly, one thread"
    return f"{playground_table(run)}\n\n{caption([run], detail)}"


def without_site(argv: list[str]) -> list[str]:
    """``argv`` without ``--site DIR`` / ``--site=DIR``."""
    kept, args = [], iter(argv)
    for arg in args:
        if arg == "--site":
            next(args, None)
        elif not arg.startswith("--site="):
            kept.append(arg)
    return kept


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--site", type=Path, default=None, help="a built site (default: build it into build/site)")
    p.add_argument("--repeats", type=int, default=5, help="page loads and measurements")
    p.add_argument("--predictions", type=int, default=40, help="single predictions timed")
    args = p.parse_args(argv)
    site = args.site or build_site()
    figures = measure(site, args.repeats, args.predictions)
    print(json.dumps(figures, indent=1))
    path = record(ROOT, SCRIPT, without_site(argv), figures)  # where the site lies is not part of the measurement
    print(f"recorded in {path.relative_to(ROOT).as_posix()}")
    for written in write_pages({PAGE: {BLOCK: render(ROOT)}}):
        print(f"wrote {written.relative_to(ROOT).as_posix()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
