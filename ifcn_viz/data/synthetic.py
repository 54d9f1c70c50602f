"""Seeded synthetic scenes of touching, same-textured objects, textured with real photographs (ours).

Why this data: InstanceFCN's point (paper, Sec. 1 and Fig. 1) is that a *semantic* FCN cannot split two
touching objects of the same kind, while instance-sensitive score maps can.  So every scene holds, on purpose,
groups of 2-3 **touching objects cut from the same texture crop** (no visible edge between them), next to
single objects, partial occlusion (only visible masks are kept), and object sizes that span about 2 octaves
around the window's reference size so that the multi-scale pyramid at inference matters.

Textures are crops of the photographs bundled with scikit-image (they load offline), so the model sees
something like real image statistics.  Backgrounds are blurred, darkened crops of a different photograph.

Reproducibility: ``generate_scene(seed)`` is a pure function of ``seed`` (an int or a tuple of ints, fed to
``np.random.default_rng``).  Scene ``i`` of a :class:`SyntheticDataset` with seed ``S`` is
``generate_scene((S, i))``, so two datasets with different seeds never share a scene.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw
from scipy import ndimage

TEXTURE_NAMES: tuple[str, ...] = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
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
)
SHAPES: tuple[str, ...] = ("ellipse", "rectangle", "polygon", "blob")
REFERENCE_SIDE = 256  # object sizes below are given for a 256-pixel shorter side and scale with the image


@functools.lru_cache(maxsize=1)
def load_textures() -> tuple[np.ndarray, ...]:
    """The bundled scikit-image photographs as uint8 H x W x 3 arrays (loaded once per process)."""
    import skimage.data

    out = []
    for name in TEXTURE_NAMES:
        img = np.asarray(getattr(skimage.data, name)())
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        out.append(np.ascontiguousarray(img[..., :3]).astype(np.uint8))
    return tuple(out)


def _crop(rng: np.random.Generator, texture: np.ndarray, h: int, w: int) -> np.ndarray:
    """A random crop of ``texture`` resized to ``h x w`` (float32, 0..1), with a random zoom and flip."""
    th, tw = texture.shape[:2]
    zoom = rng.uniform(0.5, 1.0)
    ch, cw = max(8, int(th * zoom)), max(8, int(tw * zoom))
    ch, cw = min(ch, th), min(cw, tw)
    y0, x0 = rng.integers(0, th - ch + 1), rng.integers(0, tw - cw + 1)
    pil = Image.fromarray(texture[y0 : y0 + ch, x0 : x0 + cw]).resize((w, h), Image.Resampling.BILINEAR)
    patch = np.asarray(pil, dtype=np.float32) / 255.0
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    return patch


def _shape_polygon(rng: np.random.Generator, shape: str, size: float) -> np.ndarray:
    """Vertices ``[V, 2]`` (dy, dx) of a shape whose larger extent is about ``size``, centred at 0."""
    r = size / 2
    if shape == "ellipse":
        t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        ry, rx = r, r * rng.uniform(0.5, 1.0)
        pts = np.stack([ry * np.sin(t), rx * np.cos(t)], 1)
    elif shape == "rectangle":
        hy, hx = r, r * rng.uniform(0.45, 1.0)
        pts = np.array([[-hy, -hx], [-hy, hx], [hy, hx], [hy, -hx]], dtype=np.float64)
    elif shape == "polygon":
        nv = int(rng.integers(5, 9))
        t = np.sort(rng.uniform(0, 2 * np.pi, nv))
        rad = r * rng.uniform(0.7, 1.0, nv)
        pts = np.stack([rad * np.sin(t), rad * np.cos(t)], 1)
    elif shape == "blob":
        t = np.linspace(0, 2 * np.pi, 96, endpoint=False)
        rad = np.ones_like(t)
        for harmonic in (2, 3, 4):
            rad += rng.uniform(0, 0.18) * np.cos(harmonic * t + rng.uniform(0, 2 * np.pi))
        rad = r * rad / rad.max()
        pts = np.stack([rad * np.sin(t), rad * np.cos(t)], 1)
    else:
        raise ValueError(f"unknown shape {shape!r}; choose one of {SHAPES}")
    angle = rng.uniform(0, np.pi)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pts = pts @ rot.T
    extent = (pts.max(0) - pts.min(0)).max()
    return pts * (size / max(extent, 1e-6))  # larger side of the tight box == size


def _raster(pts: np.ndarray, cy: float, cx: float, h: int, w: int) -> np.ndarray:
    canvas = Image.new("1", (w, h), 0)
    ImageDraw.Draw(canvas).polygon([(x + cx, y + cy) for y, x in pts], fill=1)
    return np.asarray(canvas, dtype=bool)


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s >= 32 for s in size):
        raise ValueError(f"size must be (H, W) with integers >= 32, got {size!r}")
    return int(size[0]), int(size[1])


def generate_scene(
    seed: int | Sequence[int],
    size: Sequence[int] = (256, 256),
    min_objects: int = 2,
    max_objects: int = 7,
    touching_fraction: float = 0.6,
    min_visible: float = 0.45,
) -> tuple[np.ndarray, np.ndarray]:
    """One scene: ``(image uint8 [H, W, 3], masks bool [N, H, W])`` with N >= 1 visible instances.

    Objects are placed as *groups*: with probability ``touching_fraction`` a group is 2-3 objects of the same
    texture crop that touch (they overlap slightly, the later one occluding the earlier), otherwise a single
    object with its own texture.  Objects are painted in order; each mask is the *visible* part.  An object
    left with less than ``min_visible`` of its area visible (or under 64 pixels) is removed and the scene is
    repainted without it, so every mask is a substantial visible region and no painted pixel is unlabelled.
    Larger sides are log-uniform in [40, 180] px for a 256-px shorter side (scaled with the image).
    """
    h, w = _check_size(size)
    if not 1 <= min_objects <= max_objects:
        raise ValueError(f"need 1 <= min_objects <= max_objects, got {min_objects}, {max_objects}")
    rng = np.random.default_rng(seed)
    textures = load_textures()
    scale = min(h, w) / REFERENCE_SIDE

    # Background: a blurred, dimmed photograph with a colour cast.
    bg_tex = int(rng.integers(len(textures)))
    image = _crop(rng, textures[bg_tex], h, w)
    image = ndimage.gaussian_filter(image, (rng.uniform(1.5, 4.0), rng.uniform(1.5, 4.0), 0))
    image = image * rng.uniform(0.35, 0.75) + rng.uniform(0, 0.15, 3).astype(np.float32)

    target = int(rng.integers(min_objects, max_objects + 1))
    objects: list[tuple[np.ndarray, int]] = []  # (full mask, texture slot)
    slots: list[np.ndarray] = []  # one texture image (H x W x 3) per group
    while len(objects) < target:
        group = int(rng.integers(2, 4)) if rng.random() < touching_fraction else 1
        group = min(group, target - len(objects))
        tex = _crop(rng, textures[int(rng.integers(len(textures)))], h, w)
        gain = rng.uniform(0.8, 1.35, 3).astype(np.float32)
        slots.append(np.clip(tex * gain * rng.uniform(0.9, 1.3), 0, 1))
        size0 = float(np.exp(rng.uniform(np.log(40), np.log(180)))) * scale
        cy, cx = rng.uniform(0.15 * h, 0.85 * h), rng.uniform(0.15 * w, 0.85 * w)
        prev: np.ndarray | None = None
        for j in range(group):
            sz = size0 if j == 0 else size0 * float(np.exp(rng.uniform(-0.35, 0.35)))
            pts = _shape_polygon(rng, SHAPES[int(rng.integers(len(SHAPES)))], sz)
            if prev is None:
                mask = _raster(pts, cy, cx, h, w)
            else:  # slide the new object towards the previous one until they just touch (overlap > 0)
                ang = rng.uniform(0, 2 * np.pi)
                dy, dx = np.sin(ang), np.cos(ang)
                pcy, pcx = np.argwhere(prev).mean(0)
                dist = (np.sqrt(prev.sum() / np.pi) + sz / 2) * 1.3
                while dist > 0:
                    mask = _raster(pts, pcy + dist * dy, pcx + dist * dx, h, w)
                    if (mask & prev).any():
                        break
                    dist -= max(2.0, 0.04 * sz)
            area = 0.5 * abs(np.dot(pts[:, 0], np.roll(pts[:, 1], 1)) - np.dot(pts[:, 1], np.roll(pts[:, 0], 1)))
            if mask.sum() < max(64, 0.75 * area):  # mostly outside the image
                break
            objects.append((mask, len(slots) - 1))
            prev = mask
        if len(slots) > 4 * max_objects:  # give up on pathological seeds (objects falling off the image)
            break

    # Remove objects that end up mostly hidden, then paint the rest in order.
    while True:
        visible = []
        covered = np.zeros((h, w), dtype=bool)
        for mask, _ in reversed(objects):
            visible.append(mask & ~covered)
            covered |= mask
        visible.reverse()
        frac = [v.sum() / max(1, m.sum()) for v, (m, _) in zip(visible, objects)]
        bad = [i for i, (f, v) in enumerate(zip(frac, visible)) if f < min_visible or v.sum() < 64]
        if not bad:
            break
        objects.pop(bad[int(np.argmin([frac[i] for i in bad]))])
    for (_mask, slot), vis in zip(objects, visible):
        image[vis] = slots[slot][vis]
    image_u8 = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
    masks = np.stack(visible) if visible else np.zeros((0, h, w), dtype=bool)
    return image_u8, masks


class SyntheticDataset(torch.utils.data.Dataset):
    """``n`` scenes generated on the fly; item ``i`` is ``generate_scene((seed, i), size)``.

    Returns ``(image uint8 [3, H, W] tensor, masks bool [N, H, W] tensor)``, or whatever ``transform(image,
    masks, index)`` makes of them (see :mod:`ifcn_viz.data.transforms`).  With ``cache=True`` each scene is
    generated once per process and kept in memory (image + a uint8 label map, about 260 kB at 256 x 256): a
    training set of a few thousand scenes then costs generation time only in its first epoch.
    """

    def __init__(
        self,
        n: int,
        seed: int = 0,
        size: Sequence[int] = (256, 256),
        transform=None,
        cache: bool = False,
        **scene_kwargs,
    ):
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        self.n, self.seed, self.size = n, int(seed), _check_size(size)
        self.transform, self.scene_kwargs = transform, scene_kwargs
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, int]] | None = {} if cache else None

    def scene(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Scene ``index`` as numpy ``(image [H, W, 3], masks [N, H, W])`` (from the cache when enabled)."""
        if self._cache is None:
            return generate_scene((self.seed, index), self.size, **self.scene_kwargs)
        if index not in self._cache:
            image, masks = generate_scene((self.seed, index), self.size, **self.scene_kwargs)
            labels = np.zeros(image.shape[:2], dtype=np.uint8)  # visible masks are disjoint: one label map holds them
            for i, mk in enumerate(masks):
                labels[mk] = i + 1
            self._cache[index] = (image, labels, len(masks))
        image, labels, n = self._cache[index]
        return image, labels[None] == np.arange(1, n + 1, dtype=np.uint8)[:, None, None]

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
