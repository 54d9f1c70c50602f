"""The model: the paper's architecture (Sec. 3-4), shapes, presets, parameter counts, errors, checkpoints."""

import dataclasses
import json

import pytest
import torch
from torch import nn

from ifcn_viz.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from ifcn_viz.config import PRESETS, InferConfig, ModelConfig, get_preset
from ifcn_viz.model import InstanceFCN, build_backbone, build_model
from ifcn_viz.model.assemble import OUTSIDE_LOGIT, assemble_at
from ifcn_viz.model.geometry import window_box
from ifcn_viz.model.ideal import ideal_score_maps


def n_params(mod: nn.Module) -> int:
    return sum(p.numel() for p in mod.parameters())


def test_paper_last_instance_layer_has_115225_parameters():
    model = build_model("paper")
    assert n_params(model.instance.score) == 3 * 3 * 512 * 25 + 25 == 115_225
    assert model.instance.reduce.kernel_size == (1, 1) and model.instance.reduce.out_channels == 512
    assert model.objectness.conv.kernel_size == (3, 3) and model.objectness.score.kernel_size == (1, 1)


def test_paper_vgg16_is_dilated_with_13_convs_and_stride_8():
    bb = build_backbone("vgg16")
    convs = [m for m in bb.modules() if isinstance(m, nn.Conv2d)]
    pools = [m for m in bb.modules() if isinstance(m, nn.MaxPool2d)]
    assert len(convs) == 13 and not any(isinstance(m, nn.Linear) for m in bb.modules())
    assert [p.stride for p in pools] == [2, 2, 2, 1]  # pool4 stride 1, pool5 dropped
    assert [c.dilation for c in convs[-3:]] == [(2, 2)] * 3 and all(c.dilation == (1, 1) for c in convs[:-3])
    assert bb.stride == 8 and bb.out_channels == 512


