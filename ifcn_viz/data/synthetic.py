"""Seeded synthetic scenes of touching, same-textured objects, with domain randomisation (ours).

Why this data: InstanceFCN's point (paper, Sec. 1 and Fig. 1) is that a *semantic* FCN cannot split two
touching objects of the same kind, while instance-sensitive score maps can.  So every scene holds, on purpose,
groups of 2-4 **touching objects cut from the same texture** (no visible edge between them), next to single
objects, partial occlusion (only visible masks are kept), and object sizes over four octaves.

Everything else is randomised so that a model trained on it does not learn one generator's look:

* **shape families** (:data:`SHAPE_FAMILIES`): ellipses, rectangles, random polygons, smooth blobs, concave
  radial shapes, stars, shapes with thin limbs, superellipses, rounded rectangles -- and three families kept
  for the independent yardstick only (crescents, crosses, hearts);
* **texture sources** (:data:`TEXTURE_SOURCES`): crops of scikit-image photographs, fractal noise, stripes,
  gradients, checks -- and, held out, dots, rings and two held-out photographs;
* **backgrounds** (:data:`BACKGROUND_STYLES`): a blurred photograph, a procedural texture, clutter (many small
  unlabelled fragments over a texture), a flat shaded colour -- and, held out, Voronoi tiles and bokeh;
* **emoji** (optional, :mod:`ifcn_viz.data.glyphs`): with a style's ``emoji_fraction`` > 0 (style ``"emoji"``),
  that share of the groups are touching copies of one picture of a real thing (people, animals, food, plants,
  vehicles, objects) from the Noto Color Emoji and Symbola fonts, in their own colours or as textured silhouettes;
* **effects**: illumination gradients, soft drop shadows, per-group shading, defocus and motion blur, sensor
  noise, JPEG artefacts, colour jitter (brightness, contrast, saturation, gamma).

What may be drawn is a :class:`SceneStyle`: :data:`TRAIN_STYLE` (the default, used for training),
:data:`EMOJI_STYLE` (the same with half of the groups from emoji) and :data:`INDEPENDENT_STYLE` (the independent
yardstick: only held-out families, textures and backgrounds).
The photographs of the real-photograph test set (:data:`HELD_OUT_PHOTOS`) are never textures of any style.

Reproducibility: ``generate_scene(seed)`` is a pure function of ``seed`` (an int or a tuple of ints, fed to
``np.random.default_rng``) and the style; every random choice is drawn from that one generator.  Scene ``i`` of a
:class:`SyntheticDataset` with seed ``S`` is ``generate_scene((S, i))``, so two datasets with different seeds
never share a scene.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage

# The photographs of the real-photograph test set: never a texture of any style.  ``cat`` is
# scikit-image's other name for ``chelsea``; ``motorcycle_right`` is the stereo twin of ``motorcycle_left``.
HELD_OUT_PHOTOS: tuple[str, ...] = (
    "astronaut",
    "coffee",
    "chelsea",
    "cat",
    "rocket",
    "motorcycle_left",
    "motorcycle_right",
    "stereo_motorcycle",
    "grace_hopper",
    "Minduka_Present_Blue_Pack",
)

# Photographs used as training textures (all load offline from scikit-image).
TEXTURE_NAMES: tuple[str, ...] = (
    "camera",
    "coins",
    "hubble_deep_field",
    "immunohistochemistry",
    "brick",
    "grass",
    "gravel",
    "retina",
    "colorwheel",
    "moon",
    "page",
    "text",
    "logo",
)
# Photographs only the independent yardstick uses (never training textures).
INDEPENDENT_PHOTOS: tuple[str, ...] = ("clock", "cell")

TRAIN_SHAPES: tuple[str, ...] = (
    "ellipse",
    "rectangle",
    "polygon",
    "blob",
    "concave",
    "star",
    "thin",
    "superellipse",
    "rounded_rect",
)
HELD_OUT_SHAPES: tuple[str, ...] = ("crescent", "cross", "heart")
SHAPE_FAMILIES: tuple[str, ...] = TRAIN_SHAPES + HELD_OUT_SHAPES
SHAPES = TRAIN_SHAPES  # the name older code imports

TRAIN_TEXTURES: tuple[str, ...] = ("photo", "noise", "stripes", "gradient", "checks")
HELD_OUT_TEXTURES: tuple[str, ...] = ("dots", "rings", "independent_photo")
TEXTURE_SOURCES: tuple[str, ...] = TRAIN_TEXTURES + HELD_OUT_TEXTURES

TRAIN_BACKGROUNDS: tuple[str, ...] = ("photo", "procedural", "clutter", "flat")
HELD_OUT_BACKGROUNDS: tuple[str, ...] = ("voronoi", "bokeh")
BACKGROUND_STYLES: tuple[str, ...] = TRAIN_BACKGROUNDS + HELD_OUT_BACKGROUNDS

REFERENCE_SIDE = 256  # object sizes are given for a 256-pixel shorter side and scale with the image


@dataclass(frozen=True)
class SceneStyle:
    """What a scene may be drawn from.  Sizes are larger sides in pixels for a 256-px shorter side.

    * ``shapes`` / ``textures`` / ``backgrounds``: the families, texture sources and background styles drawn
      uniformly per object / per group / per scene.
    * ``size_range``: smallest and largest object side; ``window_fraction`` of the groups draw their size from
      ``window_sizes`` instead (the band where, after the tiny recipe's scale jitter, objects are positives of
      the 168-px window: 68..136 px, see :mod:`ifcn_viz.train.targets`), the rest log-uniformly over
      ``size_range``.
    * ``objects``: object count range of an ordinary scene; ``crowd_fraction`` of the scenes are crowded, with
      ``crowd_objects`` objects drawn from ``crowd_sizes``.
    * ``effects``: whether the photometric effects (lighting, shadows, blur, noise, JPEG, colour jitter) apply.
    * ``emoji_fraction``: the share of groups drawn from a real-world glyph (:mod:`ifcn_viz.data.glyphs`): 2-4
      copies of one emoji (people in varied skin tones; each mirrored, turned and sized on its own); of those
      groups ``emoji_colour`` are painted in the emoji's own colours, the rest are its silhouette (Noto's alpha or
      Symbola's filled drawing) cut from the group's texture.  Without a font these groups use ``shapes``.
    """

    name: str = "train"
    shapes: tuple[str, ...] = TRAIN_SHAPES
    textures: tuple[str, ...] = TRAIN_TEXTURES
    backgrounds: tuple[str, ...] = TRAIN_BACKGROUNDS
    photos: tuple[str, ...] = TEXTURE_NAMES
    size_range: tuple[float, float] = (16.0, 256.0)  # four octaves
    window_sizes: tuple[float, float] = (64.0, 150.0)
    window_fraction: float = 0.5
    objects: tuple[int, int] = (2, 10)
    crowd_fraction: float = 0.25
    crowd_objects: tuple[int, int] = (10, 30)
    crowd_sizes: tuple[float, float] = (16.0, 72.0)
    touching_fraction: float = 0.65
    group_size: tuple[int, int] = (2, 4)
    min_visible: float = 0.45
    effects: bool = True
    emoji_fraction: float = 0.0
    emoji_colour: float = 0.5

    def __post_init__(self) -> None:
        for field, allowed in (
            ("shapes", SHAPE_FAMILIES),
            ("textures", TEXTURE_SOURCES),
            ("backgrounds", BACKGROUND_STYLES),
        ):
            values = getattr(self, field)
            if not values or any(v not in allowed for v in values):
                raise ValueError(f"{field} must be a non-empty subset of {allowed}, got {values!r}")
        bad = [p for p in self.photos if p in HELD_OUT_PHOTOS]
        if bad:
            raise ValueError(f"{bad} belong to the real-photograph test set and are never textures")
        if not 4 <= self.size_range[0] <= self.size_range[1]:
            raise ValueError(f"size_range must be (min, max) with 4 <= min <= max, got {self.size_range}")
        if not 1 <= self.objects[0] <= self.objects[1] or not 1 <= self.crowd_objects[0] <= self.crowd_objects[1]:
            raise ValueError(f"object counts must be (min, max) with 1 <= min <= max, got {self.objects}")
        if not (0 <= self.emoji_fraction <= 1 and 0 <= self.emoji_colour <= 1):
            raise ValueError(f"emoji_fraction and emoji_colour must be in [0, 1], got {self.emoji_fraction}, "
                             f"{self.emoji_colour}")  # fmt: skip

    def replace(self, **changes) -> SceneStyle:
        return dataclasses.replace(self, **changes)


TRAIN_STYLE = SceneStyle()
INDEPENDENT_STYLE = SceneStyle(
    name="independent",
    shapes=HELD_OUT_SHAPES,
    textures=HELD_OUT_TEXTURES,
    backgrounds=HELD_OUT_BACKGROUNDS,
    photos=INDEPENDENT_PHOTOS,
    size_range=(24.0, 200.0),
    objects=(2, 9),
    crowd_fraction=0.2,
    crowd_objects=(8, 16),
    crowd_sizes=(24.0, 64.0),
)
EMOJI_FRACTION = 0.5  # the "emoji" style's share of emoji groups
EMOJI_STYLE = TRAIN_STYLE.replace(name="emoji", emoji_fraction=EMOJI_FRACTION)
STYLES: dict[str, SceneStyle] = {"train": TRAIN_STYLE, "independent": INDEPENDENT_STYLE, "emoji": EMOJI_STYLE}


def get_style(style: str | SceneStyle | None) -> SceneStyle:
    """A :class:`SceneStyle`, or one by name: ``"train"``, ``"independent"``, ``"emoji"`` (the training style with
    :data:`EMOJI_FRACTION` of its groups drawn from emoji), or ``"emoji:F"`` for another share ``F`` in [0, 1]."""
    if style is None:
        return TRAIN_STYLE
    if isinstance(style, SceneStyle):
        return style
    if isinstance(style, str) and style.startswith("emoji:"):
        try:
            fraction = float(style.split(":", 1)[1])
        except ValueError:
            fraction = -1.0
        if not 0 <= fraction <= 1:
            raise ValueError(f"scene style {style!r}: the emoji share after 'emoji:' must be a number in [0, 1]")
        return EMOJI_STYLE.replace(name=f"emoji:{fraction:g}", emoji_fraction=fraction)
    if style not in STYLES:
        raise ValueError(f"unknown scene style {style!r}; choose one of {tuple(STYLES)} or 'emoji:F'")
    return STYLES[style]


def _load_photo(name: str) -> np.ndarray:
    import skimage.data

    if name in HELD_OUT_PHOTOS:
        raise ValueError(f"{name!r} belongs to the real-photograph test set and is never a texture")
    img = np.asarray(getattr(skimage.data, name)())
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


@functools.lru_cache(maxsize=4)
def _photos(names: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    return tuple(_load_photo(n) for n in names)


def load_textures(names: Sequence[str] = TEXTURE_NAMES) -> tuple[np.ndarray, ...]:
    """The named scikit-image photographs (default: the training textures) as uint8 H x W x 3 arrays."""
    return _photos(tuple(names))


# ----------------------------------------------------------------------------------------------- textures


def _colour(rng: np.random.Generator) -> np.ndarray:
    """A random RGB colour in [0, 1] (uniform hue, varied saturation and value)."""
    h, s, v = rng.random(), rng.uniform(0.15, 1.0), rng.uniform(0.2, 1.0)
    i, f = int(h * 6) % 6, h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i], dtype=np.float32)


def _coords(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates rotated by a random angle: (u, v) each [H, W] float32."""
    ang = rng.uniform(0, np.pi)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    c, s = np.float32(np.cos(ang)), np.float32(np.sin(ang))
    return x * c + y * s, -x * s + y * c


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    return a[None, None] * (1 - t[..., None]) + b[None, None] * t[..., None]


