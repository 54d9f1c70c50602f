"""The notebooks' widgets in a real JupyterLab, driven by a real browser: the learner's view, not nbclient's.

A ``jupyter lab`` server is started on a free port (token auth, 127.0.0.1) over a temporary copy of notebooks/, with
``PYTHONPATH`` at this checkout (so the kernel imports this ``ifcn_viz``) and ``IFCN_NB_FAST=1``.  Chromium (Debian's
/usr/bin/chromium through Playwright; never ``playwright install``) opens a notebook, runs the cells a widget needs
(with JupyterLab's own "run all above" command), then moves the widget several times -- through its <select>, its
slider's keyboard, its button -- and reads back what JupyterLab rendered: every figure is an <img> whose PNG is
not blank, no output says ``<Figure size ... with 0 Axes>``, the caption follows the control, the progress line
ends in "done".  Covered: notebook 02's Q2 explorer (train with three assemblers, twice the same settings) and
notebook 05's question-4 sweep (another scene resets the scale and the slider's length; the slider steps).

Skipped when /usr/bin/chromium or Playwright is missing, unless IFCN_REQUIRE_BROWSER=1 (CI), which makes that a
failure.  Screenshots of each notebook go to test-artifacts/.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip
pytestmark = [pytest.mark.browser, pytest.mark.notebooks, pytest.mark.slow]

# JupyterLab user settings for the test server: every cell in the DOM (no virtual scrolling), no autosave, no news.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
}  # fmt: skip

# The state of the open notebook, from JupyterLab's own model (the app is exposed with expose_app_in_browser).
STATE_JS = """() => {
  const app = window.jupyterapp;
  const w = app && app.shell.currentWidget;
  if (!w || !w.content || !w.content.model || !w.sessionContext) return {ready: false};
  const cells = w.content.model.cells;
  let code = 0, done = 0; const errors = [];
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    if (c.type !== 'code') continue;
    code++;
    if (c.executionCount) done++;
    for (let j = 0; j < c.outputs.length; j++) {
      const o = c.outputs.get(j).toJSON();
      if (o.output_type === 'error') errors.push(`cell ${i}: ${o.ename}: ${o.evalue}`);
    }
  }
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  return {ready: true, code, done, errors, kernel: k ? k.status : 'none', busy: w.sessionContext.isBusy || false};
}"""

# Run every cell above the cell with this id (JupyterLab's "Run All Above Selected Cell"); returns their number.
RUN_ABOVE_JS = """async (cellId) => {
  const app = window.jupyterapp;
  const nb = app.shell.currentWidget.content;
  const cells = nb.model.cells;
  let idx = -1;
  for (let i = 0; i < cells.length; i++) { if (cells.get(i).id === cellId) { idx = i; break; } }
  if (idx < 0) throw new Error('no cell ' + cellId);
  nb.activeCellIndex = idx;
  await app.commands.execute('notebook:run-all-above');
  return idx;
}"""

# Run the cells with these ids, one after another (select, "Run Selected Cell"), waiting for each.
RUN_CELLS_JS = """async (ids) => {
  const app = window.jupyterapp;
  const nb = app.shell.currentWidget.content;
  const cells = nb.model.cells;
  for (const id of ids) {
    let idx = -1;
    for (let i = 0; i < cells.length; i++) { if (cells.get(i).id === id) { idx = i; break; } }
    if (idx < 0) throw new Error('no cell ' + id);
    nb.activeCellIndex = idx;
    nb.deselectAll();
    const ok = await app.commands.execute('notebook:run-cell');
    if (ok === false) return id;
  }
  return null;
}"""

# Code cells above a cell that have run (an execution count) and the code cells above it.
PROGRESS_JS = """(cellId) => {
  const nb = window.jupyterapp.shell.currentWidget.content;
  const cells = nb.model.cells;
  let code = 0, done = 0;
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    if (c.id === cellId) break;
    if (c.type !== 'code') continue;
    code++;
    if (c.executionCount) done++;
  }
  return [done, code];
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _require_browser() -> None:
    missing = None
    if not Path(CHROMIUM).exists():
        missing = f"{CHROMIUM} is missing (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "playwright is not installed (pip install playwright; the system Chromium is used)"
    if missing:
        if os.environ.get("IFCN_REQUIRE_BROWSER") == "1":
            pytest.fail(f"IFCN_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server over a copy of notebooks/ -> (base url, token)."""
    _require_browser()
    tmp = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "notebooks", tmp / "notebooks", ignore=shutil.ignore_patterns("runs", ".ipynb_checkpoints"))
    settings = tmp / "settings"
    for name, values in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    token, port = secrets.token_hex(16), _free_port()
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": pythonpath,
           "IFCN_NB_FAST": "1", "IFCN_NB_WORKDIR": str(tmp / "work"), "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"), "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
           "PYDEVD_DISABLE_FILE_VALIDATION": "1"}  # fmt: skip
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp / 'notebooks'}",
           "--ServerApp.port_retries=0",
           "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None", "--LabApp.check_for_updates_class="
           "jupyterlab.NeverCheckForUpdate"]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
        cmd.append("--allow-root")
    log = open(tmp / "server.log", "w")  # noqa: SIM115 -- closed below
    proc = subprocess.Popen(cmd, cwd=tmp / "notebooks", env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        t0 = time.monotonic()
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() - t0 > 90:
                raise RuntimeError("jupyter lab did not start:\n" + (tmp / "server.log").read_text()[-3000:])
            time.sleep(0.5)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _open(browser, lab, name: str):
    base, token = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    # a workspace of its own, reset: only this notebook is open (not the tabs an earlier page left)
    workspace = Path(name).stem.replace("_", "-")
    page.goto(f"{base}/lab/workspaces/{workspace}/tree/{name}?token={token}&reset", timeout=90_000)
    page.wait_for_function(
        "(name) => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        " return !!(w && w.context && w.context.path === name); }",
        arg=name,
        timeout=90_000,
    )
    t0 = time.monotonic()
    while True:  # the kernel is up and idle
        st = page.evaluate(STATE_JS)
        if st.get("ready") and st.get("kernel") == "idle":
            return page
        if time.monotonic() - t0 > 90:
            raise AssertionError(f"{name}: the kernel did not start: {st}")
        page.wait_for_timeout(250)


