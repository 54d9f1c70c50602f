"""Backbones: each maps ``[B, 3, H, W]`` normalised images to ``[B, C, H', W']`` features at a known stride.

* ``vgg16`` -- the paper's (Sec. 3.3): the 13 conv layers of VGG-16, pool4's stride 2 -> 1, conv5_1..conv5_3
  dilated by 2 (the "hole algorithm"), pool5 and the fc layers dropped; output stride 8.
* ``resnet18`` / ``resnet50`` -- torchvision ResNets with the last stage(s) dilated: output stride 8 (layer3
  and layer4 dilated) or 16 (layer4 only).  Not in the paper; offered for the reader's question "would a
  ResNet handle scale better?".
* ``tiny`` -- a small stride-8 CNN (with dilated tail convs for a large receptive field) that trains in
  minutes on 2 CPU cores.  Ours, not the paper's.

Every backbone has ``out_channels`` and ``stride`` attributes, and ``conv_layers()`` lists its convolutions
and poolings in order (for the receptive-field computation in the viz and notebooks).

**The registry.**  A backbone is known by name through :func:`register_backbone`, which records its builder,
the output strides it offers, its channel count and its torchvision ImageNet weights (if any).
``build_backbone`` and the build-time check of a ``ModelConfig`` (its backbone name and output stride) read
:data:`BACKBONES`; receptive fields come from each built backbone's ``conv_layers()``, so the viz needs no list.
Adding a backbone is one decorated builder here (and, to train it by name, a preset in ``ifcn_viz/config.py``)::

    @register_backbone("mine", strides=(8,), channels="256", summary="...")
    def _mine(output_stride: int, width: int) -> Backbone:
        return MyBackbone()

Weights: random initialisation by default.  ``weights="imagenet"`` asks torchvision for its ImageNet weights
(needs a network connection on first use); ``weights="/path/file"`` loads a torchvision-format state dict
from a local ``.pth`` / ``.safetensors`` file, which is the route for offline machines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class BackboneSpec:
    """What the registry knows about a backbone before building it."""

    name: str
    builder: Callable[[int, int], Backbone]  # (output_stride, width) -> an untrained Backbone
    strides: tuple[int, ...]  # output strides it offers
    channels: str  # feature channels, e.g. "512" or "4 x backbone_width"
    imagenet: str | None = None  # torchvision weights enum, e.g. "VGG16_Weights.IMAGENET1K_V1"; None: none
    summary: str = ""


BACKBONES: dict[str, BackboneSpec] = {}
"""The registered backbones by name (in registration order)."""


def register_backbone(
    name: str, *, strides: tuple[int, ...], channels: str, imagenet: str | None = None, summary: str = ""
) -> Callable[[Callable[[int, int], Backbone]], Callable[[int, int], Backbone]]:
    """Decorator: record ``builder(output_stride, width) -> Backbone`` under ``name`` in :data:`BACKBONES`."""

    def decorate(builder: Callable[[int, int], Backbone]) -> Callable[[int, int], Backbone]:
        if name in BACKBONES:
            raise ValueError(f"backbone {name!r} is already registered")
        BACKBONES[name] = BackboneSpec(name, builder, tuple(strides), channels, imagenet, summary)
        return builder

    return decorate


def get_backbone(name: str) -> BackboneSpec:
    """The registry entry of ``name``; a one-line ``ValueError`` listing the known names otherwise."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    return BACKBONES[name]


def check_backbone(name: str, output_stride: int) -> BackboneSpec:
    """Refuse an unknown backbone or an output stride it does not offer (``ModelConfig`` cannot: no torch there)."""
    spec = get_backbone(name)
    if output_stride not in spec.strides:
        offered = " or ".join(str(s) for s in spec.strides)
        raise ValueError(f"the {name} backbone has output_stride {offered}, got {output_stride}")
    return spec