@pytest.mark.parametrize("preset", ["tiny", "paper"])
@pytest.mark.parametrize("hw", [(64, 64), (61, 77), (100, 133)])
def test_output_shapes_for_sides_not_multiples_of_8(preset, hw):
    model = build_model(preset).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, *hw))
    hf, wf = model.backbone.feature_shape(*hw)
    k2 = model.k**2
    assert out.score_maps.shape == (2, k2, hf, wf)
    assert out.objectness.shape == (2, 1, hf, wf)
    assert out.features.shape[:2] == (2, model.backbone.out_channels) and out.stride == 8
    assert hf in (hw[0] // 8, -(-hw[0] // 8))


@pytest.mark.parametrize("name,stride", [("resnet18", 8), ("resnet18", 16), ("resnet50", 8)])
def test_resnet_backbones_dilated(name, stride):
    bb = build_backbone(name, output_stride=stride).eval()
    with torch.no_grad():
        f = bb(torch.rand(1, 3, 64, 96))
    assert f.shape == (1, bb.out_channels, 64 // stride, 96 // stride)
    assert bb.feature_shape(64, 96) == f.shape[2:]


def test_forward_is_the_same_structure_in_train_and_eval():
    model = build_model("tiny")
    x = torch.rand(1, 3, 64, 64)
    a = model.train()(x)
    b = model.eval()(x)
    assert type(a) is type(b) and a._fields == b._fields


def test_model_assemble_uses_the_configured_fill():
    model = build_model(ModelConfig(backbone="tiny", k=3, m=7, head_channels=8, backbone_width=8, fill_logit=-7.0))
    s = torch.randn(1, 9, 4, 4)
    w = model.assemble(s, torch.tensor([[0, 0, 0]]))
    assert -7.0 != OUTSIDE_LOGIT  # a non-default fill, so the test tells the two apart
    assert w.shape == (1, 7, 7) and torch.all(w[0, 0] == -7.0) and w[0, 3, 3] == s[0, 4, 0, 0]
    assert model.assemble(s).shape == (1, 4, 4, 7, 7)


def test_bf16_autocast_forward():
    model = build_model("tiny").eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.rand(1, 3, 64, 64))
    assert out.score_maps.dtype == torch.bfloat16 and torch.isfinite(out.score_maps.float()).all()


@pytest.mark.parametrize(
    "images,err,msg",
    [
        (torch.rand(3, 64, 64), ValueError, "B, 3, H, W"),
        (torch.rand(1, 1, 64, 64), ValueError, "B, 3, H, W"),
        (torch.zeros(1, 3, 64, 64, dtype=torch.uint8), TypeError, "floating point"),
        ([[0.0]], TypeError, "torch.Tensor"),
    ],
)
def test_model_input_errors(images, err, msg):
    with pytest.raises(err, match=msg):
        build_model("tiny")(images)


@pytest.mark.parametrize(
    "kwargs,msg",
    [
        ({"backbone": ""}, "backbone must be"),
        ({"k": 5, "m": 20}, "odd"),
        ({"k": 9, "m": 7}, "k must be <= m"),
        ({"k": 0}, "k must be an integer >= 1"),
        ({"output_stride": 0}, "output_stride"),
        ({"head_channels": 0}, "head_channels"),
        ({"head": "deepmask"}, "unknown head 'deepmask'; choose one of ifcn, fc"),
    ],
)
def test_config_errors(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        ModelConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs,msg",
    [
        ({"backbone": "alexnet"}, "unknown backbone 'alexnet'; choose one of vgg16, resnet18, resnet50, tiny"),
        ({"output_stride": 4}, "the vgg16 backbone has output_stride 8, got 4"),
        ({"backbone": "tiny", "output_stride": 16}, "the tiny backbone has output_stride 8, got 16"),
        ({"backbone": "resnet18", "output_stride": 32}, "the resnet18 backbone has output_stride 8 or 16, got 32"),
    ],
)
def test_backbone_names_and_strides_are_checked_against_the_registry_at_build_time(kwargs, msg):
    config = ModelConfig(**kwargs)  # plain Python: the config knows no backbone names (no torch)
    with pytest.raises(ValueError, match=msg):
        build_model(config)


def test_every_preset_names_a_registered_backbone_with_its_stride():
    from ifcn_viz.model.backbones import BACKBONES, check_backbone

    assert list(BACKBONES) == ["vgg16", "resnet18", "resnet50", "tiny"]
    for preset in PRESETS.values():
        assert check_backbone(preset.model.backbone, preset.model.output_stride).name == preset.model.backbone


def test_a_backbone_registered_in_one_place_builds_trains_and_checkpoints(tmp_path):
    from ifcn_viz.model.backbones import BACKBONES, Backbone, register_backbone

    class Pool8(Backbone):  # a toy stride-8 backbone: 3 stride-2 convs
        def __init__(self, width: int) -> None:
            super().__init__()
            self.net = nn.Sequential(*(nn.Conv2d(3 if i == 0 else width, width, 3, 2, 1) for i in range(3)))
            self.out_channels, self.stride = width, 8

        def forward(self, x):
            return self.net(x)

    try:
        register_backbone("pool8", strides=(8,), channels="backbone_width")(lambda stride, width: Pool8(width))
        with pytest.raises(ValueError, match="already registered"):
            register_backbone("pool8", strides=(8,), channels="")(lambda stride, width: Pool8(width))
        cfg = ModelConfig(backbone="pool8", k=3, m=9, head_channels=8, backbone_width=6)
        model = build_model(cfg)
        assert model.backbone.out_channels == 6 and model(torch.rand(1, 3, 64, 64)).score_maps.shape == (1, 9, 8, 8)
        loaded, _ = load_checkpoint(save_checkpoint(model, tmp_path / "pool8"))
        assert loaded.config == cfg and isinstance(loaded.backbone, Pool8)
    finally:
        BACKBONES.pop("pool8", None)


def test_presets():
    assert get_preset("paper").model == ModelConfig(backbone="vgg16", k=5, m=21, output_stride=8)
    assert get_preset("paper").model.window_pixels == 168
    assert {"paper", "resnet50", "tiny"} <= set(PRESETS)
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("huge")


def test_offline_imagenet_weights_error_names_the_local_file_route(monkeypatch):
    import torchvision

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(torchvision.models.VGG16_Weights.IMAGENET1K_V1.__class__, "get_state_dict", offline)
    with pytest.raises(RuntimeError, match="local path"):
        build_backbone("vgg16", weights="imagenet")


def test_backbone_weights_from_a_local_file(tmp_path):
    import torchvision

    ref = torchvision.models.resnet18(weights=None)
    torch.save(ref.state_dict(), tmp_path / "r18.pth")
    bb = build_backbone("resnet18", weights=str(tmp_path / "r18.pth"))
    assert torch.equal(bb.stem[0].weight, ref.conv1.weight) and torch.equal(
        bb.layer4[1].conv2.weight, ref.layer4[1].conv2.weight
    )
    vgg = torchvision.models.vgg16(weights=None)
    torch.save(vgg.state_dict(), tmp_path / "vgg.pth")
    bb = build_backbone("vgg16", weights=str(tmp_path / "vgg.pth"))
    assert torch.equal(bb.features[28].weight, vgg.features[28].weight)
    with pytest.raises(FileNotFoundError):
        build_backbone("vgg16", weights=str(tmp_path / "missing.pth"))


def test_checkpoint_round_trip_and_card(tmp_path):
    cfg = ModelConfig(backbone="tiny", k=3, m=9, head_channels=16, backbone_width=8)
    model = InstanceFCN(cfg)
    path = save_checkpoint(model, tmp_path / "ck", {"seed": 3})
    assert path.suffix == ".safetensors" and path.with_suffix(".json").is_file()
    loaded, card = load_checkpoint(path)
    assert card["seed"] == 3 and loaded.config == cfg and not loaded.training
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)


