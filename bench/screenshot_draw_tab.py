"""The README's picture of the Draw tab: the app with the shipped model in a real browser (Playwright +
/usr/bin/chromium), scikit-image's astronaut opened as an example, two touching instances painted with the brush
(the astronaut's head, then her body below it, in the first two brush colours), *Show the maps of my drawing*
pressed, and the tab (the editor, your instances, their ideal maps) captured to ``docs/draw_tab.png``.

Usage: PYTHONPATH=. python bench/screenshot_draw_tab.py [--out docs/draw_tab.png]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _app_helpers import paint  # noqa: E402  (the browser test's own brush stroke)

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/draw_tab.png")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from ifcn_viz.app import build_demo, launch

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = build_demo()
    launch(demo, port=port, prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                   args=["--no-sandbox", "--disable-gpu"])  # fmt: skip
            page = b.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#example input", timeout=120_000)
            page.click("#example input")
            page.get_by_role("option", name="photo: astronaut").click()
            page.wait_for_function("document.querySelector('#status').innerText.includes('fingerprint')",
                                   timeout=120_000)  # fmt: skip
            page.get_by_role("tab", name="Draw").click()
            page.wait_for_selector("#dr_editor canvas", state="visible", timeout=60_000)
            page.wait_for_timeout(2000)
            c = page.locator("#dr_editor canvas").first.bounding_box()
            zoom = float(re.search(r"(\d+)%", page.inner_text("#dr_editor")).group(1)) / 100
            side = 512 * zoom  # the 512 x 512 photo at the editor's zoom, centred on the canvas
            box = {"x": c["x"] + (c["width"] - side) / 2, "y": c["y"] + (c["height"] - side) / 2, "width": side,
                   "height": side}  # fmt: skip
            paint(page, box, 0.36, 0.58, 0.06, 0.36, step=14.0, steps=4)  # the astronaut's head ...
            page.locator("#dr_editor button[aria-label='Color']").first.click()
            page.locator("#dr_editor button.color").nth(1).click()
            page.mouse.click(c["x"] + 5, c["y"] + c["height"] - 5)  # close the palette (outside the image)
            paint(page, box, 0.22, 0.62, 0.40, 0.95, step=14.0, steps=4)  # ... and the body below it, touching
            page.click("#dr_show")
            page.wait_for_function("document.querySelector('#status').innerText.includes('instances (drawn)')",
                                   timeout=300_000)  # fmt: skip
            page.wait_for_function(
                "['#dr_instances', '#dr_ideal'].every(s => document.querySelector(s + ' img') && "
                "!document.querySelector(s).innerText.includes('processing'))",
                timeout=300_000,
            )
            page.wait_for_timeout(2000)
            top = page.locator("#dr_editor").bounding_box()["y"] - 10
            bottom = page.locator("#dr_ideal").bounding_box()
            tmp = Path(args.out).with_suffix(".full.png")
            page.screenshot(path=str(tmp), full_page=True)
            b.close()
        im = Image.open(tmp)
        im.crop((0, max(0, int(top)), im.width, int(bottom["y"] + bottom["height"]))).save(args.out, optimize=True)
        tmp.unlink()
        print(f"wrote {args.out}")
    finally:
        demo.close()


if __name__ == "__main__":
    main()