def _run_above(page, cell_id: str, timeout: float = 300) -> None:
    """Run every cell above ``cell_id`` and wait until each has run; any error fails with its message."""
    page.evaluate(RUN_ABOVE_JS, cell_id)
    t0 = time.monotonic()
    while True:
        st = page.evaluate(STATE_JS)
        assert not st["errors"], f"a cell failed: {st['errors']}"
        done, code = page.evaluate(PROGRESS_JS, cell_id)
        if done == code and st["kernel"] == "idle":
            return
        if time.monotonic() - t0 > timeout:
            _shot(page, "timeout")
            raise AssertionError(f"only {done} of {code} cells ran within {timeout} s ({st})")
        page.wait_for_timeout(300)


def _run_cells(page, ids: list[str], timeout: float = 300) -> None:
    """Run only the cells a widget needs, in order; any error fails with its message."""
    failed = page.evaluate(RUN_CELLS_JS, ids)
    t0 = time.monotonic()
    while True:
        st = page.evaluate(STATE_JS)
        assert not st["errors"] and failed is None, f"a cell failed ({failed}): {st['errors']}"
        if st["kernel"] == "idle" and not st["busy"]:
            return
        if time.monotonic() - t0 > timeout:
            _shot(page, "timeout")
            raise AssertionError(f"the cells {ids} did not finish within {timeout} s ({st})")
        page.wait_for_timeout(300)


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"lab_{name}.png"), full_page=True)