def test_a_lone_safetensors_file_is_a_complete_checkpoint_and_the_json_beside_it_wins(tmp_path):
    cfg = ModelConfig(backbone="tiny", k=3, m=9, head_channels=16, backbone_width=8, fill_logit=-7.0)
    model = InstanceFCN(cfg)
    path = save_checkpoint(model, tmp_path / "ck", {"seed": 3})
    card_file = path.with_suffix(".json")
    edited = {**json.loads(card_file.read_text()), "seed": 4}
    card_file.write_text(json.dumps(edited))
    assert load_checkpoint(path)[1]["seed"] == 4  # the JSON beside the weights is the card used
    card_file.unlink()
    lone = tmp_path / "elsewhere" / "copied.safetensors"
    lone.parent.mkdir()
    path.rename(lone)
    loaded, card = load_checkpoint(lone)
    assert card["seed"] == 3 and loaded.config == cfg
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)


def test_a_safetensors_without_a_card_inside_or_beside_is_refused_in_one_line(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "bare.safetensors"))
    with pytest.raises(CheckpointError, match="has no model card: none inside the file and no .*bare.json beside it"):
        load_checkpoint(tmp_path / "bare.safetensors")


def test_an_old_card_without_head_loads_as_instancefcn(tmp_path):
    from safetensors.torch import save_file

    model = InstanceFCN(ModelConfig(backbone="tiny", k=3, m=9, head_channels=8, backbone_width=8))
    path = tmp_path / "old.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path), metadata={"format": "x"})
    old_config = {k: v for k, v in model.config.to_dict().items() if k != "head"}
    path.with_suffix(".json").write_text(json.dumps({"model_config": old_config}))
    loaded, _ = load_checkpoint(path)
    assert type(loaded) is InstanceFCN and loaded.config.head == "ifcn"


