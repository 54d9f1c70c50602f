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
    upsample,
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


def _suffix(layer: nn.Module) -> str:
    k, s, d, _ = layer_spec(layer)
    return f" {k}x{k}" + (f"/{s}" if s > 1 else "") + (f" d{d}" if d > 1 else "")


def named_score_map_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """:func:`score_map_layers` with readable names, e.g. ``conv3_1 3x3``, ``pool4 3x3``, ``conv5_1 3x3 d2`` for the
    paper's VGG-16 (its own naming), ``conv1 3x3/2`` ... for the tiny CNN, ``layer3.0.conv1 3x3 d2`` for a ResNet
    (torchvision's module names), then ``inst 1x1`` and ``scores 3x3`` for the instance branch's two convs.
    Suffixes: kernel, ``/stride`` when > 1, ``d<dilation>`` when > 1."""
    layers = score_map_layers(model)
    backbone = model.backbone  # type: ignore[attr-defined]
    n_backbone = len(backbone.conv_layers())
    path = {id(mod): name for name, mod in backbone.named_modules()}
    names: list[str] = []
    stage, conv_in_stage, conv_count = 1, 0, 0
    vgg = type(backbone).__name__.startswith("VGG")
    for i, layer in enumerate(layers):
        if i >= n_backbone:
            base = "inst" if i == n_backbone else "scores"
        elif vgg:  # conv<stage>_<i>, pool<stage>, as the VGG paper names them
            if isinstance(layer, nn.Conv2d):
                conv_in_stage += 1
                base = f"conv{stage}_{conv_in_stage}"
            else:
                base = f"pool{stage}"
                stage, conv_in_stage = stage + 1, 0
        elif "." in path.get(id(layer), "") and not path[id(layer)].startswith("features"):
            base = path[id(layer)].replace("stem.0", "conv1").replace("stem.3", "pool1")  # ResNet: its module path
        else:
            conv_count += isinstance(layer, nn.Conv2d)
            base = f"conv{conv_count}" if isinstance(layer, nn.Conv2d) else f"pool{conv_count}"
        names.append(base + _suffix(layer))
    return list(zip(names, layers))


@dataclass(frozen=True)
class LayerField:
    """One layer of :func:`receptive_field_growth`: its name, theoretical field, and the measured extent."""

    name: str
    theoretical: int  # px: the side of the square that can influence one output cell
    effective: int  # px: the side of the centred square holding 95 % of |d output / d pixel|
    half: int  # px: the same for 50 % (the field's core)
    jump: int  # px between neighbouring output cells
    cell: tuple[int, int]  # the (y, x) cell of this layer's output that was measured


def layer_gradient(model: nn.Module, image: Tensor, layer: nn.Module, cell: tuple[int, int]) -> np.ndarray:
    """``|d sum_c out[c, cell] / d image|`` summed over colour channels, where ``out`` is ``layer``'s output (a
    forward hook; any conv / pooling of the model): ``(H, W)`` float32.  Eval mode, restored afterwards."""
    if not isinstance(image, Tensor) or image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be a (3, H, W) float tensor, got {getattr(image, 'shape', type(image))}")
    grabbed: list[Tensor] = []
    handle = layer.register_forward_hook(lambda mod, inp, out: grabbed.append(out))
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        x = image.detach().to(device, torch.float32)[None].requires_grad_(True)
        model(x)
        out = grabbed[0][0]  # (C, h, w) -- the first call of the layer (each layer runs once per forward)
        cy, cx = cell
        if not (0 <= cy < out.shape[1] and 0 <= cx < out.shape[2]):
            raise ValueError(f"cell {cell} is outside the {tuple(out.shape[1:])} map")
        (grad,) = torch.autograd.grad(out[:, cy, cx].sum(), x)
    finally:
        handle.remove()
        model.train(was_training)
    return grad[0].abs().sum(0).cpu().numpy().astype(np.float32)


def layer_cell(rf: ReceptiveField, pixel: tuple[float, float], shape: tuple[int, int]) -> tuple[int, int]:
    """The (y, x) output cell of a layer with field ``rf`` whose centre is nearest input ``pixel`` = (x, y)."""
    cx = int(np.clip(round((pixel[0] - rf.start) / rf.jump), 0, shape[1] - 1))
    cy = int(np.clip(round((pixel[1] - rf.start) / rf.jump), 0, shape[0] - 1))
    return cy, cx