def _pngs(area) -> list[np.ndarray]:
    """The images an output area shows, decoded (RGB arrays)."""
    from PIL import Image

    out = []
    for src in area.locator("img").evaluate_all("els => els.map(e => e.getAttribute('src'))"):
        assert src and src.startswith("data:image/png;base64,"), f"an <img> that is not an inline PNG: {src[:60]}"
        out.append(np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB")))
    return out


def _check_figures(area, expect: int, what: str) -> str:
    """``expect`` non-blank figures and no pyplot leftovers in ``area``; returns its text."""
    imgs = _pngs(area)
    assert len(imgs) == expect, f"{what}: {len(imgs)} images, expected {expect}"
    for n, img in enumerate(imgs):
        inked = float((img.min(axis=2) < 235).mean())  # the share of pixels that are not (near) white
        assert img.shape[0] > 100 and img.shape[1] > 100, f"{what}: image {n} is {img.shape}"
        assert inked > 0.02, f"{what}: image {n} is blank ({inked:.1%} inked)"
    text = area.inner_text()
    assert not re.search(r"Figure size .* with 0 Axes", text), f"{what}: an empty pyplot figure: {text[:300]}"
    assert "Traceback" not in text and "Error" not in text, f"{what}: {text[:600]}"
    return text


def _wait_text(locator, pattern: str, timeout: float = 240) -> str:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        text = locator.inner_text().replace("\xa0", " ")  # the browser's non-breaking spaces
        if re.search(pattern, text):
            return text
        locator.page.wait_for_timeout(250)
    raise AssertionError(f"{pattern!r} never appeared; last text: {locator.inner_text()[:500]}")


@pytest.mark.timeout(600)
def test_q2_explorer_in_jupyterlab(browser, lab):
    """Notebook 02's Q2 explorer: pick the assembler and the steps, press train (twice with the same settings
    too), and each time read back the caption, the progress line and non-blank figures."""
    page = _open(browser, lab, "02_score_maps_and_assembling.ipynb")
    try:
        _run_above(page, "e9a35d8f")  # through the explorer and its check cell
        box = page.locator(".widget-vbox").filter(has=page.locator("button", has_text="train")).first
        box.scroll_into_view_if_needed()
        out = box.locator(".jp-OutputArea").first
        # after Run All the explorer shows its defaults: the random learned assembler, the run above
        text = _check_figures(out, 2, "the explorer after Run All")
        assert "learned, random init" in text and "from shipped" in text, text[:300]
        steps = box.locator(".widget-slider", has_text="steps").locator(".widget-readout")
        choices = [  # (assembler, steps, figures); the same settings twice: the same, complete figures
            ("learned, one-hot init", 2, 2),
            ("parameter-free (the paper)", 2, 1),
            ("learned, random init", 3, 2),
            ("learned, random init", 3, 2),
        ]
        button = box.locator("button", has_text="train")
        status = box.locator(".widget-hbox").filter(has=page.locator(".widget-hprogress")).last
        captions = []
        for label, n_steps, n_figures in choices:
            box.locator(".widget-dropdown", has_text="assembler").locator("select").select_option(label=label)
            steps.fill(str(n_steps))
            steps.press("Enter")
            before = status.inner_text()
            button.click()
            t0 = time.monotonic()  # the run has started: the controls are disabled or the status line moved
            while not button.is_disabled() and status.inner_text() == before and time.monotonic() - t0 < 30:
                page.wait_for_timeout(100)
            _wait_text(status, rf"trained {n_steps} steps")
            assert not button.is_disabled()
            text = _check_figures(out, n_figures, f"train {label}, {n_steps} steps")
            assert f"{label}, {n_steps} steps from shipped" in text, text[:300]
            captions.append(text.splitlines()[0].rsplit(";", 1)[0])  # without the run's seconds
        assert captions[2] == captions[3], captions  # the same settings, the same answer
        box.scroll_into_view_if_needed()
        _shot(page, "02_q2")
    except Exception:
        _shot(page, "02_q2_failed")
        raise
    finally:
        page.close()


@pytest.mark.timeout(600)
def test_q4_sweep_in_jupyterlab(browser, lab):
    """Notebook 05's question-4 sweep: step the slider, choose other scenes; the scale menu and the slider's
    length follow the scene, and the caption and figure follow the controls."""
    page = _open(browser, lab, "05_inference.ipynb")
    try:
        # only what the sweep needs: parameters, imports, the Predictor, the sweep, its check cell
        _run_cells(page, ["cell-02", "cell-03", "cell-05", "8e929261", "79111039", "5336c2d9"])
        box = page.locator(".widget-vbox").filter(has=page.locator(".widget-dropdown", has_text="scene")).first
        box.scroll_into_view_if_needed()
        out = box.locator(".jp-OutputArea").first
        handle = box.locator(".widget-slider", has_text="sweep step").locator(".noUi-handle")
        scene = box.locator(".widget-dropdown", has_text="scene").locator("select")
        scale = box.locator(".widget-dropdown", has_text="scale").locator("select")
        text = _check_figures(out, 1, "the sweep after Run All")
        n_steps = int(float(handle.get_attribute("aria-valuemax")))
        assert f"step 0 of {n_steps}" in text, text[:300]
        for presses in (2, 3):  # the slider, by keyboard: the caption and the figure follow it
            handle.focus()
            for _ in range(presses):
                handle.press("ArrowRight")
            now = int(float(handle.get_attribute("aria-valuenow")))
            text = _wait_text(out, rf"step {now} of {n_steps}:")
            _check_figures(out, 1, f"sweep step {now}")
        options = scene.locator("option").all_inner_texts()
        assert len(options) >= 2, options
        for label in (options[-1], options[0]):  # another scene, then back
            scene.select_option(label=label)
            _wait_text(box, re.escape(label.replace("\xa0", " ")) + r", scale \d+, step 0 \(")
            n_steps = int(float(handle.get_attribute("aria-valuemax")))
            text = _wait_text(out, rf"step 0 of {n_steps}:")
            assert int(float(handle.get_attribute("aria-valuenow"))) == 0
            status = box.inner_text()
            chosen_scale = scale.evaluate("s => s.options[s.selectedIndex].text").split(":")[0]
            assert f"scale {chosen_scale}, step 0" in status, (chosen_scale, status[-300:])
            _check_figures(out, 1, f"scene {label}")
        box.scroll_into_view_if_needed()
        _shot(page, "05_sweep")
    except Exception:
        _shot(page, "05_sweep_failed")
        raise
    finally:
        page.close()
