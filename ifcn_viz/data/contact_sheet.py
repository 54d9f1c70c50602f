"""A contact sheet of synthetic scenes with their instance outlines, to look at what the generator makes.

    python -m ifcn_viz.data.contact_sheet --out docs/gallery/synthetic_scenes.png
    python -m ifcn_viz.data.contact_sheet --style emoji:1 --out docs/gallery/emoji_scenes.png

draws 12 training-style scenes (first three rows) and 8 independent-yardstick scenes (last two rows, framed in
white), each object outlined in its own colour; with ``--style`` 12 scenes of that style instead (the second line:
every group drawn from emoji, docs/TRAINING.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from ifcn_viz.data.synthetic import generate_scene


def outlined(image: np.ndarray, masks: np.ndarray, width: int = 1) -> np.ndarray:
    """``image`` with every mask's boundary drawn in a distinct saturated colour."""
    out = image.copy()
    for k, mk in enumerate(masks):
        edge = mk & ~ndimage.binary_erosion(mk, iterations=width)
        hue = (k * 0.618034) % 1.0
        rgb = np.clip(np.abs(((hue * 6 + np.array([0, 4, 2])) % 6) - 3) - 1, 0, 1)
        out[edge] = (rgb * 255).astype(np.uint8)
    return out


def contact_sheet(
    train_seeds=range(12),
    independent_seeds=range(8),
    size: int = 192,
    cols: int = 4,
    seed: int = 5,
    style: str = "train",
) -> Image.Image:
    tiles = [(style, s) for s in train_seeds] + [("independent", s) for s in independent_seeds]
    rows = -(-len(tiles) // cols)
    pad = 4
    sheet = Image.new("RGB", (cols * (size + pad) + pad, rows * (size + pad) + pad), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for t, (style, s) in enumerate(tiles):
        image, masks = generate_scene((seed, s), (size, size), style=style)
        r, c = divmod(t, cols)
        x, y = pad + c * (size + pad), pad + r * (size + pad)
        sheet.paste(Image.fromarray(outlined(image, masks)), (x, y))
        if style == "independent":
            draw.rectangle([x - 2, y - 2, x + size + 1, y + size + 1], outline=(255, 255, 255), width=2)
    return sheet


def _main() -> None:
    ap = argparse.ArgumentParser(prog="python -m ifcn_viz.data.contact_sheet")
    ap.add_argument("--out", type=Path, default=Path("docs/gallery/synthetic_scenes.png"))
    ap.add_argument("--style", help="12 scenes of this style only (e.g. emoji, emoji:1; default: the two styles)")
    args = ap.parse_args()
    sheet = contact_sheet() if args.style is None else contact_sheet(style=args.style, independent_seeds=())
    sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    _main()