class Backbone(nn.Module):
    out_channels: int
    stride: int

    def feature_shape(self, height: int, width: int) -> tuple[int, int]:
        """The feature map's (H', W') for an input of (height, width): ceil(side / stride) unless overridden."""
        return -(-height // self.stride), -(-width // self.stride)

    def conv_layers(self) -> list[nn.Module]:
        """The convolution and pooling layers in forward order (for receptive-field arithmetic)."""
        return [mod for mod in self.modules() if isinstance(mod, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d))]


class VGG16Backbone(Backbone):
    """The paper's VGG-16: 13 convs, pool1-3 stride 2, pool4 stride 1, conv5_x dilation 2, no pool5/fc.

    The paper says pool4's stride becomes 1 but not its kernel or padding; we use a 3x3 window with padding 1
    (as DeepLab-LargeFOV does) so that the map keeps its size.  Output: 512 channels at stride 8, with
    ``H' = H // 8`` for any H.
    """

    def __init__(self) -> None:
        super().__init__()
        import torchvision

        feats = torchvision.models.vgg16(weights=None).features  # indices as in torchvision's vgg16
        # features[23] is pool4, features[24..28] conv5_1..conv5_3 (+ReLUs), features[30] is pool5.
        feats[23] = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        for idx in (24, 26, 28):
            feats[idx].dilation, feats[idx].padding = (2, 2), (2, 2)
        self.features = nn.Sequential(*list(feats.children())[:30])  # drop pool5
        self.out_channels, self.stride = 512, 8

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)

    def feature_shape(self, height: int, width: int) -> tuple[int, int]:
        return height // 8, width // 8  # three 2x2/2 max-pools floor the size

    def load_torchvision_state(self, state: dict[str, Tensor]) -> None:
        """Load a torchvision ``vgg16`` state dict (its ``features.*`` entries; classifier ignored)."""
        feats = {k: v for k, v in state.items() if k.startswith("features.")}
        missing, unexpected = self.load_state_dict(feats, strict=False)
        if missing or unexpected:
            raise ValueError(f"not a VGG-16 state dict: missing {missing[:4]}, unexpected {unexpected[:4]}")


def _dilate_stage(stage: nn.Module, dilation: int) -> None:
    """Turn a ResNet stage's stride-2 into stride 1 and dilate its 3x3 convs (works for Basic and Bottleneck)."""
    for mod in stage.modules():
        if isinstance(mod, nn.Conv2d):
            if mod.stride == (2, 2):
                mod.stride = (1, 1)
            if mod.kernel_size == (3, 3):
                mod.dilation, mod.padding = (dilation, dilation), (dilation, dilation)


class ResNetBackbone(Backbone):
    """A torchvision ResNet up to layer4, with stride-8 or stride-16 output via dilation (not in the paper)."""

    def __init__(self, depth: int = 50, output_stride: int = 8) -> None:
        super().__init__()
        import torchvision

        if output_stride not in (8, 16):
            raise ValueError(f"ResNet output_stride must be 8 or 16, got {output_stride}")
        net = {18: torchvision.models.resnet18, 50: torchvision.models.resnet50}[depth](weights=None)
        if output_stride == 8:
            _dilate_stage(net.layer3, 2)
            _dilate_stage(net.layer4, 4)
        else:
            _dilate_stage(net.layer4, 2)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.out_channels = 512 if depth == 18 else 2048
        self.stride = output_stride
        self.depth = depth

    def forward(self, x: Tensor) -> Tensor:
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))

    def conv_layers(self) -> list[nn.Module]:
        """The main path's layers: the 1x1 shortcut ("downsample") convs run beside it, not after it."""
        kinds = (nn.Conv2d, nn.MaxPool2d)
        return [mod for name, mod in self.named_modules() if isinstance(mod, kinds) and "downsample" not in name]

    def load_torchvision_state(self, state: dict[str, Tensor]) -> None:
        remap = {}
        for key, val in state.items():
            if key.startswith("fc."):
                continue
            for src, dst in (("conv1.", "stem.0."), ("bn1.", "stem.1.")):
                if key.startswith(src):
                    key = dst + key[len(src) :]
            remap[key] = val
        self.load_state_dict(remap, strict=True)