def _fractal_noise(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """Smooth value noise in [0, 1]: octaves of bicubically upsampled random grids."""
    out = np.zeros((h, w), dtype=np.float32)
    cell, amp, total = max(4.0, rng.uniform(6, 40) * scale), 1.0, 0.0
    for _ in range(int(rng.integers(2, 5))):
        gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
        grid = Image.fromarray(rng.random((gh, gw), dtype=np.float32))
        out += amp * np.asarray(grid.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)
        total, amp, cell = total + amp, amp * rng.uniform(0.4, 0.7), cell / 2
    out /= total
    lo, hi = out.min(), out.max()
    return (out - lo) / max(hi - lo, 1e-6)


def _photo_crop(rng: np.random.Generator, photo: np.ndarray, h: int, w: int) -> np.ndarray:
    """A random crop of ``photo`` resized to ``h x w`` (float32, 0..1), with a random zoom and flip."""
    th, tw = photo.shape[:2]
    zoom = rng.uniform(0.3, 1.0)
    ch, cw = min(th, max(8, int(th * zoom))), min(tw, max(8, int(tw * zoom)))
    y0, x0 = rng.integers(0, th - ch + 1), rng.integers(0, tw - cw + 1)
    pil = Image.fromarray(photo[y0 : y0 + ch, x0 : x0 + cw]).resize((w, h), Image.Resampling.BILINEAR)
    patch = np.asarray(pil, dtype=np.float32) / 255.0
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    if rng.random() < 0.5:  # recolour grey photographs and shift colour ones
        patch = patch * rng.uniform(0.6, 1.3, 3).astype(np.float32)
    return np.ascontiguousarray(patch)


def make_texture(rng: np.random.Generator, source: str, h: int, w: int, style: SceneStyle, scale: float) -> np.ndarray:
    """An ``h x w x 3`` float32 texture in [0, 1] from ``source`` (one of :data:`TEXTURE_SOURCES`)."""
    a, b = _colour(rng), _colour(rng)
    if source in ("photo", "independent_photo"):
        names = style.photos if source == "photo" else INDEPENDENT_PHOTOS
        photos = _photos(tuple(names))
        tex = _photo_crop(rng, photos[int(rng.integers(len(photos)))], h, w)
    elif source == "noise":
        tex = _mix(a, b, _fractal_noise(rng, h, w, scale))
    elif source == "stripes":
        u, _ = _coords(rng, h, w)
        period = rng.uniform(4, 28) * scale
        t = np.sin(2 * np.pi * u / period + rng.uniform(0, 2 * np.pi))
        tex = _mix(a, b, 0.5 + 0.5 * np.tanh(t * rng.uniform(1, 8)))
    elif source == "gradient":
        u, _ = _coords(rng, h, w)
        t = (u - u.min()) / max(float(np.ptp(u)), 1e-6)
        tex = _mix(a, b, t ** rng.uniform(0.5, 2.0))
    elif source == "checks":
        u, v = _coords(rng, h, w)
        p = rng.uniform(5, 30) * scale
        tex = _mix(a, b, ((np.floor(u / p) + np.floor(v / p)) % 2).astype(np.float32))
    elif source == "dots":
        u, v = _coords(rng, h, w)
        p = rng.uniform(6, 24) * scale
        du, dv = (u / p) % 1 - 0.5, (v / p) % 1 - 0.5
        tex = _mix(a, b, (du * du + dv * dv < rng.uniform(0.03, 0.2)).astype(np.float32))
    elif source == "rings":
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        r = np.hypot(y - rng.uniform(0, h), x - rng.uniform(0, w))
        tex = _mix(a, b, 0.5 + 0.5 * np.sin(2 * np.pi * r / (rng.uniform(5, 25) * scale)))
    else:
        raise ValueError(f"unknown texture source {source!r}; choose one of {TEXTURE_SOURCES}")
    if source not in ("photo", "independent_photo") and rng.random() < 0.6:  # some grain on procedural textures
        tex = tex * (1 + rng.uniform(0.05, 0.3) * (_fractal_noise(rng, h, w, scale * 0.3)[..., None] - 0.5))
    return np.clip(tex, 0, 1).astype(np.float32)


# ------------------------------------------------------------------------------------------------- shapes


def _radial(t: np.ndarray, rad: np.ndarray) -> np.ndarray:
    return np.stack([rad * np.sin(t), rad * np.cos(t)], 1)


def shape_polygons(rng: np.random.Generator, shape: str, size: float) -> list[np.ndarray]:
    """Polygons ``[V, 2]`` (dy, dx) whose filled union is one object of family ``shape``, larger side ``size``."""
    t = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    polys: list[np.ndarray]
    if shape == "ellipse":
        polys = [np.stack([np.sin(t), rng.uniform(0.4, 1.0) * np.cos(t)], 1)]
    elif shape == "rectangle":
        hx = rng.uniform(0.35, 1.0)
        polys = [np.array([[-1, -hx], [-1, hx], [1, hx], [1, -hx]], dtype=np.float64)]
    elif shape == "polygon":
        nv = int(rng.integers(3, 9))
        tv = np.sort(rng.uniform(0, 2 * np.pi, nv))
        polys = [_radial(tv, rng.uniform(0.7, 1.0, nv))]
    elif shape == "blob":
        rad = np.ones_like(t)
        for harmonic in (2, 3, 4):
            rad += rng.uniform(0, 0.2) * np.cos(harmonic * t + rng.uniform(0, 2 * np.pi))
        polys = [_radial(t, rad)]
    elif shape == "concave":  # deep notches: a radial profile with a few sharp dips
        n = int(rng.integers(2, 5))
        depth = rng.uniform(0.35, 0.6)
        dips = np.abs(np.sin(n * t / 2 + rng.uniform(0, np.pi))) ** rng.uniform(0.3, 1.0)
        polys = [_radial(t, 1 - depth * (1 - dips))]
    elif shape == "star":
        n = int(rng.integers(4, 9))
        ts = np.linspace(0, 2 * np.pi, 2 * n, endpoint=False) + rng.uniform(0, np.pi)
        rad = np.where(np.arange(2 * n) % 2 == 0, 1.0, rng.uniform(0.3, 0.6))
        polys = [_radial(ts, rad)]
    elif shape == "thin":  # a body with 1-3 thin limbs (width 6-15 % of the size)
        body = rng.uniform(0.3, 0.55)
        polys = [np.stack([body * np.sin(t), body * rng.uniform(0.6, 1.0) * np.cos(t)], 1)]
        for _ in range(int(rng.integers(1, 4))):
            ang, wid, length = rng.uniform(0, 2 * np.pi), rng.uniform(0.06, 0.15), rng.uniform(0.7, 1.0)
            d, nrm = np.array([np.sin(ang), np.cos(ang)]), np.array([np.cos(ang), -np.sin(ang)])
            polys.append(np.array([wid * nrm, wid * nrm + length * d, -wid * nrm + length * d, -wid * nrm]))
    elif shape == "superellipse":
        n = rng.uniform(0.6, 5.0)
        c, s = np.cos(t), np.sin(t)
        polys = [
            np.stack([np.sign(s) * np.abs(s) ** (2 / n), rng.uniform(0.5, 1.0) * np.sign(c) * np.abs(c) ** (2 / n)], 1)
        ]
    elif shape == "rounded_rect":
        hx, r = rng.uniform(0.4, 1.0), rng.uniform(0.1, 0.4)
        r = min(r, hx * 0.95)
        pts = []
        for q, (sy, sx) in enumerate(((1, 1), (1, -1), (-1, -1), (-1, 1))):  # quarter circles, in angle order
            a = np.linspace(q * np.pi / 2, (q + 1) * np.pi / 2, 10)
            pts.append(np.stack([sy * (1 - r) + r * np.sin(a), sx * (hx - r) + r * np.cos(a)], 1))
        polys = [np.concatenate(pts)]
    elif shape == "crescent":
        c, r = rng.uniform(0.3, 0.6), rng.uniform(0.75, 0.95)
        x0 = (1 + c * c - r * r) / (2 * c)
        y0 = np.sqrt(max(1 - x0 * x0, 1e-6))
        alpha, phi = np.arctan2(y0, x0), np.arctan2(y0, x0 - c)
        outer = np.linspace(alpha, 2 * np.pi - alpha, 60)
        inner = np.linspace(-phi, phi - 2 * np.pi, 60)
        polys = [np.concatenate([np.stack([np.sin(outer), np.cos(outer)], 1),
                                 np.stack([r * np.sin(inner), c + r * np.cos(inner)], 1)])]  # fmt: skip
    elif shape == "cross":
        a, b = rng.uniform(0.15, 0.35), rng.uniform(0.15, 0.35)
        polys = [np.array([[-1, -a], [-1, a], [1, a], [1, -a]]), np.array([[-b, -1], [-b, 1], [b, 1], [b, -1]])]
    elif shape == "heart":
        x, y = 16 * np.sin(t) ** 3, -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        polys = [np.stack([y, x], 1)]
    else:
        raise ValueError(f"unknown shape {shape!r}; choose one of {SHAPE_FAMILIES}")
    angle = rng.uniform(0, 2 * np.pi)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    polys = [np.asarray(p, dtype=np.float64) @ rot.T for p in polys]
    allp = np.concatenate(polys)
    centre = (allp.max(0) + allp.min(0)) / 2
    extent = (allp.max(0) - allp.min(0)).max()
    return [(p - centre) * (size / max(extent, 1e-6)) for p in polys]  # larger side of the tight box == size


def _raster(polys: list[np.ndarray], cy: float, cx: float, h: int, w: int) -> np.ndarray:
    """The filled union of ``polys`` centred at (cy, cx) as an ``[H, W]`` bool mask (drawn in its box only)."""
    allp = np.concatenate(polys)
    y0, y1 = max(0, int(np.floor(allp[:, 0].min() + cy)) - 1), min(h, int(np.ceil(allp[:, 0].max() + cy)) + 2)
    x0, x1 = max(0, int(np.floor(allp[:, 1].min() + cx)) - 1), min(w, int(np.ceil(allp[:, 1].max() + cx)) + 2)
    out = np.zeros((h, w), dtype=bool)
    if y1 <= y0 or x1 <= x0:
        return out
    canvas = Image.new("1", (x1 - x0, y1 - y0), 0)
    draw = ImageDraw.Draw(canvas)
    for pts in polys:
        draw.polygon(np.stack([pts[:, 1] + (cx - x0), pts[:, 0] + (cy - y0)], 1).ravel().tolist(), fill=1)
    out[y0:y1, x0:x1] = np.asarray(canvas, dtype=bool)
    return out


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a float image in [0, 1] (``[H, W]`` or ``[H, W, 3]``) through Pillow, at 8 bits."""
    if sigma < 0.3:
        return img
    u8 = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    return np.asarray(Image.fromarray(u8).filter(ImageFilter.GaussianBlur(float(sigma))), dtype=np.float32) / 255


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s >= 32 for s in size):
        raise ValueError(f"size must be (H, W) with integers >= 32, got {size!r}")
    return int(size[0]), int(size[1])


# -------------------------------------------------------------------------------------------- backgrounds


def _background(rng: np.random.Generator, kind: str, h: int, w: int, style: SceneStyle, scale: float) -> np.ndarray:
    if kind == "photo":
        photos = _photos(tuple(style.photos))
        img = _photo_crop(rng, photos[int(rng.integers(len(photos)))], h, w)
        img = _blur(img, rng.uniform(1, 4))
    elif kind in ("procedural", "clutter"):
        img = make_texture(rng, str(rng.choice(["noise", "stripes", "gradient", "checks"])), h, w, style, scale)
        img = _blur(img, rng.uniform(0, 2.5))
        if kind == "clutter":  # many small unlabelled fragments: strokes, specks and small polygons
            pil = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
            draw = ImageDraw.Draw(pil)
            for _ in range(int(rng.integers(20, 80))):
                col = tuple(int(c) for c in (_colour(rng) * 255))
                y, x = rng.uniform(0, h), rng.uniform(0, w)
                r = rng.uniform(1.5, 7) * scale
                if rng.random() < 0.4:
                    ang = rng.uniform(0, 2 * np.pi)
                    ln = rng.uniform(6, 30) * scale
                    draw.line([(x, y), (x + ln * np.cos(ang), y + ln * np.sin(ang))], fill=col,
                              width=max(1, int(rng.uniform(1, 3) * scale)))  # fmt: skip
                else:
                    nv = int(rng.integers(3, 7))
                    ts = np.sort(rng.uniform(0, 2 * np.pi, nv))
                    draw.polygon([(x + r * np.cos(a), y + r * np.sin(a)) for a in ts], fill=col)
            img = np.asarray(pil, dtype=np.float32) / 255
    elif kind == "flat":
        img = np.broadcast_to(_colour(rng), (h, w, 3)).astype(np.float32)
    elif kind == "voronoi":
        n = int(rng.integers(8, 40))
        pts = rng.uniform(0, 1, (n, 2)) * (h, w)
        cols = np.stack([_colour(rng) for _ in range(n)])
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        lab = np.zeros((h, w), dtype=np.intp)
        best = np.full((h, w), np.inf, dtype=np.float32)
        for k, (py, px) in enumerate(pts):  # nearest seed point, one point at a time (no [H, W, n] array)
            d = (yy - py) ** 2 + (xx - px) ** 2
            closer = d < best
            lab[closer], best[closer] = k, d[closer]
        img = cols[lab].astype(np.float32)
    elif kind == "bokeh":
        img = np.broadcast_to(_colour(rng) * 0.4, (h, w, 3)).astype(np.float32).copy()
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        for _ in range(int(rng.integers(6, 20))):
            r = rng.uniform(8, 40) * scale
            disc = np.hypot(y - rng.uniform(0, h), x - rng.uniform(0, w)) < r
            img += disc[..., None] * _colour(rng) * rng.uniform(0.1, 0.4)
        img = _blur(img, 3 * scale)
    else:
        raise ValueError(f"unknown background {kind!r}; choose one of {BACKGROUND_STYLES}")
    return np.clip(img * rng.uniform(0.45, 0.95) + rng.uniform(0, 0.12, 3).astype(np.float32), 0, 1)


# ---------------------------------------------------------------------------------------------- layout


class _Local:
    """A shape rasterised once in its own box; placed by integer offsets (no re-drawing while sliding).

    From polygons, or (:meth:`from_mask`) from a mask and optionally its own colours (``rgb``, an emoji)."""

    rgb: np.ndarray | None = None

    @classmethod
    def from_mask(cls, mask: np.ndarray, rgb: np.ndarray | None = None) -> _Local:
        self = cls.__new__(cls)
        self.mask, self.rgb = mask, rgb
        self.sy, self.sx = mask.shape[0] // 2, mask.shape[1] // 2  # the box's centre goes where the object is placed
        return self

    def __init__(self, polys: list[np.ndarray]) -> None:
        allp = np.concatenate(polys)
        self.sy, self.sx = 1 - int(np.floor(allp[:, 0].min())), 1 - int(np.floor(allp[:, 1].min()))
        lh, lw = int(np.ceil(allp[:, 0].max())) + self.sy + 2, int(np.ceil(allp[:, 1].max())) + self.sx + 2
        canvas = Image.new("1", (lw, lh), 0)
        draw = ImageDraw.Draw(canvas)
        for pts in polys:
            draw.polygon(np.stack([pts[:, 1] + self.sx, pts[:, 0] + self.sy], 1).ravel().tolist(), fill=1)
        self.mask = np.asarray(canvas, dtype=bool)

    def _boxes(self, cy: float, cx: float, h: int, w: int):
        y0, x0 = int(round(cy)) - self.sy, int(round(cx)) - self.sx  # image position of the local box's corner
        lh, lw = self.mask.shape
        iy0, ix0, iy1, ix1 = max(0, y0), max(0, x0), min(h, y0 + lh), min(w, x0 + lw)
        return (slice(iy0, iy1), slice(ix0, ix1)), (slice(iy0 - y0, iy1 - y0), slice(ix0 - x0, ix1 - x0))

    def place(self, cy: float, cx: float, h: int, w: int) -> np.ndarray:
        out = np.zeros((h, w), dtype=bool)
        img_box, loc_box = self._boxes(cy, cx, h, w)
        if img_box[0].stop > img_box[0].start and img_box[1].stop > img_box[1].start:
            out[img_box] = self.mask[loc_box]
        return out

    def colours(self, cy: float, cx: float, h: int, w: int) -> tuple[tuple[slice, slice], np.ndarray] | None:
        """Where the object's own colours go in an ``h x w`` image, and those colours (None: no colours)."""
        if self.rgb is None:
            return None
        img_box, loc_box = self._boxes(cy, cx, h, w)
        return img_box, self.rgb[loc_box]

    def overlaps(self, cy: float, cx: float, other: np.ndarray) -> bool:
        img_box, loc_box = self._boxes(cy, cx, *other.shape)
        if img_box[0].stop <= img_box[0].start or img_box[1].stop <= img_box[1].start:
            return False
        return bool((self.mask[loc_box] & other[img_box]).any())


def _place_group(
    rng: np.random.Generator,
    style: SceneStyle,
    n: int,
    size0: float,
    h: int,
    w: int,
    glyph: tuple[str, str, str] | None = None,
    colours: list | None = None,
) -> list[np.ndarray]:
    """Full masks of ``n`` objects that touch: each new one slides towards the group until it overlaps it.

    With ``glyph`` = ``(font path, character, mode)`` every object is a copy of that glyph
    (:func:`ifcn_viz.data.glyphs.glyph_object`); in ``"colour"`` mode each object's ``(image box, colours)`` is
    appended to ``colours``."""
    from ifcn_viz.data import glyphs as G

    cy, cx = rng.uniform(0.1 * h, 0.9 * h), rng.uniform(0.1 * w, 0.9 * w)
    masks: list[np.ndarray] = []
    union = np.zeros((h, w), dtype=bool)
    for j in range(n):
        sz = size0 if j == 0 else size0 * float(np.exp(rng.uniform(-0.4, 0.4)))
        if glyph is not None:
            path, char, mode = glyph
            made = G.glyph_object(rng, path, G.glyph_text(rng, char, mode), mode, sz)
            if made is None:  # too small to keep a pixel
                break
            shape = _Local.from_mask(made[0], made[1] if mode == "colour" else None)
        else:
            shape = _Local(shape_polygons(rng, str(rng.choice(style.shapes)), sz))
        if j == 0:
            py, px = cy, cx
        else:  # bisect the distance along a random direction: the largest one at which the two overlap
            ang = rng.uniform(0, 2 * np.pi)
            dy, dx = np.sin(ang), np.cos(ang)
            gy, gx = np.argwhere(union).mean(0)
            hi = np.sqrt(union.sum() / np.pi) * 2 + sz  # surely apart
            lo = 0.0  # overlapping (from the group's centroid)
            for _ in range(8):
                mid = (lo + hi) / 2
                if shape.overlaps(gy + mid * dy, gx + mid * dx, union):
                    lo = mid
                else:
                    hi = mid
            py, px = gy + lo * dy, gx + lo * dx
        mask = shape.place(py, px, h, w)
        if mask.sum() < max(40, 0.6 * shape.mask.sum()):  # mostly outside the image
            break
        masks.append(mask)
        union |= mask
        if colours is not None:
            colours.append(shape.colours(py, px, h, w))
    return masks


def _choose_glyph(rng: np.random.Generator, style: SceneStyle) -> tuple[str, str, str] | None:
    """``(font path, character, mode)`` of one emoji group, or None without a font (warned once per process)."""
    from ifcn_viz.data import glyphs as G

    fonts = G.available_fonts()
    chars = fonts.glyphs
    if not chars:
        G.warn_missing_fonts()
        return None
    char = chars[int(rng.integers(len(chars)))]
    modes = []
    if char in fonts.emoji_glyphs:
        modes.append(("colour", style.emoji_colour, fonts.emoji))
        modes.append(("silhouette", (1 - style.emoji_colour) / 2, fonts.emoji))
    if char in fonts.symbol_glyphs and G.glyph(fonts.symbol, char, "symbol").size:
        modes.append(("symbol", (1 - style.emoji_colour) / 2, fonts.symbol))
    if not modes:  # Symbola draws it as open lines and Noto is absent
        return None
    weights = np.array([m[1] for m in modes], dtype=np.float64) + 1e-9
    mode, _, path = modes[int(rng.choice(len(modes), p=weights / weights.sum()))]
    return str(path), char, mode


def _object_size(rng: np.random.Generator, style: SceneStyle, crowded: bool) -> float:
    lo, hi = style.crowd_sizes if crowded else (
        style.window_sizes if rng.random() < style.window_fraction else style.size_range
    )  # fmt: skip
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


# --------------------------------------------------------------------------------------------- effects


def _effects(rng: np.random.Generator, image: np.ndarray, scale: float) -> np.ndarray:
    h, w = image.shape[:2]
    if rng.random() < 0.7:  # illumination: a smooth multiplicative field (linear ramp + radial falloff)
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        ang = rng.uniform(0, 2 * np.pi)
        ramp = ((x - w / 2) * np.cos(ang) + (y - h / 2) * np.sin(ang)) / max(h, w)
        r = np.hypot(y - rng.uniform(0, h), x - rng.uniform(0, w)) / max(h, w)
        field = 1 + rng.uniform(0, 0.8) * ramp - rng.uniform(0, 0.6) * r**2
        image = image * np.clip(field, 0.25, 1.6)[..., None]
    u = rng.random()
    if u < 0.25:  # defocus
        s = rng.uniform(0.5, 2.0) * scale
        image = _blur(image, s)
    elif u < 0.4:  # motion blur: a line kernel
        ln = int(rng.integers(3, 10))
        ang = rng.uniform(0, np.pi)
        k = np.zeros((ln, ln), dtype=np.float32)
        c = (ln - 1) / 2
        for tt in np.linspace(-c, c, 2 * ln):
            k[int(round(c + tt * np.sin(ang))), int(round(c + tt * np.cos(ang)))] = 1
        k /= k.sum()
        image = np.stack([ndimage.convolve(image[..., i], k, mode="nearest") for i in range(3)], -1)
    if rng.random() < 0.8:  # colour jitter: brightness, contrast, saturation, gamma
        image = np.clip(image, 0, 1)
        grey = image.mean(-1, keepdims=True)
        image = grey + (image - grey) * rng.uniform(0.3, 1.5)
        image = (image - 0.5) * rng.uniform(0.6, 1.3) + 0.5 + rng.uniform(-0.15, 0.15)
        image = np.clip(image, 0, 1) ** rng.uniform(0.7, 1.4)
    if rng.random() < 0.5:  # sensor noise: signal-dependent shot noise + read noise
        sigma = rng.uniform(0.005, 0.05)
        noise = rng.standard_normal(image.shape, dtype=np.float32)
        image = image + noise * (sigma * np.sqrt(np.clip(image, 0, 1) + 0.05))
    image_u8 = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
    if rng.random() < 0.4:  # JPEG artefacts
        buf = io.BytesIO()
        Image.fromarray(image_u8).save(buf, format="JPEG", quality=int(rng.integers(20, 90)))
        image_u8 = np.array(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return image_u8


def _shade(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A gentle linear shading field for one group's texture (shared by the group: no edge between members)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    return 1 + rng.uniform(0, 0.5) * ((x - w / 2) * np.cos(ang) + (y - h / 2) * np.sin(ang)) / max(h, w)


# ---------------------------------------------------------------------------------------------- scenes


def generate_scene(
    seed: int | Sequence[int],
    size: Sequence[int] = (256, 256),
    min_objects: int | None = None,
    max_objects: int | None = None,
    touching_fraction: float | None = None,
    min_visible: float | None = None,
    style: str | SceneStyle | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One scene: ``(image uint8 [H, W, 3], masks bool [N, H, W])`` with N >= 1 visible instances.

    ``style`` (a :class:`SceneStyle` or its name, default :data:`TRAIN_STYLE`) says what may be drawn; the other
    keywords override the style's object count (a scene then is never crowded), touching fraction and
    visibility threshold.  Objects are placed as *groups*: with probability ``touching_fraction`` a group is 2-4
    objects of the same texture (one crop, one shading) that touch (they overlap slightly, the later one
    occluding the earlier), otherwise a single object with its own texture.  Each mask is the *visible* part;
    an object left with less than ``min_visible`` of its area visible (or under 40 pixels) is removed before
    anything is painted, so every painted object pixel is labelled.  Sizes scale with ``min(H, W) / 256``.
    """
    h, w = _check_size(size)
    st = get_style(style)
    overrides: dict = {}
    if min_objects is not None or max_objects is not None:
        lo = st.objects[0] if min_objects is None else min_objects
        hi = max(lo, st.objects[1]) if max_objects is None else max_objects
        if not 1 <= lo <= hi:
            raise ValueError(f"need 1 <= min_objects <= max_objects, got {min_objects}, {max_objects}")
        overrides.update(objects=(lo, hi), crowd_fraction=0.0)
    if touching_fraction is not None:
        overrides["touching_fraction"] = touching_fraction
    if min_visible is not None:
        overrides["min_visible"] = min_visible
    if overrides:
        st = st.replace(**overrides)
    rng = np.random.default_rng(seed)
    scale = min(h, w) / REFERENCE_SIDE

    crowded = rng.random() < st.crowd_fraction
    target = int(rng.integers(*(st.crowd_objects if crowded else st.objects), endpoint=True))
    objects: list[tuple[np.ndarray, int]] = []  # (full mask, group)
    painted: list = []  # per object: None (the group's texture) or (image box, its own colours)
    n_groups = 0
    while len(objects) < target and n_groups < 3 * target + 4:
        n = int(rng.integers(*st.group_size, endpoint=True)) if rng.random() < st.touching_fraction else 1
        n = min(n, target - len(objects))
        glyph = None
        if st.emoji_fraction > 0 and rng.random() < st.emoji_fraction:  # no draw at 0: older styles are unchanged
            glyph = _choose_glyph(rng, st)
        colours: list = []
        masks = _place_group(rng, st, n, _object_size(rng, st, crowded) * scale, h, w, glyph, colours)
        objects.extend((mk, n_groups) for mk in masks)
        painted.extend(colours if glyph is not None and glyph[2] == "colour" else [None] * len(masks))
        n_groups += 1

    # Remove objects that end up mostly hidden (the later paints over the earlier).
    while True:
        visible, covered = [], np.zeros((h, w), dtype=bool)
        for mask, _ in reversed(objects):
            visible.append(mask & ~covered)
            covered |= mask
        visible.reverse()
        frac = [v.sum() / max(1, m.sum()) for v, (m, _) in zip(visible, objects)]
        bad = [i for i, (f, v) in enumerate(zip(frac, visible)) if f < st.min_visible or v.sum() < 40]
        if not bad:
            break
        drop = bad[int(np.argmin([frac[i] for i in bad]))]
        objects.pop(drop)
        painted.pop(drop)

    # Paint: background, then per group a soft shadow and the group's one texture.
    image = _background(rng, str(rng.choice(st.backgrounds)), h, w, st, scale)
    shadow_dir = rng.uniform(0, 2 * np.pi)
    shadows = st.effects and rng.random() < 0.5
    for g in sorted({g for _, g in objects}):
        members = [i for i, (_, gg) in enumerate(objects) if gg == g]
        union = np.zeros((h, w), dtype=bool)
        for i in members:
            union |= objects[i][0]
        ys, xs = np.nonzero(union)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        bh, bw = y1 - y0, x1 - x0
        if shadows:
            off = max(2.0, 0.08 * max(bh, bw))
            oy, ox = int(round(off * np.sin(shadow_dir))), int(round(off * np.cos(shadow_dir)))
            sh = np.zeros((h, w), dtype=np.float32)
            sh[max(oy, 0) : h + min(oy, 0), max(ox, 0) : w + min(ox, 0)] = union[
                max(-oy, 0) : h + min(-oy, 0), max(-ox, 0) : w + min(-ox, 0)
            ]
            sh = _blur(sh, max(1.0, 0.06 * max(bh, bw)))
            image = image * (1 - rng.uniform(0.3, 0.6) * sh[..., None])
        if painted[members[0]] is not None:  # emoji in their own colours: a milder tint, the group's shading
            look = (rng.uniform(0.85, 1.15, 3) * rng.uniform(0.85, 1.15)).astype(np.float32)
            shade = np.ones((h, w), dtype=np.float32)
            if st.effects:
                shade[y0:y1, x0:x1] = _shade(rng, bh, bw)
            for i in members:
                box, rgb = painted[i]
                vis = visible[i][box]
                local = rgb * look * shade[box][..., None]
                image[box][vis] = np.clip(local, 0, 1)[vis]
            continue
        source = str(rng.choice(st.textures))
        tex = make_texture(rng, source, bh, bw, st, scale)
        tex = tex * rng.uniform(0.75, 1.3, 3).astype(np.float32) * rng.uniform(0.85, 1.25)
        if st.effects:
            tex = tex * _shade(rng, bh, bw)[..., None]
        tex = np.clip(tex, 0, 1)
        for i in members:
            vis = visible[i][y0:y1, x0:x1]
            image[y0:y1, x0:x1][vis] = tex[vis]
    image_u8 = _effects(rng, image, scale) if st.effects else (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
    masks = np.stack(visible) if visible else np.zeros((0, h, w), dtype=bool)
    return image_u8, masks


def _cache_entry(seed, size, style, scene_kwargs) -> tuple[np.ndarray, np.ndarray, int]:
    """One scene in the in-memory cache's form: ``(image, uint8 label map, number of instances)``."""
    image, masks = generate_scene(seed, size, style=style, **scene_kwargs)
    labels = np.zeros(image.shape[:2], dtype=np.uint8)  # visible masks are disjoint: one label map holds them
    for i, mk in enumerate(masks):
        labels[mk] = i + 1
    return image, labels, len(masks)


def _cache_entry_star(args):
    return _cache_entry(*args)


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class SyntheticDataset(torch.utils.data.Dataset):
    """``n`` scenes generated on the fly; item ``i`` is ``generate_scene((seed, i), size, style=style)``.

    Returns ``(image uint8 [3, H, W] tensor, masks bool [N, H, W] tensor)``, or whatever ``transform(image,
    masks, index)`` makes of them (see :mod:`ifcn_viz.data.transforms`).  With ``cache=True`` each scene is
    generated once per process and kept in memory (image + a uint8 label map, about 260 kB at 256 x 256): a
    training set of a few thousand scenes then costs generation time only once; :meth:`prefill` generates them
    all up front on every core, so that no training step waits for the generator.
    """

    def __init__(
        self,
        n: int,
        seed: int = 0,
        size: Sequence[int] = (256, 256),
        transform=None,
        cache: bool = False,
        style: str | SceneStyle | None = None,
        **scene_kwargs,
    ):
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        self.n, self.seed, self.size = n, int(seed), _check_size(size)
        self.style = get_style(style)
        self.transform, self.scene_kwargs = transform, scene_kwargs
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, int]] | None = {} if cache else None

    def scene(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Scene ``index`` as numpy ``(image [H, W, 3], masks [N, H, W])`` (from the cache when enabled)."""
        if self._cache is None:
            return generate_scene((self.seed, index), self.size, style=self.style, **self.scene_kwargs)
        if index not in self._cache:
            self._cache[index] = _cache_entry((self.seed, index), self.size, self.style, self.scene_kwargs)
        image, labels, n = self._cache[index]
        return image, labels[None] == np.arange(1, n + 1, dtype=np.uint8)[:, None, None]

    def prefill(self, workers: int | None = None, min_parallel: int = 64) -> int:
        """Generate every scene not yet cached, in ``workers`` processes (default: every available core).

        The scenes are the same as generated one by one (each is a pure function of its seed), so a prefilled
        dataset gives bit-identical training.  Fewer than ``min_parallel`` scenes are made in this process
        (starting workers costs about a second).  DataLoader workers forked afterwards share the filled cache.
        Returns the number of scenes generated.
        """
        if self._cache is None:
            raise ValueError("prefill needs a dataset made with cache=True")
        todo = [i for i in range(self.n) if i not in self._cache]
        workers = available_cpus() if workers is None else int(workers)
        if workers <= 1 or len(todo) < max(min_parallel, 2 * workers):
            for i in todo:
                self.scene(i)
            return len(todo)
        import multiprocessing as mp

        # forkserver: the workers start from a clean process, never from a copy of this (maybe threaded) one
        method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        jobs = [((self.seed, i), self.size, self.style, self.scene_kwargs) for i in todo]
        with mp.get_context(method).Pool(workers) as pool:
            for i, entry in zip(todo, pool.imap(_cache_entry_star, jobs, chunksize=16)):
                self._cache[i] = entry
        return len(todo)

    def cache_key(self) -> str:
        """A digest of everything the scenes depend on: this module's source, style, size, seed, count, options --
        and, for a style with emoji, the glyph module's source and which fonts were found."""
        import hashlib

        h = hashlib.sha256(Path(__file__).read_bytes())
        h.update(repr((self.style, self.size, self.seed, self.n, sorted(self.scene_kwargs.items()))).encode())
        if self.style.emoji_fraction > 0:
            from ifcn_viz.data import glyphs

            h.update(Path(glyphs.__file__).read_bytes())
            h.update(glyphs.available_fonts().key().encode())
        return h.hexdigest()[:20]

    def load_or_prefill(self, cache_dir: str | Path, workers: int | None = None) -> Path:
        """Fill the cache from ``cache_dir/scenes-<key>.npz`` if a run made it before, else :meth:`prefill` and
        write that file (uncompressed: about 260 kB a 256 x 256 scene).  Returns the file's path."""
        if self._cache is None:
            raise ValueError("load_or_prefill needs a dataset made with cache=True")
        path = Path(cache_dir) / f"scenes-{self.cache_key()}.npz"
        if path.is_file():
            with np.load(path) as f:
                images, labels, counts = f["images"], f["labels"], f["counts"]
            for i in range(self.n):
                self._cache[i] = (images[i], labels[i], int(counts[i]))
            return path
        self.prefill(workers)
        images, labels, counts = self.compact()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, images=images, labels=labels, counts=counts)
        os.replace(tmp, path)
        return path

    def compact(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every scene, filled first where not cached: ``images`` uint8 ``[n, H, W, 3]``, ``labels`` uint8
        ``[n, H, W]`` (0 background, i the i-th instance; visible masks are disjoint) and ``counts`` int32 ``[n]``."""
        if self._cache is None:
            raise ValueError("compact needs a dataset made with cache=True")
        self.prefill()
        entries = [self._cache[i] for i in range(self.n)]
        return (np.stack([e[0] for e in entries]), np.stack([e[1] for e in entries]),
                np.array([e[2] for e in entries], dtype=np.int32))  # fmt: skip

    def is_filled(self) -> bool:
        """Whether every scene is in the in-memory cache (after :meth:`prefill` or :meth:`load_or_prefill`)."""
        return self._cache is not None and len(self._cache) == self.n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        if not 0 <= index < self.n:
            raise IndexError(f"index {index} out of range for {self.n} scenes")
        image, masks = self.scene(index)
        img = torch.from_numpy(image).permute(2, 0, 1).contiguous()  # (3, H, W)
        msk = torch.from_numpy(masks)  # (N, H, W)
        if self.transform is not None:
            return self.transform(img, msk, index)
        return img, msk