def test_the_fc_head_is_part_of_the_model_config(tmp_path):
    from ifcn_viz.model.fc_baseline import FCBaselineModel

    cfg = ModelConfig(backbone="tiny", k=5, m=21, head_channels=8, backbone_width=8, head="fc")
    model = build_model(cfg)
    assert isinstance(model, FCBaselineModel) and model.config == dataclasses.replace(cfg, k=21)
    assert FCBaselineModel(ModelConfig(backbone="tiny", backbone_width=8)).config.head == "fc"
    with pytest.raises(ValueError, match="use ifcn_viz.model.build_model"):
        InstanceFCN(cfg)
    loaded, _ = load_checkpoint(save_checkpoint(model, tmp_path / "fc"))
    assert isinstance(loaded, FCBaselineModel) and loaded.config == model.config


def test_every_head_is_registered_once_and_build_model_is_the_one_dispatcher():
    from ifcn_viz.config import HEADS
    from ifcn_viz.model.fc_baseline import FCBaselineModel
    from ifcn_viz.model.heads import HEAD_CLASSES, register_head
    from ifcn_viz.model.learned_assembler import LearnedAssemblerModel

    assert HEAD_CLASSES == {"ifcn": InstanceFCN, "fc": FCBaselineModel, "learned": LearnedAssemblerModel}
    assert list(HEAD_CLASSES) == list(HEADS)
    assert all(cls.head == name for name, cls in HEAD_CLASSES.items())
    with pytest.raises(ValueError, match="already registered"):
        register_head("fc")(type("Again", (InstanceFCN,), {}))
    with pytest.raises(ValueError, match="no entry in ifcn_viz.config.HEADS"):
        register_head("unlisted")(type("Unlisted", (InstanceFCN,), {}))
    cfg = ModelConfig(backbone="tiny", k=3, m=21, head_channels=8, backbone_width=8, head="learned")
    onehot, random = build_model(cfg), build_model(cfg, assembler_init="random")
    assert type(onehot) is LearnedAssemblerModel and onehot.config.learned_k == 3
    assert onehot.init == "onehot" and random.init == "random"
    with pytest.raises(ValueError, match="assembler init must be one of onehot, random"):
        build_model(cfg, assembler_init="zeros")


def test_a_head_registered_in_one_place_builds_and_checkpoints(tmp_path, monkeypatch):
    """A new mask head: its class with @register_head and a line in config.HEADS; build_model and the checkpoints
    find it by the config's name (a packaged head's module is also imported by model/build.py)."""
    from ifcn_viz.config import HEADS
    from ifcn_viz.model.heads import HEAD_CLASSES, register_head

    monkeypatch.setitem(HEADS, "wide", "the paper's branches with a 5 x 5 score conv (a toy)")
    try:

        @register_head("wide")
        class Wide(InstanceFCN):
            def build_instance_branch(self, in_channels, config):
                branch = super().build_instance_branch(in_channels, config)
                branch.score = nn.Conv2d(config.head_channels, config.k**2, kernel_size=5, padding=2)
                return branch

        cfg = ModelConfig(backbone="tiny", k=3, m=9, head_channels=8, backbone_width=8, head="wide")
        model = build_model(cfg)
        assert type(model) is Wide and model.instance.score.kernel_size == (5, 5)
        loaded, _ = load_checkpoint(save_checkpoint(model, tmp_path / "wide"))
        assert type(loaded) is Wide and loaded.config == cfg
    finally:
        HEAD_CLASSES.pop("wide", None)


def test_a_preset_without_a_recipe_is_an_error_naming_the_recipe_to_add(monkeypatch):
    from ifcn_viz.config import PRESETS, Preset
    from ifcn_viz.train.recipe import RECIPES, train_config

    assert set(RECIPES) == set(PRESETS)
    monkeypatch.setitem(PRESETS, "norecipe", Preset(ModelConfig(backbone="tiny")))
    with pytest.raises(ValueError, match=r"no training recipe: add RECIPES\['norecipe'\] in ifcn_viz/train/recipe.py"):
        train_config("norecipe")


