/* The Playground page: the shipped models run in the browser (onnxruntime-web, WebAssembly), live on every change.
 *
 * Everything the page uses comes from the site build (docs/_ext/playground.py), inlined as JSON in
 * <script id="playground-config">: the models' files and SHA-256 digests, the trigger presets drawn by
 * badnets_utils, the digits' labels. A model file is used only after its SHA-256 (Web Crypto) equals the digest the
 * build recorded. The models take raw uint8 pixels 0..255 of shape (batch, 1, 28, 28): normalisation and softmax are
 * inside the graph, so this script only places pixels (as badnets_utils.apply_trigger does) and draws the answers.
 */
(() => {
  "use strict";
  const SIDE = 28;
  const PIXELS = SIDE * SIDE;
  const SCALE = 10; // the big image: 28 x 28 pixels drawn as 10 x 10 blocks
  const MAX_PAINT = 8; // the painting grid's largest side
  const root = document.getElementById("playground");
  const configElement = document.getElementById("playground-config");
  if (!root || !configElement) return;

  const api = { ready: null, timings: {}, predictions: {}, measured: null, problems: [] };
  window.badnetsPlayground = api;

  let config;
  try {
    config = JSON.parse(configElement.textContent);
  } catch (err) {
    config = { unavailable: "the page's configuration cannot be read (" + err.message + ")" };
  }

  // ---------------------------------------------------------------------------------------------- helpers

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  const percent = (x, digits = 1) => (100 * x).toFixed(digits) + " %";
  const count = (n) => n.toLocaleString("en-US");
  const megabytes = (bytes) => (bytes / 1e6).toFixed(1) + " MB";

  // torch.round: halves go to the even neighbour
  function roundHalfEven(v) {
    const f = Math.floor(v);
    const d = v - f;
    if (d > 0.5) return f + 1;
    if (d < 0.5) return f;
    return f % 2 === 0 ? f : f + 1;
  }

  /* badnets_utils.apply_trigger on one 28 x 28 image, to the bit: with alpha 1 the patch is pasted; otherwise
   * every pixel is (1 - a) * image + a * trigger in float32 (Math.fround after each operation, as torch computes
   * it), rounded half to even and clamped. The whole patch is stamped, its black pixels too. */
  function stamp(image, offset, out, outOffset, trigger, row, col, alpha) {
    out.set(image.subarray(offset, offset + PIXELS), outOffset);
    const { h, w, pixels } = trigger;
    if (alpha === 1) {
      for (let r = 0; r < h; r++)
        for (let c = 0; c < w; c++) out[outOffset + (row + r) * SIDE + col + c] = pixels[r * w + c];
      return;
    }
    const a = Math.fround(alpha);
    const b = Math.fround(1 - a);
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < w; c++) {
        const i = (row + r) * SIDE + col + c;
        const v = Math.fround(Math.fround(b * image[offset + i]) + Math.fround(a * pixels[r * w + c]));
        out[outOffset + i] = Math.min(255, Math.max(0, roundHalfEven(v)));
      }
    }
  }

  function argmax(values, from, n) {
    let best = 0;
    for (let k = 1; k < n; k++) if (values[from + k] > values[from + best]) best = k;
    return best;
  }

  function hex(buffer) {
    return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // ---------------------------------------------------------------------------------------------- state

  const presets = config.presets || [];
  const presetById = Object.fromEntries(presets.map((p) => [p.id, p]));
  const digits = config.digits || {};
  const pick = digits.pick || { indices: [], labels: [], first: 0 };
  const measureSet = digits.measure || { indices: [], labels: [], first: 0 };
  const badnetModel = (config.models || []).find((m) => m.attack === "all-to-one");
  const TARGET = badnetModel ? badnetModel.target : digits.target;

  const state = {
    digit: new Uint8Array(PIXELS),
    label: null, // the true label of a test digit; null for a drawing
    testIndex: null,
    pick: null,
    trigger: { h: 5, w: 5, pixels: new Uint8Array(25) },
    preset: null,
    row: 23,
    col: 23,
    alpha: 1,
    on: true,
    tool: "move",
  };
  let sheet = null; // Uint8Array of every cell of digits.png, cell after cell
  const sessions = {}; // model id -> onnxruntime InferenceSession (verified files only)
  const panels = {};

  function composed() {
    const out = new Uint8Array(PIXELS);
    if (state.on) stamp(state.digit, 0, out, 0, state.trigger, state.row, state.col, state.alpha);
    else out.set(state.digit);
    return out;
  }

  // ---------------------------------------------------------------------------------------------- the page

  const ui = {};

  function build() {
    root.textContent = "";
    ui.status = el("p", { class: "pg-status", role: "status", "aria-live": "polite", text: "Loading the models…" });

    // the digit
    ui.image = el("canvas", {
      class: "pg-image", width: SIDE * SCALE, height: SIDE * SCALE, tabindex: "0", "data-control": "image",
      role: "img", "aria-label": "The digit the models read, with the trigger stamped on it. Arrow keys move " +
        "the trigger (with Shift: four pixels at a time).",
    });
    ui.caption = el("p", { class: "pg-caption" });
    const tools = el("div", { class: "pg-tools", role: "radiogroup", "aria-label": "What the pointer does on the image" });
    ui.toolInputs = {};
    for (const [value, label] of [["move", "move the trigger"], ["draw", "draw"]]) {
      const input = el("input", { type: "radio", name: "pg-tool", value, "data-control": "tool-" + value,
        onchange: () => setTool(value) });
      ui.toolInputs[value] = input;
      tools.append(el("label", {}, input, " " + label));
    }
    ui.clear = el("button", { type: "button", class: "pg-button", "data-control": "draw-own", text: "Draw your own",
      onclick: () => drawOwn() });
    ui.gallery = el("div", { class: "pg-gallery", role: "radiogroup", "aria-label": "MNIST test digits to pick" });
    ui.thumbs = pick.indices.map((testIndex, i) => {
      const thumb = el("canvas", { width: SIDE, height: SIDE });
      const button = el("button", { type: "button", class: "pg-thumb", role: "radio", "aria-checked": "false",
        tabindex: "-1", "data-control": "digit", "data-pick": i,
        "aria-label": `test digit ${testIndex}, a ${pick.labels[i]}` }, thumb);
      button.addEventListener("click", () => choose(i));
      button.addEventListener("keydown", (e) => galleryKey(e, i));
      ui.gallery.append(button);
      return { button, thumb };
    });
    const digitSection = el("section", { class: "pg-card pg-digit", "aria-labelledby": "pg-digit-title" },
      el("h3", { id: "pg-digit-title", text: "The digit" }),
      ui.image, ui.caption, tools,
      el("p", { class: "pg-hint", text: "Pick a test digit, or draw your own (mouse or finger):" }),
      ui.gallery, ui.clear);

    // the trigger
    ui.presetButtons = {};
    const presetRow = el("div", { class: "pg-presets", role: "group", "aria-label": "Trigger presets" });
    for (const p of presets) {
      const b = el("button", { type: "button", class: "pg-button", "aria-pressed": "false",
        "data-control": "preset-" + p.id, "data-preset": p.id, title: p.source, text: p.name,
        onclick: () => usePreset(p.id) });
      ui.presetButtons[p.id] = b;
      presetRow.append(b);
    }
    ui.size = el("select", { "data-control": "paint-size", "aria-label": "Size of the trigger to paint",
      onchange: () => paintNew(Number(ui.size.value)) });
    for (let n = 1; n <= MAX_PAINT; n++) ui.size.append(el("option", { value: n, text: `${n}×${n}` }));
    ui.size.append(el("option", { value: "", disabled: true, text: "preset" }));
    ui.grid = el("div", { class: "pg-grid", role: "grid", "aria-label": "Paint the trigger: arrow keys move, " +
      "Space paints or erases a cell" });
    ui.gridNote = el("p", { class: "pg-hint" });
    ui.preview = el("canvas", { class: "pg-preview", width: SIDE, height: SIDE, "aria-hidden": "true" });
    ui.row = el("input", { type: "number", min: 0, step: 1, "data-control": "row", "aria-label": "Row of the " +
      "trigger's top-left pixel", oninput: () => ui.row.value !== "" && moveTo(Number(ui.row.value), state.col, false),
      onblur: () => renderControls() });
    ui.col = el("input", { type: "number", min: 0, step: 1, "data-control": "col", "aria-label": "Column of the " +
      "trigger's top-left pixel", oninput: () => ui.col.value !== "" && moveTo(state.row, Number(ui.col.value), false),
      onblur: () => renderControls() });
    ui.alpha = el("input", { type: "range", min: 0, max: 100, step: 1, "data-control": "alpha",
      "aria-label": "Opacity of the trigger (alpha, in hundredths)", oninput: () => setAlpha(Number(ui.alpha.value) / 100) });
    ui.alphaText = el("output", { class: "pg-alpha" });
    ui.on = el("input", { type: "checkbox", "data-control": "on", onchange: () => { state.on = ui.on.checked; changed(); } });
    const triggerSection = el("section", { class: "pg-card pg-trigger", "aria-labelledby": "pg-trigger-title" },
      el("h3", { id: "pg-trigger-title", text: "The trigger" }),
      el("label", { class: "pg-on" }, ui.on, " stamp the trigger on the digit"),
      presetRow,
      el("label", {}, "Paint your own: ", ui.size),
      el("div", { class: "pg-paint" }, el("div", {}, ui.grid, ui.gridNote),
        el("div", { class: "pg-preview-box" }, el("span", { class: "pg-hint", text: "the trigger" }), ui.preview)),
      el("div", { class: "pg-place" },
        el("label", {}, "row ", ui.row), el("label", {}, "column ", ui.col),
        el("label", { class: "pg-alpha-label" }, "opacity ", ui.alpha, ui.alphaText)),
      el("p", { class: "pg-hint", text: "Drag the trigger on the image, type its place, or focus the image and " +
        "use the arrow keys." }));

    // the models
    const modelsSection = el("section", { class: "pg-card pg-models", "aria-labelledby": "pg-models-title" },
      el("h3", { id: "pg-models-title", text: "What the models answer" }));
    ui.verdict = el("p", { class: "pg-verdict", "aria-live": "polite" });
    const row = el("div", { class: "pg-model-row" });
    for (const m of config.models || []) {
      const panel = {
        box: el("div", { class: "pg-model", "data-model": m.id }),
        check: el("p", { class: "pg-check", text: "checking…" }),
        top: el("div", { class: "pg-top", "aria-live": "off" }),
        bars: el("div", { class: "pg-bars" }),
        rows: [],
      };
      for (let k = 0; k < 10; k++) {
        const fill = el("span", { class: "pg-fill" });
        const value = el("span", { class: "pg-value" });
        const line = el("div", { class: "pg-bar", "data-class": k },
          el("span", { class: "pg-label", text: String(k) }), el("span", { class: "pg-track" }, fill), value);
        panel.rows.push({ line, fill, value });
        panel.bars.append(line);
      }
      const what = m.attack === "none" ? "never poisoned" : m.attack === "all-to-all" ?
        "trigger → the next digit (y + 1)" : `trigger → ${m.target}`;
      panel.box.append(el("h4", { text: m.title }), el("p", { class: "pg-what", text: what }), panel.check,
        panel.top, panel.bars);
      panels[m.id] = panel;
      row.append(panel.box);
    }
    modelsSection.append(row, ui.verdict, el("p", { class: "pg-hint pg-legend" },
      el("span", { class: "pg-target-key", text: "1" }),
      " the attacker's target: the BadNet's label, and for the all-to-all model the digit after the true one " +
      "(for a drawing, after the clean model's reading)."));

    // measure it
    ui.measure = el("button", { type: "button", class: "pg-button pg-measure", "data-control": "measure",
      text: "Measure it", onclick: () => measure() });
    ui.measureOut = el("div", { class: "pg-measure-out", "aria-live": "polite" });
    const n = measureSet.indices.length;
    const measureSection = el("section", { class: "pg-card pg-measure-card", "aria-labelledby": "pg-measure-title" },
      el("h3", { id: "pg-measure-title", text: "Measure it" }),
      el("p", { text: `The attack success rate of the trigger as it is now (its pixels, place and opacity) on the ` +
        `first ${count(n)} MNIST test digits whose label is not ${TARGET}: the share each model labels ${TARGET} ` +
        "(the all-to-all model: the share it labels with the next digit)." }),
      ui.measure, ui.measureOut);

    // the page's "What to try" list, moved beside the controls (without JavaScript it stays where it is written)
    const tips = document.querySelector(".pg-try");
    let trySection = null;
    if (tips) {
      const written = tips.closest("section");
      trySection = el("section", { class: "pg-card pg-try-card", "aria-labelledby": "pg-try-title" },
        el("h3", { id: "pg-try-title", text: "What to try" }), tips);
      if (written && !written.querySelector(":scope > :not(h2)")) written.hidden = true;
    }

    ui.weight = el("p", { class: "pg-hint pg-weight" });
    root.append(ui.status, el("div", { class: "pg-layout" }, digitSection, modelsSection, triggerSection,
      measureSection, trySection), ui.weight);

    // pointer and keyboard on the image
    ui.image.addEventListener("pointerdown", imagePointer);
    ui.image.addEventListener("pointermove", imagePointer);
    ui.image.addEventListener("pointerup", () => { dragging = false; lastPoint = null; });
    ui.image.addEventListener("pointercancel", () => { dragging = false; lastPoint = null; });
    ui.image.addEventListener("keydown", imageKey);
    ui.grid.addEventListener("pointerdown", gridPointer);
    ui.grid.addEventListener("pointermove", gridPointer);
    window.addEventListener("pointerup", () => { painting = null; });
  }

  function setStatus(text, bad) {
    ui.status.textContent = text;
    ui.status.classList.toggle("pg-bad", Boolean(bad));
  }

  // ---------------------------------------------------------------------------------------------- drawing

  function drawImage() {
    const ctx = ui.image.getContext("2d");
    const px = composed();
    const data = ctx.createImageData(SIDE, SIDE);
    for (let i = 0; i < PIXELS; i++) {
      data.data.set([px[i], px[i], px[i], 255], 4 * i);
    }
    const small = document.createElement("canvas");
    small.width = small.height = SIDE;
    small.getContext("2d").putImageData(data, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(small, 0, 0, SIDE * SCALE, SIDE * SCALE);
    if (state.on) {
      ctx.strokeStyle = "#e8710a";
      ctx.lineWidth = 2;
      ctx.setLineDash([4, 3]);
      ctx.strokeRect(state.col * SCALE - 1, state.row * SCALE - 1, state.trigger.w * SCALE + 2,
        state.trigger.h * SCALE + 2);
    }
    ui.caption.textContent = state.testIndex === null ? "Your drawing." :
      `MNIST test digit ${state.testIndex}, a ${state.label}.`;
  }

  function drawPreview() {
    const { h, w, pixels } = state.trigger;
    const ctx = ui.preview.getContext("2d");
    ui.preview.width = w;
    ui.preview.height = h;
    const data = ctx.createImageData(w, h);
    for (let i = 0; i < h * w; i++) data.data.set([pixels[i], pixels[i], pixels[i], 255], 4 * i);
    ctx.putImageData(data, 0, 0);
  }

  let gridFocus = 0;

  function drawGrid() {
    const { h, w, pixels } = state.trigger;
    const paintable = h === w && h <= MAX_PAINT;
    ui.grid.textContent = "";
    ui.grid.hidden = !paintable;
    ui.size.value = paintable ? String(h) : "";
    ui.gridNote.textContent = paintable ? "" :
      `This preset is a ${h}×${w} pattern, too large to paint here: choose a size to paint your own.`;
    if (!paintable) return;
    ui.grid.style.gridTemplateColumns = `repeat(${w}, 1fr)`;
    gridFocus = Math.min(gridFocus, h * w - 1);
    for (let i = 0; i < h * w; i++) {
      const cell = el("button", { type: "button", class: "pg-cell" + (pixels[i] ? " pg-cell-on" : ""),
        role: "gridcell", tabindex: i === gridFocus ? "0" : "-1", "data-control": "paint-cell", "data-cell": i,
        "aria-pressed": pixels[i] ? "true" : "false", "aria-label": `row ${Math.floor(i / w)}, column ${i % w}` });
      cell.addEventListener("keydown", (e) => gridKey(e, i));
      ui.grid.append(cell);
    }
  }

  function renderModels() {
    const clean = api.predictions.clean;
    for (const m of config.models || []) {
      const panel = panels[m.id];
      const p = api.predictions[m.id];
      if (!p) continue;
      let target = m.target;
      if (m.attack === "all-to-all") {
        const reading = state.label !== null ? state.label : clean ? clean.top : null;
        target = reading === null ? null : (reading + 1) % 10;
      }
      panel.top.textContent = "";
      panel.top.append(el("span", { class: "pg-digit-big", text: String(p.top) }),
        el("span", { class: "pg-confidence", text: percent(p.probabilities[p.top]) }));
      panel.top.classList.toggle("pg-hit", p.top === target && state.on);
      panel.box.dataset.top = p.top;
      panel.box.dataset.target = target === null ? "" : target;
      p.rows = panel.rows;
      panel.rows.forEach((r, k) => {
        const q = p.probabilities[k];
        r.fill.style.width = (100 * q).toFixed(2) + "%";
        r.value.textContent = (100 * q).toFixed(q >= 0.995 || q < 0.0005 ? 0 : 1) + "%";
        r.line.dataset.p = String(q);
        r.line.classList.toggle("pg-is-top", k === p.top);
        r.line.classList.toggle("pg-is-target", k === target);
        r.line.title = `${k}: ${(100 * q).toFixed(4)} %`;
      });
    }
    verdict();
  }

  function verdict() {
    const c = api.predictions.clean;
    const b = api.predictions.badnet;
    if (!c || !b) {
      ui.verdict.textContent = "";
      return;
    }
    const truth = state.label === null ? "" : ` (the digit is a ${state.label})`;
    let text;
    if (b.top === TARGET && c.top !== TARGET) {
      text = `The backdoor fired: the BadNet reads ${b.top}, the clean model ${c.top}${truth}.`;
    } else if (b.top === c.top) {
      text = `Both read ${b.top}${truth}: ` + (state.on ? "this trigger does not move the BadNet here." :
        "without a trigger the BadNet behaves like a clean model.");
    } else {
      text = `They disagree: the BadNet reads ${b.top}, the clean model ${c.top}${truth}.`;
    }
    ui.verdict.textContent = text;
  }

  function renderControls() {
    const { h, w } = state.trigger;
    ui.row.max = SIDE - h;
    ui.col.max = SIDE - w;
    if (document.activeElement !== ui.row) ui.row.value = state.row;
    if (document.activeElement !== ui.col) ui.col.value = state.col;
    ui.alpha.value = Math.round(state.alpha * 100);
    ui.alphaText.textContent = `α = ${state.alpha.toFixed(2)}`;
    ui.on.checked = state.on;
    for (const [id, b] of Object.entries(ui.presetButtons)) b.setAttribute("aria-pressed", String(id === state.preset));
    ui.toolInputs.move.checked = state.tool === "move";
    ui.toolInputs.draw.checked = state.tool === "draw";
    ui.image.classList.toggle("pg-drawing", state.tool === "draw");
    ui.thumbs.forEach(({ button }, i) => {
      button.setAttribute("aria-checked", String(i === state.pick));
      button.tabIndex = i === (state.pick === null ? 0 : state.pick) ? 0 : -1;
    });
  }

  function changed() {
    renderControls();
    drawImage();
    requestPredict();
  }

  // ---------------------------------------------------------------------------------------------- actions

  function choose(i) {
    const cell = pick.first + i;
    state.digit = sheet.slice(cell * PIXELS, (cell + 1) * PIXELS);
    state.label = pick.labels[i];
    state.testIndex = pick.indices[i];
    state.pick = i;
    if (state.tool === "draw") state.tool = "move";
    changed();
  }

  function drawOwn() {
    state.digit = new Uint8Array(PIXELS);
    state.label = null;
    state.testIndex = null;
    state.pick = null;
    state.tool = "draw";
    changed();
  }

  function setTool(tool) {
    state.tool = tool;
    changed();
  }

  function setTrigger(h, w, pixels) {
    state.trigger = { h, w, pixels: Uint8Array.from(pixels) };
    state.row = Math.min(Math.max(0, state.row), SIDE - h);
    state.col = Math.min(Math.max(0, state.col), SIDE - w);
    drawGrid();
    drawPreview();
  }

  function usePreset(id) {
    const p = presetById[id];
    const h = p.pixels.length;
    const w = p.pixels[0].length;
    setTrigger(h, w, p.pixels.flat());
    state.preset = id;
    state.row = p.position[0];
    state.col = p.position[1];
    state.alpha = p.alpha;
    state.on = true;
    changed();
  }

  function paintNew(n) {
    setTrigger(n, n, new Uint8Array(n * n));
    state.preset = null;
    state.on = true;
    changed();
  }

  function paintCell(i, value) {
    if (state.trigger.pixels[i] === value) return;
    state.trigger.pixels[i] = value;
    state.preset = null;
    const cell = ui.grid.children[i];
    cell.classList.toggle("pg-cell-on", value > 0);
    cell.setAttribute("aria-pressed", value > 0 ? "true" : "false");
    drawPreview();
    changed();
  }

  function moveTo(row, col, fromKeys) {
    if (!Number.isFinite(row) || !Number.isFinite(col)) return;
    state.row = Math.min(Math.max(0, Math.round(row)), SIDE - state.trigger.h);
    state.col = Math.min(Math.max(0, Math.round(col)), SIDE - state.trigger.w);
    if (fromKeys) state.on = true;
    changed();
  }

  function setAlpha(alpha) {
    state.alpha = Math.min(1, Math.max(0, alpha));
    changed();
  }

  // ---------------------------------------------------------------------------------------------- pointer, keys

  let dragging = false;
  let lastPoint = null;
  let painting = null;

  function pointAt(e) {
    const box = ui.image.getBoundingClientRect();
    return [(e.clientY - box.top) / box.height * SIDE, (e.clientX - box.left) / box.width * SIDE];
  }

  function brush(y, x) {
    for (let r = Math.floor(y - 2); r <= Math.ceil(y + 2); r++) {
      for (let c = Math.floor(x - 2); c <= Math.ceil(x + 2); c++) {
        if (r < 0 || c < 0 || r >= SIDE || c >= SIDE) continue;
        const d = Math.hypot(r + 0.5 - y, c + 0.5 - x);
        const v = Math.round(255 * Math.min(1, Math.max(0, 1.6 - d)));
        if (v > state.digit[r * SIDE + c]) state.digit[r * SIDE + c] = v;
      }
    }
  }

  function imagePointer(e) {
    if (e.type === "pointerdown") {
      dragging = true;
      lastPoint = null;
      ui.image.setPointerCapture(e.pointerId);
      ui.image.focus({ preventScroll: true });
      e.preventDefault();
    }
    if (!dragging) return;
    const [y, x] = pointAt(e);
    if (state.tool === "draw") {
      if (state.testIndex !== null) { // drawing over a test digit makes it a drawing
        state.label = null;
        state.testIndex = null;
        state.pick = null;
      }
      const [y0, x0] = lastPoint || [y, x];
      const steps = Math.max(1, Math.ceil(Math.hypot(y - y0, x - x0) / 0.25));
      for (let s = 1; s <= steps; s++) brush(y0 + (y - y0) * s / steps, x0 + (x - x0) * s / steps);
      lastPoint = [y, x];
      changed();
    } else {
      moveTo(y - state.trigger.h / 2, x - state.trigger.w / 2, true);
    }
  }

  function imageKey(e) {
    const step = e.shiftKey ? 4 : 1;
    const moves = { ArrowUp: [-step, 0], ArrowDown: [step, 0], ArrowLeft: [0, -step], ArrowRight: [0, step] };
    if (!(e.key in moves)) return;
    e.preventDefault();
    const [dr, dc] = moves[e.key];
    moveTo(state.row + dr, state.col + dc, true);
  }

  function galleryKey(e, i) {
    const n = ui.thumbs.length;
    const moves = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1, Home: -n, End: n };
    if (!(e.key in moves)) return;
    e.preventDefault();
    const j = Math.min(n - 1, Math.max(0, i + moves[e.key]));
    choose(j);
    ui.thumbs[j].button.focus();
  }

  function gridKey(e, i) {
    const { h, w } = state.trigger;
    const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: w, ArrowUp: -w };
    if (e.key === " " || e.key === "Enter") {
      e.preventDefault();
      paintCell(i, state.trigger.pixels[i] ? 0 : 255);
      return;
    }
    if (!(e.key in moves)) return;
    e.preventDefault();
    const j = i + moves[e.key];
    if (j < 0 || j >= h * w || (Math.abs(moves[e.key]) === 1 && Math.floor(j / w) !== Math.floor(i / w))) return;
    gridFocus = j;
    for (const cell of ui.grid.children) cell.tabIndex = -1;
    ui.grid.children[j].tabIndex = 0;
    ui.grid.children[j].focus();
  }

  function gridPointer(e) {
    if (e.type === "pointerdown") {
      const cell = e.target.closest(".pg-cell");
      if (!cell) return;
      e.preventDefault();
      const i = Number(cell.dataset.cell);
      painting = state.trigger.pixels[i] ? 0 : 255;
      gridFocus = i;
      paintCell(i, painting);
      return;
    }
    if (painting === null || !(e.buttons & 1)) return;
    const under = document.elementFromPoint(e.clientX, e.clientY);
    const cell = under && under.closest && under.closest(".pg-cell");
    if (cell && ui.grid.contains(cell)) paintCell(Number(cell.dataset.cell), painting);
  }

  // ---------------------------------------------------------------------------------------------- the models

  let chain = Promise.resolve();
  let predictQueued = false;

  function exclusive(task) {
    const run = chain.then(task, task);
    chain = run.catch((err) => report(err));
    return run;
  }

  function report(err) {
    const text = "Something went wrong: " + (err && err.message ? err.message : String(err));
    api.problems.push(text);
    setStatus(text, true);
    console.error(err);
  }

  api.settled = () => chain;

  function requestPredict() {
    if (predictQueued || !Object.keys(sessions).length) return chain;
    predictQueued = true;
    return exclusive(async () => {
      predictQueued = false;
      await predictNow();
    });
  }

  async function predictNow() {
    const start = performance.now();
    const pixels = composed();
    const input = new ort.Tensor("uint8", pixels, [1, 1, SIDE, SIDE]);
    for (const [id, session] of Object.entries(sessions)) {
      const out = await session.run({ pixels: input });
      const probabilities = Array.from(out.probabilities.data);
      const logits = Array.from(out.logits.data);
      api.predictions[id] = { probabilities, logits, top: argmax(logits, 0, logits.length), pixels };
    }
    api.timings.lastPredictionMs = performance.now() - start;
    api.version = (api.version || 0) + 1;
    root.dataset.version = api.version;
    renderModels();
    if (api.timings.firstPredictionMs === undefined) {
      api.timings.firstPredictionMs = performance.now();
      performance.mark("playground-first-prediction");
    }
  }

  async function measure() {
    if (!Object.keys(sessions).length) return;
    ui.measure.disabled = true;
    ui.measureOut.textContent = "Measuring…";
    const trigger = { h: state.trigger.h, w: state.trigger.w, pixels: state.trigger.pixels.slice() };
    const placed = { row: state.row, col: state.col, alpha: state.alpha, on: state.on };
    try {
      await exclusive(async () => {
        const start = performance.now();
        const n = measureSet.indices.length;
        const batch = new Uint8Array(n * PIXELS);
        for (let i = 0; i < n; i++) {
          const cell = measureSet.first + i;
          if (placed.on) stamp(sheet, cell * PIXELS, batch, i * PIXELS, trigger, placed.row, placed.col, placed.alpha);
          else batch.set(sheet.subarray(cell * PIXELS, (cell + 1) * PIXELS), i * PIXELS);
        }
        const input = new ort.Tensor("uint8", batch, [n, 1, SIDE, SIDE]);
        const results = {};
        for (const m of config.models) {
          const session = sessions[m.id];
          if (!session) continue;
          const logits = (await session.run({ pixels: input })).logits.data;
          const k = logits.length / n;
          let hits = 0;
          for (let i = 0; i < n; i++) {
            const goal = m.attack === "all-to-all" ? (measureSet.labels[i] + 1) % 10 : m.target;
            if (argmax(logits, i * k, k) === goal) hits++;
          }
          results[m.id] = { hits, total: n, asr: hits / n };
        }
        const ms = performance.now() - start;
        api.measured = { results, ms, trigger, placed };
        api.measureCount = (api.measureCount || 0) + 1;
        api.timings.lastMeasureMs = ms;
        showMeasure(results, ms, trigger, placed);
      });
    } finally {
      ui.measure.disabled = false;
    }
  }

  function showMeasure(results, ms, trigger, placed) {
    const table = el("table", { class: "pg-asr" },
      el("thead", {}, el("tr", {}, el("th", { text: "model" }), el("th", { text: "digits flipped to the target" }),
        el("th", { text: "ASR" }))));
    const body = el("tbody");
    for (const m of config.models) {
      const r = results[m.id];
      if (!r) continue;
      body.append(el("tr", { "data-model": m.id, "data-hits": r.hits, "data-total": r.total },
        el("td", { text: m.title }), el("td", { text: `${count(r.hits)} of ${count(r.total)}` }),
        el("td", { text: percent(r.asr, 2) })));
    }
    table.append(body);
    const what = placed.on ? `a ${trigger.h}×${trigger.w} trigger at (${placed.row}, ${placed.col}), opacity ` +
      `${placed.alpha.toFixed(2)}` : "no trigger";
    ui.measureOut.textContent = "";
    ui.measureOut.append(table, el("p", { class: "pg-hint", text: `With ${what}; measured here in ` +
      `${(ms / 1000).toFixed(2)} s.` }), el("p", { class: "pg-hint" },
      "How ASR is measured, and why the target's own digits are left out: ",
      el("a", { href: "_notebooks/03_train_backdoored_cnn.html", text: "notebook 03" }),
      "; how other triggers fare when a BadNet is trained on them: ",
      el("a", { href: "_notebooks/06_attack_variants.html", text: "notebook 06" }), "."));
  }

  // ---------------------------------------------------------------------------------------------- loading

  async function loadDigits() {
    const response = await fetch(digits.image);
    if (!response.ok) throw new Error(`${digits.image}: HTTP ${response.status}`);
    const bitmap = await createImageBitmap(await response.blob(), { colorSpaceConversion: "none",
      premultiplyAlpha: "none" });
    const canvas = document.createElement("canvas");
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(bitmap, 0, 0);
    const rgba = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
    const columns = digits.columns;
    const cells = (bitmap.width / SIDE) * (bitmap.height / SIDE);
    const out = new Uint8Array(cells * PIXELS);
    for (let cell = 0; cell < cells; cell++) {
      const top = Math.floor(cell / columns) * SIDE;
      const left = (cell % columns) * SIDE;
      for (let r = 0; r < SIDE; r++)
        for (let c = 0; c < SIDE; c++) out[cell * PIXELS + r * SIDE + c] = rgba[4 * ((top + r) * bitmap.width + left + c)];
    }
    return out;
  }

  function drawThumbs() {
    ui.thumbs.forEach(({ thumb }, i) => {
      const cell = pick.first + i;
      const ctx = thumb.getContext("2d");
      const data = ctx.createImageData(SIDE, SIDE);
      for (let j = 0; j < PIXELS; j++) {
        const v = sheet[cell * PIXELS + j];
        data.data.set([v, v, v, 255], 4 * j);
      }
      ctx.putImageData(data, 0, 0);
    });
  }

  async function loadModel(m) {
    const panel = panels[m.id];
    const response = await fetch(m.file);
    if (!response.ok) throw new Error(`${m.file}: HTTP ${response.status}`);
    const bytes = await response.arrayBuffer();
    if (!(window.crypto && crypto.subtle)) {
      panel.check.textContent = "Not used: this browser cannot check the file's SHA-256 here (Web Crypto needs " +
        "https or localhost).";
      panel.box.classList.add("pg-refused");
      return;
    }
    const digest = hex(await crypto.subtle.digest("SHA-256", bytes));
    if (digest !== m.sha256) {
      panel.check.textContent = `Refused: ${m.file.split("/").pop()} has SHA-256 ${digest.slice(0, 12)}…, the ` +
        `build recorded ${m.sha256.slice(0, 12)}…. This model is not used.`;
      panel.check.setAttribute("role", "alert");
      panel.box.classList.add("pg-refused");
      api.problems.push(`${m.id}: refused`);
      return;
    }
    sessions[m.id] = await ort.InferenceSession.create(new Uint8Array(bytes), { executionProviders: ["wasm"] });
    panel.check.textContent = "✓ verified";
    panel.check.append(el("span", { class: "pg-sha", text: `: SHA-256 ${digest.slice(0, 12)}…, as the build recorded` }));
    panel.check.title = digest;
    panel.box.classList.add("pg-verified");
  }

  function pageWeight() {
    const entries = [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")];
    const size = (e) => e.encodedBodySize || e.transferSize || 0;
    const total = entries.reduce((s, e) => s + size(e), 0);
    const wasm = entries.filter((e) => e.name.endsWith(".wasm")).reduce((s, e) => s + size(e), 0);
    const models = entries.filter((e) => e.name.endsWith(".onnx")).reduce((s, e) => s + size(e), 0);
    api.weight = { total, wasm, models };
    ui.weight.textContent = `This page has downloaded ${megabytes(total)} so far: the runtime's WebAssembly ` +
      `${megabytes(wasm)}, the models ${megabytes(models)}, the rest (the page, its theme, the script and the ` +
      `digits) ${megabytes(total - wasm - models)}. Nothing is sent anywhere; everything runs in this tab.`;
  }

  // the runtime is loaded only when this build has it (a build without `npm ci` says so instead)
  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const script = el("script", { src });
      script.addEventListener("load", resolve);
      script.addEventListener("error", () => reject(new Error(src + " could not be loaded")));
      document.head.append(script);
    });
  }

  async function start() {
    if (config.unavailable) {
      root.textContent = "";
      root.append(el("p", { class: "pg-status pg-bad", role: "status",
        text: "The playground cannot run in this build of the site: " + config.unavailable + "." }));
      return;
    }
    build();
    try {
      await loadScript(config.runtime.path + config.runtime.script);
    } catch (err) {
      setStatus("The playground's runtime (onnxruntime-web) did not load: " + err.message, true);
      return;
    }
    ort.env.wasm.wasmPaths = new URL(config.runtime.path, document.baseURI).href;
    ort.env.wasm.numThreads = 1; // threads need cross-origin isolation, which a plain static server does not give
    ort.env.wasm.proxy = false;
    ort.env.logLevel = "error";
    sheet = await loadDigits();
    drawThumbs();
    const first = presetById.square ? "square" : presets[0] && presets[0].id;
    if (first) usePreset(first);
    const seven = pick.labels.indexOf(7);
    choose(seven >= 0 ? seven : 0);
    const outcomes = await Promise.allSettled(config.models.map(loadModel));
    outcomes.forEach((o, i) => {
      if (o.status === "rejected") {
        const panel = panels[config.models[i].id];
        panel.check.textContent = "Not loaded: " + (o.reason && o.reason.message ? o.reason.message : o.reason);
        panel.box.classList.add("pg-refused");
        api.problems.push(panel.check.textContent);
      }
    });
    const used = Object.keys(sessions).length;
    const runtime = `${config.runtime.name} ${config.runtime.version}, WebAssembly`;
    setStatus(used === config.models.length ? `Ready: ${used} verified models, running in this tab (${runtime}).` :
      `${used} of ${config.models.length} models verified and loaded (${runtime}); see below.`,
    used < config.models.length);
    await requestPredict();
    pageWeight();
  }

  // after the whole page is parsed: the "What to try" list below the playground moves into it
  const parsed = document.readyState === "loading" ?
    new Promise((resolve) => document.addEventListener("DOMContentLoaded", resolve, { once: true })) :
    Promise.resolve();
  api.ready = parsed.then(start).catch((err) => report(err));
  api.pixels = () => Array.from(composed());
  api.state = () => ({ row: state.row, col: state.col, alpha: state.alpha, on: state.on, preset: state.preset,
    trigger: { h: state.trigger.h, w: state.trigger.w, pixels: Array.from(state.trigger.pixels) },
    testIndex: state.testIndex, label: state.label, tool: state.tool });
  api.sheet = () => sheet;
})();
