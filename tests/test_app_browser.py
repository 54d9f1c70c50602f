"""A real browser (Playwright + Debian's /usr/bin/chromium) on a launched server: upload, see the maps, click
and see the window, a bad upload explained in the page, every tab.  Screenshots go to test-artifacts/.

Skipped when /usr/bin/chromium is missing, unless IFCN_REQUIRE_BROWSER=1 (CI), which makes that a failure.
Never runs ``playwright install``: it drives the system Chromium.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from _app_helpers import bad_input_corpus, free_port, paint, png_bytes, sample_image, small_predictor

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def launch_chromium(pw):
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("IFCN_REQUIRE_BROWSER") == "1":
            pytest.fail(f"IFCN_REQUIRE_BROWSER=1 but {CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = launch_chromium(pw)
        yield b
        b.close()


@pytest.fixture(scope="module")
def url():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from ifcn_viz.app import build_demo, launch

    demo = build_demo(small_predictor(0))
    port = free_port()
    launch(demo, port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"app_{name}.png"), full_page=True)


def img_src(page, selector: str) -> str | None:
    loc = page.locator(f"{selector} img")
    return loc.first.get_attribute("src") if loc.count() else None


def wait_new_src(page, selector: str, old: str | None, timeout: float = 60.0) -> str:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        src = img_src(page, selector)
        if src and src != old:
            return src
        page.wait_for_timeout(100)
    raise AssertionError(f"{selector} did not show a new image within {timeout} s")


def click_image(page, selector: str, fx: float, fy: float) -> None:
    img = page.locator(f"{selector} img").first
    box = img.bounding_box()
    img.click(position={"x": box["width"] * fx, "y": box["height"] * fy})


def click_until_new(page, image_sel: str, view_sel: str, fx: float, fy: float, old=None, tries: int = 6) -> str:
    """Click a picture until ``view_sel`` shows a new image: right after a tab switch the picture may not
    have its click handler yet (and a loaded machine makes that window longer)."""
    page.wait_for_selector(f"{image_sel} img", state="visible", timeout=60_000)
    for _ in range(tries - 1):
        click_image(page, image_sel, fx, fy)
        try:
            return wait_new_src(page, view_sel, old, timeout=10.0)
        except AssertionError:
            continue
    click_image(page, image_sel, fx, fy)
    return wait_new_src(page, view_sel, old)


def test_explore_click_and_tabs(browser, url, tmp_path):
    good = tmp_path / "scene.png"
    good.write_bytes(png_bytes(sample_image(3, 200, 260)))
    bad = bad_input_corpus(tmp_path / "bad")["notes.txt"].path
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    page.goto(url)
    page.wait_for_selector("#upload input[type=file]", state="attached", timeout=60_000)
    assert "InstanceFCN explorer" in page.inner_text("body")

    # a bad upload: a clear message in the page, and the page keeps working
    page.set_input_files("#upload input[type=file]", str(bad))
    page.wait_for_function("document.querySelector('#status').innerText.includes('not an image')", timeout=60_000)
    shot(page, "bad_upload")
    status = page.inner_text("#status")
    assert "Traceback" not in page.inner_text("body") and "notes.txt" in status and "/tmp/" not in status

    # a good upload (through the second picture input): maps appear
    page.set_input_files("#paste input[type=file]", str(good))
    wait_new_src(page, "#mosaic", None)
    for sel in ("#objectness", "#proposals", "#ex_image"):
        assert img_src(page, sel), sel
    page.wait_for_function("document.querySelector('#status').innerText.includes('fingerprint')", timeout=30_000)
    assert "260 x 200 px" in page.inner_text("#status")
    shot(page, "explore")

    # click the image: the window view appears, and a second click changes it
    first = click_until_new(page, "#ex_image", "#ex_window", 0.3, 0.4)
    click_image(page, "#ex_image", 0.8, 0.7)
    wait_new_src(page, "#ex_window", first)
    shot(page, "explore_click")

    # Assemble: click, the frame and the finished window appear; step changes the frame
    page.get_by_role("tab", name="Assemble").click()
    frame = click_until_new(page, "#as_image", "#as_frame", 0.5, 0.5)
    wait_new_src(page, "#as_view", None)
    page.click("#as_next")  # from the last frame back to step 0
    wait_new_src(page, "#as_frame", frame)
    assert "Step 0" in page.inner_text("#as_caption")
    shot(page, "assemble")

    page.get_by_role("tab", name="Provenance").click()
    click_until_new(page, "#pv_image", "#pv_view", 0.4, 0.6)
    shot(page, "provenance")

    page.get_by_role("tab", name="Compare").click()
    page.click("#cmp_btn")
    wait_new_src(page, "#cmp_ivl", None)
    wait_new_src(page, "#cmp_k", None)
    shot(page, "compare")

    page.get_by_role("tab", name="Model").click()
    assert "In use" in page.inner_text("#md_info")
    page.get_by_role("tab", name="Train").click()
    assert page.locator("#tr_start").is_visible()
    shot(page, "train")
    page.get_by_role("tab", name="About").click()
    page.wait_for_selector("text=01_why_instance_sensitive.ipynb")
    shot(page, "about")
    assert not errors, errors
    page.close()


def test_live_training_in_the_page(browser, url):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    page.wait_for_selector("#upload input[type=file]", state="attached", timeout=60_000)
    page.get_by_role("tab", name="Train").click()
    page.locator("#tr_start").click()
    page.wait_for_function("document.querySelector('#tr_status').innerText.includes('step 5 /')", timeout=120_000)
    wait_new_src(page, "#tr_maps", None)
    page.click("#tr_stop")
    page.wait_for_function("document.querySelector('#tr_status').innerText.includes('Stopped')", timeout=30_000)
    shot(page, "train_live")
    page.click("#tr_use")
    page.wait_for_function("document.querySelector('#status').innerText.includes('the model you trained')",
                           timeout=60_000)  # fmt: skip
    page.get_by_role("tab", name="Model").click()
    assert "your model" in page.inner_text("#md_info")
    page.close()


def image_box(page) -> dict:
    """Where the background image lies on the editor's canvas: centred, fitted (the editor's default view)."""
    canvas = page.locator("#dr_editor canvas").first.bounding_box()
    h = canvas["height"] * 0.9
    w = h * 4 / 3  # the test photo is 4:3
    return {"x": canvas["x"] + (canvas["width"] - w) / 2, "y": canvas["y"] + (canvas["height"] - h) / 2,
            "width": w, "height": h}  # fmt: skip


def test_draw_two_touching_instances_and_inspect(browser, url, tmp_path):
    import skimage.data
    from PIL import Image

    t0 = time.monotonic()

    def mark(what: str) -> None:
        print(f"{time.monotonic() - t0:7.1f} s  {what}", flush=True)

    photo = tmp_path / "coffee.png"
    Image.fromarray(skimage.data.coffee()).resize((320, 240)).save(photo)
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("#upload input[type=file]", state="attached", timeout=60_000)
    page.set_input_files("#upload input[type=file]", str(photo))
    wait_new_src(page, "#mosaic", None)
    mark("uploaded")

    # the large single map: click a map of the mosaic
    click_until_new(page, "#mosaic", "#ex_map", 0.5, 0.45)
    mark("large map")

    page.get_by_role("tab", name="Draw").click()
    page.wait_for_selector("#dr_editor canvas", state="visible", timeout=60_000)
    page.wait_for_timeout(1500)  # the editor loads the image
    box = image_box(page)
    paint(page, box, 0.25, 0.5, 0.3, 0.7)  # instance 0 in the first brush colour ...
    page.locator("#dr_editor button[aria-label='Color']").first.click()
    page.locator("#dr_editor button.color").nth(1).click()
    paint(page, box, 0.5, 0.72, 0.35, 0.75)  # ... instance 1, touching it, in the second
    mark("painted")
    page.click("#dr_show")
    page.wait_for_function("document.querySelector('#status').innerText.includes('2 instances (drawn)')",
                           timeout=120_000)  # fmt: skip
    ideal = wait_new_src(page, "#dr_ideal", None)
    wait_new_src(page, "#dr_k", None)
    wait_new_src(page, "#dr_learned", None)
    page.wait_for_timeout(1000)
    shot(page, "draw")
    mark("draw views")
    # a click on the instances picture assembles the window there from the ideal maps
    click_until_new(page, "#dr_instances", "#dr_ideal", 0.62, 0.45, old=ideal)
    page.wait_for_timeout(1000)
    shot(page, "draw_click")
    mark("draw click")
    assert page.locator("#dr_download").is_enabled()

    page.get_by_role("tab", name="Inspect").click()
    page.click("#in_btn")
    wait_new_src(page, "#in_funnel", None)
    wait_new_src(page, "#in_missed", None)  # the drawn instances are the ground truth
    nms = wait_new_src(page, "#in_nms", None)
    page.click("#in_next")
    wait_new_src(page, "#in_nms", nms)
    assert "against its known instances (drawn)" in page.inner_text("#status")
    page.wait_for_timeout(1000)
    shot(page, "inspect")
    mark("inspect")
    assert not errors, errors
    page.close()