def measure_layer(
    model: nn.Module, image: Tensor, layer: str | int, cell: tuple[int, int], mass: float = 0.95
) -> tuple[LayerField, np.ndarray, ReceptiveField]:
    """One layer of the score-map path (a name from :func:`named_score_map_layers` or its index there): the output
    cell over the same image point as score-map cell ``cell`` = (y, x), its theoretical field and the gradient of
    that cell's output (summed over channels) with respect to the input pixels.

    Returns ``(LayerField, gradient (H, W), the layer's ReceptiveField)`` -- the last two are what
    :func:`receptive_field_view` draws."""
    named = named_score_map_layers(model)
    names = [name for name, _ in named]
    if isinstance(layer, str):
        if layer not in names:
            raise ValueError(f"unknown layer {layer!r}; the score-map path has {', '.join(names)}")
        layer = names.index(layer)
    if not 0 <= layer < len(named):
        raise ValueError(f"layer index {layer} is out of range: the score-map path has {len(named)} layers")
    layers = [mod for _, mod in named]
    rf = theoretical_receptive_field(layers[: layer + 1])
    pixel = theoretical_receptive_field(layers).center(*cell)
    h, w = image.shape[1:]
    shape = (-(-h // rf.jump), -(-w // rf.jump))  # padded convs: ceil(side / jump) (a wrong guess fails the hook)
    c = layer_cell(rf, pixel, shape)
    grad = layer_gradient(model, image, layers[layer], c)
    centre = rf.center(*c)
    field = LayerField(names[layer], rf.size, effective_extent(grad, centre, mass), effective_extent(grad, centre, 0.5),
                       rf.jump, c)  # fmt: skip
    return field, grad, rf


def receptive_field_growth(
    model: nn.Module, image: Tensor, cell: tuple[int, int], mass: float = 0.95
) -> list[LayerField]:
    """Layer by layer along the score-map path (:func:`named_score_map_layers`): the theoretical field and the
    measured one (the side of the square around the cell's centre that holds ``mass`` of the gradient; and 50 %) of
    the output cell over the same image point as score-map cell ``cell`` = (y, x).  One backward pass per layer."""
    n = len(named_score_map_layers(model))
    return [measure_layer(model, image, i, cell, mass)[0] for i in range(n)]


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
    zoom: int = 1,
    percentile: float = 100.0,
    mass: float = 0.95,
) -> np.ndarray:
    """The gradient-measured field as a heat map over the (model-input) image, the theoretical square (orange),
    the square holding ``mass`` of |gradient| (white, dashed), the m x m window (blue) and the cell itself (black);
    the caption gives the sizes.  ``zoom``: draw ``zoom`` x larger (nearest); ``percentile``: the heat map's top
    (e.g. 99: the few largest gradients saturate and the rest of the field shows brighter)."""
    img = to_rgb_uint8(image)
    g = np.asarray(grad_map, dtype=np.float32)
    if g.shape != img.shape[:2]:
        raise ValueError(f"grad_map {g.shape} must match the image {img.shape[:2]} (the model's input grid)")
    zoom = max(1, int(zoom))
    top = float(np.percentile(g[g > 0], percentile)) if (g > 0).any() else 0.0
    norm = np.clip(g / top, 0.0, 1.0) ** gamma if top > 0 else g
    heat = apply_colormap(norm, PROB_CMAP, 0.0, 1.0)
    out = blend(img, heat, 0.65)
    if zoom > 1:
        out = upsample(out, zoom)
    pil = Image.fromarray(out)
    draw = ImageDraw.Draw(pil)
    cy, cx = cell
    z = zoom
    x0, y0, x1, y1 = rf.box(cy, cx)
    draw.rectangle((x0 * z, y0 * z, x1 * z - 1, y1 * z - 1), outline=rank_color(0), width=2)
    s = rf.jump
    if m is not None:
        r = m // 2
        draw.rectangle(
            ((cx - r) * s * z, (cy - r) * s * z, (cx + r + 1) * s * z - 1, (cy + r + 1) * s * z - 1),
            outline=POSITIVE_COLOR,
            width=2,
        )
    draw.rectangle((cx * s * z, cy * s * z, (cx + 1) * s * z - 1, (cy + 1) * s * z - 1), outline=INK, width=2)
    centre = rf.center(cy, cx)
    eff = effective_extent(g, centre, mass)
    ex, ey = centre  # (x, y): the centred square holding ``mass`` of the gradient
    h = (eff - 1) / 2
    ex0, ey0, ex1, ey1 = ((ex - h) * z, (ey - h) * z, (ex + h + 1) * z - 1, (ey + h + 1) * z - 1)
    dash = max(4, 3 * z)
    for a, b in ((ex0, ex1), (ey0, ey1)):
        for t in np.arange(a, b, 2 * dash):
            e = min(t + dash, b)
            if a is ex0:
                draw.line((t, ey0, e, ey0), fill=(255, 255, 255), width=2)
                draw.line((t, ey1, e, ey1), fill=(255, 255, 255), width=2)
            else:
                draw.line((ex0, t, ex0, e), fill=(255, 255, 255), width=2)
                draw.line((ex1, t, ex1, e), fill=(255, 255, 255), width=2)
    draw_label(draw, (max(0, x0 * z) + 2, max(0, y0 * z) + 2), f"theoretical {rf.size} px", size=11, bg=rank_color(0))
    draw_label(draw, (max(0, ex0) + 2, min(out.shape[0] - 16, max(0, ey1 - 15))), f"{mass:.0%} of |gradient|: "
               f"{eff} px", size=11, bg=(255, 255, 255))  # fmt: skip
    window = f"; window {m * rf.jump} px (blue)" if m is not None else ""
    caption = (f"cell ({cy}, {cx}): theoretical field {rf.size} px (orange){window}; {mass:.0%} of |gradient| within "
               f"{eff} px (white, dashed)")  # fmt: skip
    top_label = "max" if percentile >= 100 else f"its {percentile:g}th percentile"
    label = f"(|d score / d pixel| / {top_label})^{gamma:g}"
    bar = colorbar(max(200, min(out.shape[1], 360)), PROB_CMAP, 0.0, 1.0, label)
    return pad(stack([title_panel(np.asarray(pil), caption, size=12), bar], axis=0, gap=4, align="center"))
