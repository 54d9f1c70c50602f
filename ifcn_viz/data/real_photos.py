"""The real-photograph yardstick: hand-drawn polygon masks on photographs that load offline.

Seven photographs bundled with scikit-image and matplotlib (nothing is downloaded), each with hand-drawn
polygon instance masks in ``ifcn_viz/data/yardsticks/real_photos.json`` (COCO instances format, one category
``object``: class-agnostic segment proposals, as COCO's AR).  How the polygons were drawn and what each one is
are in ``docs/REAL_PHOTOS.md``.  These photographs must never be used as training textures
(``tests/test_real_photos.py`` checks it by pixel content).

``write_real_photo_set(out_dir)`` writes the photographs as PNG next to a copy of the annotation file, so that::

    ifcn-viz eval --coco-gt OUT/real_photos.json --image-dir OUT/images
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

ANNOTATIONS_FILE = "real_photos.json"


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        return np.asarray(getattr(skimage.data, name)())

    load.__doc__ = f"skimage.data.{name}()"
    return load


def _motorcycle_left() -> np.ndarray:
    """skimage.data.stereo_motorcycle()[0]"""
    import skimage.data

    return np.asarray(skimage.data.stereo_motorcycle()[0])


def _matplotlib(file_name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import matplotlib.cbook
        from PIL import Image

        with matplotlib.cbook.get_sample_data(file_name, asfileobj=True) as fh:
            data = fh.read()
        img = Image.open(io.BytesIO(data))
        if img.mode in ("RGBA", "LA", "P"):  # the present is drawn on a transparent background: put it on white
            rgba = img.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            img = Image.alpha_composite(white, rgba)
        return np.asarray(img.convert("RGB"))

    load.__doc__ = f"matplotlib.cbook.get_sample_data({file_name!r}) (alpha composited on white)"
    return load


# name -> loader; the name plus ".png" is the image's file_name in the annotation file.
REAL_PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _skimage("astronaut"),
    "coffee": _skimage("coffee"),
    "chelsea": _skimage("chelsea"),
    "rocket": _skimage("rocket"),
    "motorcycle_left": _motorcycle_left,
    "grace_hopper": _matplotlib("grace_hopper.jpg"),
    "minduka_present": _matplotlib("Minduka_Present_Blue_Pack.png"),
}


def load_real_photo(name: str) -> np.ndarray:
    """The photograph ``name`` (a key of :data:`REAL_PHOTOS`) as an ``(H, W, 3)`` uint8 array, loaded offline."""
    if name not in REAL_PHOTOS:
        raise KeyError(f"unknown real photo {name!r}; known: {', '.join(REAL_PHOTOS)}")
    img = np.asarray(REAL_PHOTOS[name]())
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


def real_photo_annotations_path() -> Path:
    """The bundled COCO instances file of the real-photograph set."""
    return Path(__file__).resolve().parent / "yardsticks" / ANNOTATIONS_FILE


def write_real_photo_set(out_dir: str | Path) -> tuple[Path, Path]:
    """Write every photograph as ``OUT/images/<name>.png`` and the annotations as ``OUT/real_photos.json``.

    Returns ``(image_dir, annotation_path)``, ready for ``ifcn-viz eval --coco-gt ANN --image-dir DIR``.
    """
    from PIL import Image

    out_dir = Path(out_dir)
    image_dir = out_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    for name in REAL_PHOTOS:
        Image.fromarray(load_real_photo(name)).save(image_dir / f"{name}.png")
    ann_path = out_dir / ANNOTATIONS_FILE
    shutil.copyfile(real_photo_annotations_path(), ann_path)
    return image_dir, ann_path


def render_real_photo_sheet(out_path: str | Path, row_height: int = 300, width: int = 1500) -> Path:
    """A contact sheet of every photograph with its polygons outlined and numbered by annotation id.

    Writes ``docs/gallery/real_photos.png`` with ``render_real_photo_sheet("docs/gallery/real_photos.png")``.
    """
    import json

    from PIL import Image, ImageDraw, ImageFont
    from pycocotools import mask as mask_utils
    from scipy import ndimage

    with open(real_photo_annotations_path()) as fh:
        data = json.load(fh)
    palette = [(255, 64, 64), (64, 255, 64), (64, 160, 255), (255, 230, 0), (255, 64, 255), (0, 255, 255),
               (255, 150, 0), (170, 100, 255)]  # fmt: skip
    try:
        font = ImageFont.load_default(size=15)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    tiles = []
    for info in data["images"]:
        name = info["file_name"].removesuffix(".png")
        img = load_real_photo(name)
        h, w = img.shape[:2]
        s = row_height / h
        tile = Image.fromarray(img).resize((round(w * s), row_height), Image.Resampling.LANCZOS).convert("RGBA")
        over = Image.new("RGBA", tile.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(over)
        anns = [a for a in data["annotations"] if a["image_id"] == info["id"]]
        anns.sort(key=lambda a: -a["area"])  # big ones first, so small ones stay visible on top
        masks = [mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(a["segmentation"], h, w))) > 0 for a in anns]
        labels = []
        for k, a in enumerate(anns):
            colour = palette[a["id"] % len(palette)]
            for poly in a["segmentation"]:
                pts = [(x * s, y * s) for x, y in zip(poly[0::2], poly[1::2])]
                draw.line(pts + [pts[0]], fill=colour + (255,), width=2)
            m = masks[k].copy()
            for smaller in masks[k + 1 :]:  # label a part-holding object (a person, a cup) off its parts
                if (m & ~smaller).sum() > 0.2 * m.sum():
                    m &= ~smaller
            dist = ndimage.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1]
            cy, cx = np.unravel_index(np.argmax(dist), dist.shape)  # the point deepest inside the mask
            labels.append((cx * s, cy * s, str(a["id"]), colour))
        for x, y, text, colour in labels:
            draw.text((x, y), text, fill=(255, 255, 255, 255), font=font, anchor="mm", stroke_width=3,
                      stroke_fill=colour[:3] + (255,) if sum(colour) < 400 else (0, 0, 0, 255))  # fmt: skip
        draw.text((6, 4), f"{name} ({len(anns)})", fill=(255, 255, 255, 255), font=font, stroke_width=3,
                  stroke_fill=(0, 0, 0, 255))  # fmt: skip
        tiles.append(Image.alpha_composite(tile, over).convert("RGB"))
    rows, row, used = [], [], 0
    gap = 6
    for tile in tiles:
        if row and used + gap + tile.width > width:
            rows.append(row)
            row, used = [], 0
        row.append(tile)
        used += tile.width + (gap if len(row) > 1 else 0)
    rows.append(row)
    sheet_w = max(sum(t.width for t in r) + gap * (len(r) - 1) for r in rows)
    sheet = Image.new("RGB", (sheet_w, len(rows) * row_height + gap * (len(rows) - 1)), (255, 255, 255))
    for i, r in enumerate(rows):
        x = 0
        for t in r:
            sheet.paste(t, (x, i * (row_height + gap)))
            x += t.width + gap
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out_path, optimize=True)
    if out_path.stat().st_size > 500_000:  # keep the gallery light: a 256-colour palette, dithered
        sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(
            out_path, optimize=True
        )
    return out_path