@pytest.mark.parametrize(
    "kwargs,msg",
    [
        ({"scales": ()}, "scales must be a non-empty tuple of positive ints"),
        ({"scales": (100, 0)}, "scales must be"),
        ({"scales": (100.0,)}, "scales must be"),
        ({"max_side": 0}, "max_side must be an integer >= 1"),
        ({"nms_iou": 0.0}, r"nms_iou must be in \(0, 1\]"),
        ({"nms_iou": 1.5}, "nms_iou"),
        ({"mask_threshold": 1.0}, r"mask_threshold must be in \(0, 1\)"),
        ({"mask_threshold": 0}, "mask_threshold"),
        ({"top_n": -1}, "top_n must be an integer >= 0"),
        ({"pre_nms_top_k": 2.5}, "pre_nms_top_k"),
    ],
)
def test_infer_config_validates_itself(kwargs, msg):
    with pytest.raises(ValueError, match=msg) as info:
        InferConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_infer_config_accepts_scales_read_back_from_json():
    assert InferConfig(scales=[100, 200]).scales == (100, 200)
    assert InferConfig(top_n=0, pre_nms_top_k=0, nms_iou=1.0).top_n == 0


def test_checkpoint_that_does_not_fit_its_card(tmp_path):
    model = InstanceFCN(ModelConfig(backbone="tiny", k=3, m=9, head_channels=16, backbone_width=8))
    path = save_checkpoint(model, tmp_path / "ck")
    card = json.loads(path.with_suffix(".json").read_text())
    card["model_config"]["k"] = 5
    path.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="does not fit its card.*k=5.*wrong shape"):
        load_checkpoint(path)


def test_checkpoint_refuses_code_running_pickle_without_running_it(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    import pickle

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"state_dict": Evil()}))
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="no checkpoint named"):
        load_checkpoint("no-such-model")


def test_geometry_convention():
    assert window_box(10, 10, 21, 8) == (0, 0, 168, 168)  # 21 cells = 168 px, as in the paper
    assert window_box(0, 0, 5, 4) == (-8, -8, 12, 12)  # a border window crosses the image edge


def test_ideal_maps_separate_touching_objects():
    masks = torch.zeros(2, 160, 256, dtype=torch.bool)
    masks[0, 40:120, 40:104] = True  # two touching rectangles, same "class"
    masks[1, 40:120, 104:168] = True
    ideal = ideal_score_maps(masks, k=5, m=21, stride=8)
    centers = torch.cat([torch.zeros(2, 1, dtype=torch.long), ideal.centers], 1)
    win = assemble_at(ideal.score_maps[None], centers, 21).sigmoid() > 0.5  # (2, 21, 21)
    for n in range(2):
        x0, y0, x1, y1 = window_box(*ideal.centers[n].tolist(), 21, 8)
        ys, xs = torch.nonzero(win[n], as_tuple=True)
        # the cells read "on" are exactly the object's cells, the neighbour's stay "off"
        cells = {(y0 // 8 + int(i), x0 // 8 + int(j)) for i, j in zip(ys, xs)}
        truth = {tuple(p) for p in torch.nonzero(ideal.owner == n).tolist()}
        assert cells == truth


def test_atomic_writes_have_ordinary_permissions(tmp_path):
    import os

    model = InstanceFCN(ModelConfig(backbone="tiny", k=3, m=9, head_channels=8, backbone_width=8))
    path = save_checkpoint(model, tmp_path / "ck")
    umask = os.umask(0)
    os.umask(umask)
    for p in (path, path.with_suffix(".json")):
        assert p.stat().st_mode & 0o777 == 0o666 & ~umask
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temporary left behind


def test_resnet_conv_layers_follow_the_main_path():
    from ifcn_viz.viz.receptive import theoretical_receptive_field

    bb = build_backbone("resnet50", output_stride=8)
    assert not any(m.kernel_size == (1, 1) and m.stride == (2, 2) for m in bb.conv_layers() if isinstance(m, nn.Conv2d))
    rf = theoretical_receptive_field(bb.conv_layers())
    assert rf.jump == 8  # output stride 8: the shortcut convs must not be counted as extra downsampling
