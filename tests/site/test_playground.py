"""The Playground page (docs/playground.md): the shipped models in headless Chromium, checked against PyTorch.

The site is the session's build (``site_build.py``, shared with test_site.py), served on 127.0.0.1. The page must
load with no console error and no request leaving 127.0.0.1; for every digit it offers, clean and with the white
square, the probabilities it shows are PyTorch's for the very pixels it stamped (and those pixels are
``apply_trigger``'s); the BadNet flips to its target on triggered digits, the clean model does not; a digit drawn
with the mouse is classified; "Measure it" counts what PyTorch counts on the same images and trigger; a model file
that does not match its recorded SHA-256 is refused where the student sees it; the keyboard reaches every control.
The build's own pieces (presets, digits, runtime files, the CI rule) are checked without a browser.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from servers import SCREENSHOTS
from site_build import ROOT, _page

from badnets_utils import (
    Attack,
    apply_trigger,
    attack_test_set,
    evaluate,
    load_checkpoint,
    load_dataset,
    load_trigger,
    make_trigger,
)

TOLERANCE = 1e-4
TARGET = 1
MODELS = {"clean": "clean-MNIST.pth", "badnet": "badnet-MNIST.pth", "all2all": "badnet-MNIST-all2all.pth"}
SQUARE = load_trigger(ROOT / "triggers" / "trigger_white.png", 5)
# the page's bars, model by model: the predicted class and the probability behind each bar (its full value)
READ_BARS = """() => Object.fromEntries([...document.querySelectorAll('.pg-model')].map(m => [m.dataset.model,
  {top: m.dataset.top === undefined ? null : Number(m.dataset.top),
   p: [...m.querySelectorAll('.pg-bar')].map(b => b.dataset.p === undefined ? null : Number(b.dataset.p))}]))"""
SETTLE = "() => window.badnetsPlayground.settled().then(() => true)"


def _load_module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXT = _load_module("playground_ext", ROOT / "docs" / "_ext" / "playground.py")


@pytest.fixture(scope="module")
def config(site) -> dict:
    """The configuration the build inlined into the page."""
    html = (site / "playground.html").read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" id="playground-config">(.*?)</script>', html, re.S)
    assert found, "the page holds no configuration"
    data = json.loads(found.group(1))
    assert "unavailable" not in data, data.get("unavailable")
    return data


@pytest.fixture(scope="module")
def mnist_test(mnist_root):
    return load_dataset("MNIST", train=False, root=mnist_root)


@pytest.fixture(scope="module")
def models() -> dict:
    return {key: load_checkpoint(ROOT / "checkpoints" / name, quiet=True)[0] for key, name in MODELS.items()}


@contextlib.contextmanager
def _playground(browser, server, width: int = 1280, height: int = 900):
    """The page, loaded and ready (models verified, first prediction shown); ``page.requests`` lists every URL."""
    with _page(browser, width, height) as page:
        page.requests = []
        page.on("request", lambda r: page.requests.append(r.url))
        page.goto(f"{server}/playground.html", wait_until="load")
        page.wait_for_function("() => window.badnetsPlayground && window.badnetsPlayground.ready")
        page.evaluate("() => window.badnetsPlayground.ready.then(() => true)")
        yield page


def _settle(page) -> None:
    page.evaluate(SETTLE)


def _pixels(page) -> torch.Tensor:
    return torch.tensor(page.evaluate("() => window.badnetsPlayground.pixels()"), dtype=torch.uint8).view(1, 1, 28, 28)


def _probabilities(models: dict, images: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return {key: model(images).softmax(1) for key, model in models.items()}


def _preset(config: dict, key: str) -> dict:
    return next(p for p in config["presets"] if p["id"] == key)


def test_page_loads_offline_verified_and_without_errors(server, browser, config):
    with _playground(browser, server) as page:
        page.wait_for_load_state("networkidle")
        status = page.locator(".pg-status").inner_text()
        assert status.startswith(f"Ready: {len(MODELS)} verified models"), status
        for key in MODELS:
            assert page.locator(f".pg-model[data-model={key}].pg-verified").count() == 1, key
            assert page.locator(f".pg-model[data-model={key}] .pg-check").inner_text().startswith("✓ verified")
        assert page.evaluate("() => window.badnetsPlayground.problems") == []
        weight = page.evaluate("() => window.badnetsPlayground.weight")
        assert weight["wasm"] > 0 and weight["models"] == sum(m["bytes"] for m in config["models"]), weight
        assert "downloaded" in page.locator(".pg-weight").inner_text()
        assert not page.problems, page.problems
        away = [u for u in page.requests if not u.startswith(server + "/") and not u.startswith(("data:", "blob:"))]
        assert not away, f"requests that leave 127.0.0.1: {away}"
        loaded = {u[len(server) + 1 :] for u in page.requests}
    assert {f"_playground/{name}" for name in EXT.RUNTIME} <= loaded
    assert {m["file"] for m in config["models"]} <= loaded


def test_shown_probabilities_are_pytorchs_and_the_backdoor_flips(server, browser, config, mnist_test, models):
    """Every digit the page offers, with the white square and without: the page's pixels are the test image (and
    ``apply_trigger``'s stamp of it), its probabilities PyTorch's for those pixels."""
    pick = config["digits"]["pick"]
    assert len(pick["indices"]) >= 20
    seen = []
    with _playground(browser, server) as page:
        page.click("[data-control=preset-square]")
        for i in range(len(pick["indices"])):
            page.click(f"[data-pick='{i}']")
            for on in (True, False):
                page.set_checked("[data-control=on]", on)
                _settle(page)
                seen.append((pick["indices"][i], on, _pixels(page), page.evaluate(READ_BARS)))
        assert not page.problems, page.problems
    images = torch.cat([pixels for _, _, pixels, _ in seen])
    for index, on, pixels, _ in seen:
        clean = mnist_test.images[index : index + 1]
        expected = apply_trigger(clean, SQUARE, "bottom-right") if on else clean
        assert torch.equal(pixels, expected), (index, on)
    expected = _probabilities(models, images)
    flips = 0
    for row, (index, on, _, bars) in enumerate(seen):
        label = int(mnist_test.labels[index])
        for key in MODELS:
            shown = torch.tensor(bars[key]["p"], dtype=torch.float32)
            difference = float((shown - expected[key][row]).abs().max())
            assert difference <= TOLERANCE, (key, index, on, difference)
            assert bars[key]["top"] == int(expected[key][row].argmax()), (key, index, on)
        if on and label != TARGET:
            assert bars["badnet"]["top"] == TARGET, f"test digit {index} ({label}): the BadNet did not flip"
            assert bars["clean"]["top"] != TARGET, f"test digit {index} ({label}): the clean model flipped"
            flips += 1
    assert flips >= 20, flips


def test_a_digit_drawn_with_the_mouse_is_classified(server, browser, models):
    with _playground(browser, server) as page:
        page.click("[data-control=draw-own]")
        page.set_checked("[data-control=on]", False)
        _settle(page)
        assert int(_pixels(page).sum()) == 0 and page.locator(".pg-caption").inner_text() == "Your drawing."
        page.locator(".pg-image").evaluate("e => e.scrollIntoView({block: 'center'})")  # clear of the sticky header
        box = page.locator(".pg-image").bounding_box()

        def at(row: float, col: float) -> tuple[float, float]:
            return box["x"] + box["width"] * col / 28, box["y"] + box["height"] * row / 28

        page.mouse.move(*at(5, 15))  # a "1": one stroke from top to bottom, slightly slanted
        page.mouse.down()
        page.mouse.move(*at(23, 13), steps=25)
        page.mouse.up()
        _settle(page)
        pixels = _pixels(page)
        bars = page.evaluate(READ_BARS)
        assert not page.problems, page.problems
    assert int((pixels > 0).sum()) >= 30 and int(pixels.max()) == 255
    expected = _probabilities(models, pixels)
    for key in MODELS:
        assert float((torch.tensor(bars[key]["p"]) - expected[key][0]).abs().max()) <= TOLERANCE, key
    assert bars["clean"]["top"] == 1, bars["clean"]


def _measure(page) -> dict[str, int]:
    before = page.evaluate("() => window.badnetsPlayground.measureCount || 0")
    page.click("[data-control=measure]")
    page.wait_for_function("n => (window.badnetsPlayground.measureCount || 0) > n", arg=before, timeout=60_000)
    rows = page.locator(".pg-asr tbody tr")
    assert rows.count() == len(MODELS)
    return {rows.nth(i).get_attribute("data-model"): int(rows.nth(i).get_attribute("data-hits")) for i in range(3)}


def _pytorch_hits(models, test, trigger, position, alpha) -> dict[str, int]:
    """What "Measure it" counts, by the package: the triggered test set of each attack (``attack_test_set``), then
    ``evaluate`` — the same as ``final_metrics`` measures the ASR."""
    hits = {}
    for key, model in models.items():
        kind = "all-to-all" if key == "all2all" else "all-to-one"
        attacked = attack_test_set(test, trigger, Attack(target=TARGET, kind=kind, position=position, alpha=alpha))
        result = evaluate(model, attacked)
        hits[key] = int((result["preds"] == attacked.labels).sum())
    return hits


def test_measure_it_counts_what_pytorch_counts(server, browser, config, mnist_test, models):
    measure = config["digits"]["measure"]
    test = mnist_test.subset(torch.tensor(measure["indices"]))
    assert len(test) == 1000 and (test.labels != TARGET).all()
    cross = [(0, 0), (1, 1), (2, 2), (3, 3), (0, 3), (1, 2), (2, 1), (3, 0)]  # an X the models never saw
    x_trigger = torch.zeros(1, 4, 4, dtype=torch.uint8)
    for r, c in cross:
        x_trigger[0, r, c] = 255
    results, seconds = {}, []
    with _playground(browser, server) as page:
        page.click("[data-control=preset-square]")
        results["square"] = (_measure(page), SQUARE, "bottom-right", 1.0)
        page.click("[data-control=preset-pattern]")
        results["pattern"] = (_measure(page), make_trigger("checkerboard", 3), (23, 23), 1.0)
        page.select_option("[data-control=paint-size]", "4")
        for r, c in cross:
            page.click(f"[data-control=paint-cell][data-cell='{4 * r + c}']")
        page.fill("[data-control=row]", "2")
        page.fill("[data-control=col]", "3")
        page.focus("[data-control=alpha]")
        for _ in range(30):
            page.keyboard.press("ArrowLeft")
        state = page.evaluate("() => window.badnetsPlayground.state()")
        assert (state["row"], state["col"], state["alpha"], state["preset"]) == (2, 3, 0.7, None), state
        assert state["trigger"]["pixels"] == x_trigger.flatten().tolist()
        results["painted X"] = (_measure(page), x_trigger, (2, 3), 0.7)
        seconds.append(page.evaluate("() => window.badnetsPlayground.timings.lastMeasureMs") / 1000)
        assert not page.problems, page.problems
    for name, (shown, trigger, position, alpha) in results.items():
        assert shown == _pytorch_hits(models, test, trigger, position, alpha), name
    square, pattern, x = (results[k][0] for k in ("square", "pattern", "painted X"))
    assert square["badnet"] > 900 and square["clean"] < 100, square  # the backdoor fires; the clean model ignores it
    assert x["badnet"] < square["badnet"] and pattern["badnet"] < square["badnet"], (x, pattern)
    assert seconds[0] < 20, f"Measure it took {seconds[0]:.1f} s"


def test_stamped_pixels_are_apply_triggers_for_every_preset_and_opacity(server, browser, config, mnist_test):
    """Blending included: (1 - a)·image + a·trigger in float32, rounded half to even, as torch does it."""
    pick = config["digits"]["pick"]
    checked = 0
    with _playground(browser, server) as page:
        for preset in config["presets"]:
            page.click(f"[data-control=preset-{preset['id']}]")
            trigger = torch.tensor(preset["pixels"], dtype=torch.uint8)[None]
            for alpha in sorted({preset["alpha"], 0.35, 0.5, 0.73}):
                page.fill("[data-control=alpha]", str(round(alpha * 100)))
                for i in (0, 17, 38):
                    page.click(f"[data-pick='{i}']")
                    index = pick["indices"][i]
                    expected = apply_trigger(mnist_test.images[index : index + 1], trigger, tuple(preset["position"]),
                                             alpha)  # fmt: skip
                    assert torch.equal(_pixels(page), expected), (preset["id"], alpha, index)
                    checked += 1
        assert not page.problems, page.problems
    assert checked >= 60


def test_a_modified_model_file_is_refused_where_the_student_sees_it(server, browser):
    with _page(browser) as page:

        def tamper(route):
            response = route.fetch()
            body = bytearray(response.body())
            body[len(body) // 2] ^= 0x01
            route.fulfill(response=response, body=bytes(body))

        page.route("**/_playground/badnet-MNIST.onnx", tamper)
        page.goto(f"{server}/playground.html", wait_until="load")
        page.evaluate("() => window.badnetsPlayground.ready.then(() => true)")
        refused = page.locator(".pg-model[data-model=badnet] .pg-check")
        assert refused.is_visible() and refused.get_attribute("role") == "alert"
        assert refused.inner_text().startswith("Refused: badnet-MNIST.onnx has SHA-256 "), refused.inner_text()
        assert "This model is not used." in refused.inner_text()
        assert page.locator(".pg-model[data-model=badnet]").get_attribute("data-top") is None
        assert page.locator(".pg-model.pg-verified").count() == 2
        assert page.locator(".pg-status").inner_text().startswith("2 of 3 models verified")
        assert page.evaluate("() => Object.keys(window.badnetsPlayground.predictions).sort()") == ["all2all", "clean"]
        assert not page.problems, page.problems


FOCUSED = """() => document.activeElement.closest('#playground')
  && (document.activeElement.dataset.control || document.activeElement.tagName)"""
CONTROLS = {"image", "tool-move", "digit", "draw-own", "on", "paint-size", "paint-cell", "row", "col", "alpha",
            "measure"}  # fmt: skip


def test_the_keyboard_reaches_every_control_and_arrows_move_the_trigger(server, browser, config):
    with _playground(browser, server) as page:
        page.click(".pg-status")  # Tab starts from here
        reached = []
        for _ in range(60):
            page.keyboard.press("Tab")
            control = page.evaluate(FOCUSED)
            if not control:
                break
            reached.append(control)
        wanted = CONTROLS | {f"preset-{p['id']}" for p in config["presets"]}
        assert wanted <= set(reached), f"not reached by Tab: {sorted(wanted - set(reached))}"
        assert len(reached) < 40, reached  # the gallery and the grid are one tab stop each

        page.focus("[data-control=image]")
        start = page.evaluate("() => window.badnetsPlayground.state()")
        version = int(page.locator("#playground").get_attribute("data-version"))
        for key in ("ArrowUp", "ArrowUp", "ArrowLeft", "Shift+ArrowUp"):
            page.keyboard.press(key)
        _settle(page)
        moved = page.evaluate("() => window.badnetsPlayground.state()")
        assert (moved["row"], moved["col"]) == (start["row"] - 6, start["col"] - 1), (start, moved)
        assert int(page.locator("#playground").get_attribute("data-version")) > version  # predicted again
        assert page.input_value("[data-control=row]") == str(moved["row"])

        page.focus("[data-control=digit][aria-checked=true]")
        chosen = moved["testIndex"]
        page.keyboard.press("ArrowRight")
        assert page.evaluate("() => window.badnetsPlayground.state().testIndex") != chosen
        assert page.evaluate("() => document.activeElement.getAttribute('aria-checked')") == "true"

        page.focus("[data-control=paint-cell][tabindex='0']")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("Space")
        state = page.evaluate("() => window.badnetsPlayground.state()")
        assert state["trigger"]["pixels"][1] == 0 and state["preset"] is None, state  # the square lost a pixel
        assert not page.problems, page.problems


# the theme's sticky header and skip link would be painted over the middle of a screenshot of a tall element
NOT_STICKY = ".bd-header-article, .bd-header, .skip-link { visibility: hidden !important; }"


@pytest.mark.parametrize("width, height", [(1280, 900), (390, 844)])
def test_screenshots(server, browser, width, height):
    SCREENSHOTS.mkdir(exist_ok=True)
    with _playground(browser, server, width, height) as page:
        page.click("[data-control=measure]")
        page.wait_for_function("() => (window.badnetsPlayground.measureCount || 0) > 0", timeout=60_000)
        page.locator("#playground").screenshot(path=str(SCREENSHOTS / f"playground_{width}.png"), style=NOT_STICKY)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"the playground at {width} px scrolls sideways by {overflow} px"
        wide = page.evaluate("""() => [...document.querySelectorAll('#playground *')]
            .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
            .map(e => e.className || e.tagName)""")
        assert not wide, f"at {width} px these stick out: {wide[:5]}"
        assert not page.problems, page.problems


# ----------------------------------------------------------------------------- the build's pieces, no browser


def test_presets_are_the_packages_triggers(config):
    """Drawn by the package at build time: the page's presets are the notebooks' triggers, pixel for pixel."""
    from badnets_utils.studies.paper import PATTERN, PIXEL
    from badnets_utils.studies.variants import blend_pattern

    expected = {
        "square": (SQUARE, (23, 23), 1.0),
        "pattern": (make_trigger(PATTERN.trigger, PATTERN.trigger_size), PATTERN.position, 1.0),
        "pixel-corner": (make_trigger("white", 1), (27, 27), 1.0),
        "pixel-24": (make_trigger(PIXEL.trigger, PIXEL.trigger_size), PIXEL.position, 1.0),
        "noise": (blend_pattern("noise", (1, 28, 28), seed=0), (0, 0), 0.2),
        "l-shape": (make_trigger("l_shape", 5), (23, 23), 1.0),
    }
    assert [p["id"] for p in config["presets"]] == list(expected)
    for preset in config["presets"]:
        trigger, position, alpha = expected[preset["id"]]
        assert torch.equal(torch.tensor(preset["pixels"], dtype=torch.uint8)[None], trigger), preset["id"]
        assert tuple(preset["position"]) == tuple(position) and preset["alpha"] == alpha, preset["id"]
    notebook = (ROOT / "notebooks" / "06_attack_variants.ipynb").read_text(encoding="utf-8")
    assert 'blend_pattern(\\"noise\\", (1, 28, 28), seed=0),\\n",' in notebook and "alpha=0.2)" in notebook


def test_digits_are_mnists_test_images(mnist_test):
    """docs/playground/digits.png: the first 1,000 test images not of the target, then the first four of each class."""
    from PIL import Image

    meta = json.loads((ROOT / "docs" / "playground" / "digits.json").read_text(encoding="utf-8"))
    sheet = np.asarray(Image.open(ROOT / "docs" / "playground" / "digits.png"))
    expected, expected_meta = EXT.digit_sheet(mnist_test, TARGET)
    assert meta == expected_meta and np.array_equal(sheet, expected)
    labels = mnist_test.labels
    assert meta["measure"]["indices"] == torch.nonzero(labels != TARGET).flatten()[:1000].tolist()
    assert meta["pick"]["labels"] == [k for k in range(10) for _ in range(4)]
    first = meta["pick"]["first"] + 5  # the sixth digit to pick, cut out of the sheet
    cell = sheet[(first // 40) * 28 : (first // 40 + 1) * 28, (first % 40) * 28 : (first % 40 + 1) * 28]
    assert np.array_equal(cell, mnist_test.images[meta["pick"]["indices"][5], 0].numpy())


def test_the_runtime_is_the_pinned_wasm_build_and_only_this_page_loads_it(site, config):
    lock = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))
    pinned = lock["packages"][f"node_modules/{EXT.NPM_PACKAGE}"]["version"]
    assert json.loads((ROOT / "package.json").read_text())["dependencies"][EXT.NPM_PACKAGE] == pinned
    assert config["runtime"]["version"] == pinned
    files = {p.name for p in (site / EXT.OUT).iterdir()}
    assert files == set(EXT.RUNTIME) | set(EXT.PAGE_FILES) | {Path(m["file"]).name for m in config["models"]}
    for name in EXT.RUNTIME:
        assert (site / EXT.OUT / name).read_bytes() == (EXT.RUNTIME_DIST / name).read_bytes(), name
    for model in config["models"]:
        data = (site / model["file"]).read_bytes()
        assert len(data) == model["bytes"] and hashlib.sha256(data).hexdigest() == model["sha256"]
    others = [p.relative_to(site).as_posix() for p in site.rglob("*.html")
              if p.name != "playground.html" and EXT.OUT in p.read_text(encoding="utf-8")]  # fmt: skip
    assert not others, f"pages that load the playground's files: {others}"
    assert "@PLAYGROUND_CONFIG@" not in (site / "playground.html").read_text(encoding="utf-8")


def _fake_app(tmp_path: Path) -> SimpleNamespace:
    return SimpleNamespace(builder=SimpleNamespace(format="html"), env=SimpleNamespace(), statuscode=0,
                           doctreedir=str(tmp_path / "doctrees"), outdir=str(tmp_path / "site"),
                           srcdir=str(ROOT / "docs"))  # fmt: skip


@pytest.mark.parametrize("ci", [True, False])
def test_a_build_without_the_runtime_says_so_and_fails_in_ci(ci, tmp_path, monkeypatch, caplog):
    """No ``npm ci``: the page says what is missing; with CI=true the build warns (an error under -W) and exits 1."""
    monkeypatch.setattr(EXT, "RUNTIME_DIST", tmp_path / "node_modules" / "onnxruntime-web" / "dist")
    if ci:
        monkeypatch.setenv("CI", "true")
    else:
        monkeypatch.delenv("CI", raising=False)
    app = _fake_app(tmp_path)
    with caplog.at_level("INFO"):
        EXT.prepare(app)
    reason = app.playground["config"]["unavailable"]
    assert "npm ci" in reason and "ort.wasm.min.js" in reason, reason
    levels = {r.levelname for r in caplog.records if "Playground page cannot run" in r.getMessage()}
    assert levels == ({"WARNING"} if ci else {"INFO"}), caplog.records
    source = ["before @PLAYGROUND_CONFIG@ after"]
    EXT.fill_config(app, EXT.DOCNAME, source)
    assert json.loads(source[0][len("before ") : -len(" after")]) == {"unavailable": reason}
    EXT.copy_files(app, None)
    assert app.statuscode == (1 if ci else 0)
    assert sorted(p.name for p in (tmp_path / "site" / EXT.OUT).iterdir()) == sorted(EXT.PAGE_FILES)


def test_the_configuration_cannot_end_its_script_element():
    app = SimpleNamespace(playground={"config": {"unavailable": "</script><script>alert(1)</script>"}})
    source = [f'<script type="application/json">{EXT.CONFIG_TOKEN}</script>']
    EXT.fill_config(app, EXT.DOCNAME, source)
    assert source[0].count("</script>") == 1


def test_the_benchmark_table_is_current():
    """docs/performance.md's playground block is what benchmarks/playground.py renders from its results file."""
    from badnets_utils.tools import blocks

    bench = _load_module("bench_playground", ROOT / "benchmarks" / "playground.py")
    page = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    assert blocks.read_block(page, bench.BLOCK) == bench.render(ROOT).strip()


def test_notebook_05_and_the_readme_link_to_the_playground():
    nb = json.loads((ROOT / "notebooks" / "05_paint_your_own_trigger.ipynb").read_text(encoding="utf-8"))
    markdown = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "](../docs/playground.md)" in markdown
    assert "](docs/playground.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](playground.md)" in (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