def _conv_bn(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class TinyBackbone(Backbone):
    """A small stride-8 CNN for CPU training: 3 stride-2 stages, then dilated convs to widen the receptive field.

    Receptive field: 171 px at the backbone output, 187 px at a score-map cell (with the head's 3x3 conv) --
    more than the 168 px of a 21-cell window at stride 8.
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _conv_bn(3, w, stride=2),  # /2
            _conv_bn(w, w),
            _conv_bn(w, 2 * w, stride=2),  # /4
            _conv_bn(2 * w, 2 * w),
            _conv_bn(2 * w, 4 * w, stride=2),  # /8
            _conv_bn(4 * w, 4 * w),
            _conv_bn(4 * w, 4 * w, dilation=2),
            _conv_bn(4 * w, 4 * w, dilation=4),
            _conv_bn(4 * w, 4 * w, dilation=2),
        )
        self.out_channels, self.stride = 4 * w, 8

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)


def _read_state_file(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(str(path), map_location="cpu", weights_only=True)  # never unpickles code
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict (got {type(state).__name__})")
    return state


def _torchvision_imagenet_state(spec: BackboneSpec) -> dict[str, Tensor]:
    import torchvision

    enum_name, member = spec.imagenet.split(".")  # type: ignore[union-attr]
    enum = getattr(getattr(torchvision.models, enum_name), member)
    try:
        return enum.get_state_dict(progress=False)
    except Exception as err:  # offline: urllib raises URLError / OSError
        raise RuntimeError(
            f"could not download torchvision's ImageNet weights for {spec.name} ({type(err).__name__}: {err}). "
            f"This machine seems offline: download {enum.url} elsewhere and pass its local path as the "
            f"backbone weights (e.g. --backbone-weights /path/to/{Path(enum.url).name})."
        ) from err


@register_backbone(
    "vgg16", strides=(8,), channels="512", imagenet="VGG16_Weights.IMAGENET1K_V1",
    summary="the paper's VGG-16: pool4 stride 1, conv5 dilated by 2, no pool5/fc",
)  # fmt: skip
def _vgg16(output_stride: int, width: int) -> Backbone:
    return VGG16Backbone()


@register_backbone(
    "resnet18", strides=(8, 16), channels="512", imagenet="ResNet18_Weights.IMAGENET1K_V1",
    summary="torchvision ResNet-18, last stage(s) dilated (not in the paper)",
)  # fmt: skip
def _resnet18(output_stride: int, width: int) -> Backbone:
    return ResNetBackbone(18, output_stride)


@register_backbone(
    "resnet50", strides=(8, 16), channels="2048", imagenet="ResNet50_Weights.IMAGENET1K_V2",
    summary="torchvision ResNet-50, last stage(s) dilated (not in the paper)",
)  # fmt: skip
def _resnet50(output_stride: int, width: int) -> Backbone:
    return ResNetBackbone(50, output_stride)


@register_backbone(
    "tiny", strides=(8,), channels="4 x backbone_width",
    summary="a small stride-8 CNN with dilated tail convs that trains in minutes on a CPU (ours)",
)  # fmt: skip
def _tiny(output_stride: int, width: int) -> Backbone:
    return TinyBackbone(width)


def build_backbone(name: str, output_stride: int = 8, weights: str | None = None, width: int = 32) -> Backbone:
    """Build a registered backbone by name; ``weights`` is None (random), ``"imagenet"`` or a local file path."""
    spec = check_backbone(name, output_stride)
    net = spec.builder(output_stride, width)
    if weights is None:
        return net
    if spec.imagenet is None:
        raise ValueError(f"the {name} backbone has no ImageNet weights; train it from scratch (weights=None)")
    state = _torchvision_imagenet_state(spec) if weights == "imagenet" else _read_state_file(Path(weights))
    net.load_torchvision_state(state)  # type: ignore[operator]
    return net
