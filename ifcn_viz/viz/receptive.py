"""Receptive fields: "how can a 3x3 conv cover a whole person?"

The score maps come from a 3x3 conv, but on stride-8 features that already see a large region: every layer
widens the receptive field by ``(kernel_eff - 1) * jump`` input pixels, with ``kernel_eff = dilation * (kernel -
1) + 1`` and ``jump`` the product of the strides so far.  For the paper's dilated VGG-16 (Sec. 3.3: pool4 stride 1,
conv5 dilated by 2) plus the instance branch this reaches 220 px -- more than the 168 px window.

Two measurements are offered: the theoretical field from the layers' (kernel, stride, dilation, padding), and the
effective field -- the gradient of one score-map cell with respect to the input pixels (Luo et al., NeurIPS 2016:
it is concentrated near the centre, far smaller than the theoretical square).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor, nn

from ifcn_viz.viz.palette import (
    INK,
    POSITIVE_COLOR,
    PROB_CMAP,
    apply_colormap,
    blend,
    colorbar,
    draw_label,
    pad,
    rank_color,
    stack,
    title_panel,
    to_rgb_uint8,
)

LayerSpec = tuple[int, int, int, int]  # (kernel, stride, dilation, padding)


@dataclass(frozen=True)
class ReceptiveField:
    size: int  # side of the square of input pixels that can influence one output cell
    jump: int  # input pixels between neighbouring output cells (the stride)
    start: float  # input-pixel index of the centre of output cell 0 (pixel i is centred on i)

    def center(self, cy: int, cx: int) -> tuple[float, float]:
        """(x, y) input-pixel centre of output cell (cy, cx)'s field."""
        return self.start + cx * self.jump, self.start + cy * self.jump

    def box(self, cy: int, cx: int) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1), exclusive ends, before clipping to the image."""
        x, y = self.center(cy, cx)
        h = (self.size - 1) / 2
        return x - h, y - h, x + h + 1, y + h + 1


def _pair(v: object) -> int:
    if isinstance(v, tuple):
        if len(set(v)) != 1:
            raise ValueError(f"only square kernels/strides are supported, got {v}")
        return int(v[0])
    return int(v)


def layer_spec(layer: nn.Module | LayerSpec) -> LayerSpec:
    """(kernel, stride, dilation, padding) of a conv / pooling layer, or a spec tuple passed through."""
    if isinstance(layer, tuple):
        if len(layer) != 4:
            raise ValueError(f"a layer spec is (kernel, stride, dilation, padding), got {layer}")
        return tuple(int(v) for v in layer)  # type: ignore[return-value]
    if isinstance(layer, nn.Conv2d):
        return _pair(layer.kernel_size), _pair(layer.stride), _pair(layer.dilation), _pair(layer.padding)
    if isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
        dil = _pair(getattr(layer, "dilation", 1))
        return _pair(layer.kernel_size), _pair(layer.stride), dil, _pair(layer.padding)
    raise TypeError(f"expected nn.Conv2d / nn.MaxPool2d / nn.AvgPool2d or a spec tuple, got {type(layer).__name__}")


def theoretical_receptive_field(layers: list[nn.Module | LayerSpec]) -> ReceptiveField:
    """The receptive field after ``layers`` in forward order (e.g. ``model.backbone.conv_layers()``).

    Recurrence (Araujo et al., Distill 2019): ``size += (k_eff - 1) * jump``; ``start += ((k_eff - 1) / 2 - pad)
    * jump``; ``jump *= stride``.  Residual shortcuts never widen a field, so a chain of a network's convs and
    poolings gives its largest path.
    """
    size, jump, start = 1, 1, 0.0
    for layer in layers:
        k, s, d, p = layer_spec(layer)
        k_eff = d * (k - 1) + 1
        size += (k_eff - 1) * jump
        start += ((k_eff - 1) / 2 - p) * jump
        jump *= s
    return ReceptiveField(size, jump, start)


def score_map_layers(model: nn.Module) -> list[nn.Module]:
    """The layers between the input and one score-map cell: the backbone's, then the instance branch's convs."""
    backbone = getattr(model, "backbone", None)
    branch = getattr(model, "instance", None)
    if backbone is None or branch is None or not hasattr(backbone, "conv_layers"):
        raise TypeError("model must be an InstanceFCN (with .backbone.conv_layers() and .instance)")
    return list(backbone.conv_layers()) + [mod for mod in branch.modules() if isinstance(mod, nn.Conv2d)]


def effective_receptive_field(
    model: nn.Module,
    image: Tensor,
    cell: tuple[int, int],
    channel: int | None = None,
    output: str = "score_maps",
) -> np.ndarray:
    """``|d out[cell] / d image|`` summed over colour channels: ``(H, W)`` float32, at the model's input grid.

    ``image``: ``(3, H, W)`` float in [0, 1].  ``output``: ``"score_maps"`` (map ``channel``, or the sum of all
    k^2 maps when None) or ``"objectness"``.  The model is run in eval mode and its mode restored afterwards.
    """
    if not isinstance(image, Tensor) or image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be a (3, H, W) float tensor, got {getattr(image, 'shape', type(image))}")
    if output not in ("score_maps", "objectness"):
        raise ValueError(f"output must be 'score_maps' or 'objectness', got {output!r}")
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        x = image.detach().to(device, torch.float32)[None].requires_grad_(True)
        out = getattr(model(x), output)[0]  # (C, H', W')
        cy, cx = cell
        if not (0 <= cy < out.shape[1] and 0 <= cx < out.shape[2]):
            raise ValueError(f"cell {cell} is outside the {tuple(out.shape[1:])} map")
        target = out[:, cy, cx].sum() if channel is None else out[channel, cy, cx]
        (grad,) = torch.autograd.grad(target, x)
    finally:
        model.train(was_training)
    return grad[0].abs().sum(0).cpu().numpy().astype(np.float32)


def effective_extent(grad_map: np.ndarray, center: tuple[float, float], mass: float = 0.95) -> int:
    """Side (px) of the smallest square centred at ``center`` = (x, y) holding ``mass`` of the gradient."""
    g = np.asarray(grad_map, dtype=np.float64)
    total = g.sum()
    if total <= 0:
        return 0
    h, w = g.shape
    yy, xx = np.mgrid[0:h, 0:w]
    cheb = np.maximum(np.abs(xx - center[0]), np.abs(yy - center[1])).ravel()  # half-side needed per pixel
    order = np.argsort(cheb, kind="stable")
    cum = np.cumsum(g.ravel()[order])
    idx = int(np.searchsorted(cum, mass * total))
    return int(2 * np.ceil(cheb[order][min(idx, len(order) - 1)]) + 1)


def receptive_field_view(
    image: object,
    grad_map: np.ndarray,
    cell: tuple[int, int],
    rf: ReceptiveField,
    m: int | None = None,
    gamma: float = 0.5,
) -> np.ndarray:
    """The gradient-measured field as a heat map over the (model-input) image, the theoretical square (orange),
    the m x m window (blue) and the cell itself; the caption gives the sizes."""
    img = to_rgb_uint8(image)
    g = np.asarray(grad_map, dtype=np.float32)
    if g.shape != img.shape[:2]:
        raise ValueError(f"grad_map {g.shape} must match the image {img.shape[:2]} (the model's input grid)")
    norm = (g / g.max()) ** gamma if g.max() > 0 else g
    heat = apply_colormap(norm, PROB_CMAP, 0.0, 1.0)
    out = blend(img, heat, 0.65)
    pil = Image.fromarray(out)
    draw = ImageDraw.Draw(pil)
    cy, cx = cell
    x0, y0, x1, y1 = rf.box(cy, cx)
    draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=rank_color(0), width=2)
    if m is not None:
        r = m // 2
        s = rf.jump
        draw.rectangle(
            ((cx - r) * s, (cy - r) * s, (cx + r + 1) * s - 1, (cy + r + 1) * s - 1), outline=POSITIVE_COLOR, width=2
        )
    s = rf.jump
    draw.rectangle((cx * s, cy * s, (cx + 1) * s - 1, (cy + 1) * s - 1), outline=INK, width=2)
    centre = rf.center(cy, cx)
    eff = effective_extent(g, centre)
    draw_label(draw, (max(0, x0) + 2, max(0, y0) + 2), f"theoretical {rf.size} px", size=11, bg=rank_color(0))
    window = f"; window {m * rf.jump} px (blue)" if m is not None else ""
    caption = f"cell ({cy}, {cx}): theoretical field {rf.size} px (orange){window}; 95% of |gradient| within {eff} px"
    bar = colorbar(max(200, min(img.shape[1], 360)), PROB_CMAP, 0.0, 1.0, f"(|d score / d pixel| / max)^{gamma:g}")
    return pad(stack([title_panel(np.asarray(pil), caption, size=12), bar], axis=0, gap=4, align="center"))
