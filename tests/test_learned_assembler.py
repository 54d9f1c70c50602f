"""The learned assembler (ifcn_viz/model/learned_assembler.py): the control experiment for "why parameter-free?"."""

from __future__ import annotations

import json

import pytest
import torch

from ifcn_viz.config import InferConfig, ModelConfig, get_preset
from ifcn_viz.model.assemble import assemble_at, assemble_dense, assemble_reference, cell_to_map_index
from ifcn_viz.model.learned_assembler import LearnedAssembler, LearnedAssemblerModel, onehot_assembler_weight

TINY = get_preset("tiny").model


def test_config_and_shapes():
    torch.manual_seed(0)
    model = LearnedAssemblerModel(TINY).eval()
    assert (model.config.head, model.config.k, model.config.m, model.config.learned_k) == ("learned", 21, 21, 5)
    images = torch.rand(2, 3, 96, 128)
    out = model(images)
    assert out.score_maps.shape == (2, 441, 12, 16) and out.objectness.shape == (2, 1, 12, 16)
    assert model.score_maps(images).shape == (2, 25, 12, 16)
    assert model.instance.assembler.weight_grid().shape == (25, 21, 21)
    assert model.assembler_parameters() == 441 * 25 + 441
    assert model.mask_layer_parameters() == 3 * 3 * 128 * 25 + 25 + 441 * 25 + 441
    k3 = LearnedAssemblerModel(ModelConfig(backbone="tiny", k=3, m=9, head_channels=8, backbone_width=8))
    assert (k3.config.k, k3.config.learned_k, k3.instance.assembler.mix.weight.shape) == (9, 3, (81, 9, 1, 1))
    with pytest.raises(ValueError, match="learned_k is only for head='learned'"):
        ModelConfig(learned_k=5)
    with pytest.raises(ValueError, match="k must be <= m"):
        ModelConfig(head="learned", k=21, m=21, learned_k=23)
    with pytest.raises(ValueError, match="assembler init must be one of onehot, random"):
        LearnedAssembler(5, 21, init="zeros")


@pytest.mark.parametrize("k, m", [(1, 3), (3, 7), (5, 21), (4, 9)])
def test_onehot_weight_is_the_papers_cell_to_map_index(k, m):
    w = onehot_assembler_weight(k, m)
    assert w.shape == (m * m, k * k) and torch.equal(w.sum(1), torch.ones(m * m))
    assert torch.equal(w.argmax(1).view(m, m), cell_to_map_index(k, m))


@pytest.mark.parametrize("k, m", [(3, 7), (5, 9)])
def test_onehot_init_equals_the_parameter_free_assembler_float64(k, m):
    """At one-hot init, every window of the learned assembler (borders included) is the paper's, to float64 ulp."""
    torch.manual_seed(1)
    maps = torch.randn(2, k * k, 6, 8, dtype=torch.float64)
    asm = LearnedAssembler(k, m, init="onehot").double()
    cell_maps = asm(maps)  # (2, m*m, 6, 8)
    learned = assemble_dense(cell_maps, m, fill=-20.0)  # the k = m copy
    reference = assemble_reference(maps, m, fill=-20.0)  # the literal loop of the paper's definition
    assert torch.equal(learned, reference)
    rnd = LearnedAssembler(k, m, init="random").double()
    assert not torch.allclose(assemble_dense(rnd(maps), m, fill=-20.0), reference)


def test_onehot_model_equals_the_parameter_free_model_bit_for_bit():
    """The whole model at one-hot init: its m^2 maps assemble exactly the windows its k^2 maps assemble."""
    torch.manual_seed(2)
    model = LearnedAssemblerModel(TINY).eval()
    images = torch.rand(1, 3, 80, 104)
    with torch.no_grad():
        out = model(images)
        maps = model.score_maps(images)
    assert torch.equal(assemble_dense(out.score_maps, 21), assemble_dense(maps, 21))
    centers = torch.tensor([[0, 0, 0], [0, 4, 6], [0, 9, 12], [0, -3, 20]])
    assert torch.equal(assemble_at(out.score_maps, centers, 21), assemble_at(maps, centers, 21))


def test_gradcheck_on_a_tiny_input():
    torch.manual_seed(3)
    asm = LearnedAssembler(2, 3, init="random").double()
    maps = torch.randn(1, 4, 3, 4, dtype=torch.float64, requires_grad=True)
    centers = torch.tensor([[0, 0, 0], [0, 1, 2], [0, 2, 3]])

    def windows(x, w, b):
        cell_maps = torch.nn.functional.conv2d(x, w, b)
        return assemble_at(cell_maps, centers, 3, fill=-20.0)

    w = asm.mix.weight.detach().clone().requires_grad_(True)
    b = asm.mix.bias.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(windows, (maps, w, b))
    assert torch.equal(windows(maps, w, b), assemble_at(asm(maps), centers, 3, fill=-20.0))


def test_trains_saves_loads_and_proposes(tmp_path):
    """`ifcn-viz train --head learned --assembler-init random`: the checkpoint's card says so; it loads back, the
    weights are the trained ones, and the Predictor and the CLI make proposals from it."""
    from ifcn_viz.checkpoints import load_checkpoint
    from ifcn_viz.cli import main
    from ifcn_viz.data.synthetic import SyntheticDataset
    from ifcn_viz.inference.predictor import Predictor

    out = tmp_path / "learned"
    argv = ["train", "--head", "learned", "--assembler-init", "random", "--iters", "2", "--batch-size", "1",
            "--image-size", "96", "--eval-images", "0", "--amp", "none", "--no-progress", "--out", str(out),
            "--threads", "1"]  # fmt: skip
    assert main(argv) == 0
    ckpt = out / "checkpoint.safetensors"
    card = json.loads((out / "checkpoint.json").read_text())
    assert card["train_config"]["assembler_init"] == "random" and card["model_config"]["learned_k"] == 5
    model, card = load_checkpoint(ckpt)
    assert isinstance(model, LearnedAssemblerModel) and model.config.head == "learned"
    w = model.instance.assembler.mix.weight[:, :, 0, 0]
    assert not torch.equal(w, onehot_assembler_weight(5, 21))  # the trained random weights, not a fresh one-hot
    from safetensors.torch import load_file

    assert torch.equal(load_file(str(ckpt))["instance.assembler.mix.weight"], model.instance.assembler.mix.weight)
    predictor = Predictor.from_checkpoint(ckpt, infer=InferConfig(scales=(96,), pre_nms_top_k=50, top_n=10))
    image = SyntheticDataset(1, seed=2, size=(96, 96)).scene(0)[0]
    predictor.set_image(image)
    props = predictor.proposals()
    assert 0 < len(props.scores) <= 10 and props.masks.shape[1:] == (96, 96)
    window = predictor.window(48, 48)
    assert window.logits.shape == (21, 21)


def test_onehot_training_starts_at_the_parameter_free_loss():
    """Same seed, same batch: the one-hot learned model's first loss is the parameter-free model's."""
    from ifcn_viz.train.loop import build_train_model
    from ifcn_viz.train.recipe import train_config

    base = dict(iters=1, batch_size=1, eval_images=0, progress=False)
    ifcn = build_train_model(train_config("tiny", **base))
    learned = build_train_model(train_config("tiny", head="learned", **base))
    ifcn_sd = ifcn.state_dict()
    moved = {k.replace("instance.branch.", "instance."): v for k, v in learned.state_dict().items()}
    for key, value in ifcn_sd.items():
        assert torch.equal(moved[key], value), key  # same seed -> same backbone and score-map weights
    images = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        a = assemble_dense(ifcn(images).score_maps, 21)
        b = assemble_dense(learned(images).score_maps, 21)
    assert torch.equal(a, b)


def test_from_parameter_free_keeps_the_trained_maps_and_starts_at_their_windows():
    from ifcn_viz.model.instance_fcn import InstanceFCN
    from ifcn_viz.model.learned_assembler import from_parameter_free

    torch.manual_seed(4)
    base = InstanceFCN(TINY).eval()
    images = torch.rand(1, 3, 64, 80)
    learned = from_parameter_free(base, "onehot").eval()
    with torch.no_grad():
        a, b = base(images), learned(images)
        assert torch.equal(learned.score_maps(images), a.score_maps) and torch.equal(a.objectness, b.objectness)
        assert torch.equal(assemble_dense(a.score_maps, 21), assemble_dense(b.score_maps, 21))
    rnd = from_parameter_free(base, "random")
    assert not torch.equal(rnd.instance.assembler.mix.weight[:, :, 0, 0], onehot_assembler_weight(5, 21))
    with pytest.raises(ValueError, match="expected the paper's InstanceFCN"):
        from_parameter_free(learned)


def test_outlined_mosaic_draws_outlines_not_an_image_under_the_maps():
    import numpy as np

    from ifcn_viz.viz.maps import score_map_mosaic
    from ifcn_viz.viz.outlines import outline_color, outlined_mosaic

    maps = np.zeros((4, 6, 12), np.float32)  # wide enough that the mosaic is the widest part (not centred)
    maps[0, 2:4, 2:4] = 5.0
    masks = np.zeros((1, 48, 96), bool)
    masks[0, 16:32, 16:32] = True  # cells 2..3 at stride 8
    out = outlined_mosaic(maps, masks, 2, cell_px=8, names=["thing"])
    plain = score_map_mosaic(maps, 2, cell_px=8, colorbar=False)
    tile = out[: 6 * 8, : 12 * 8]
    assert (tile == np.array(outline_color(0), np.uint8)).all(-1).sum() > 40  # the ring is drawn
    inside = out[17:31, 17:31]  # the object's own cells keep the map's colour (the ring lies outside them)
    assert (inside == plain[17:31, 17:31]).all()
    assert out.shape[0] > plain.shape[0] and out.shape[1] >= plain.shape[1]  # legend and colour bar below


def test_ablation_summary_over_seeds_and_its_table(tmp_path):
    """mean and sample std over the seeds per variant, in VARIANTS order; the table shows them with +-."""
    import statistics

    from ifcn_viz.train.ablation import VARIANTS, summarise, write_table
    from ifcn_viz.train.recipe import train_config

    runs = []
    for seed, (a, b) in enumerate([(0.1, 0.2), (0.3, 0.4), (0.2, 0.6)]):
        for name, _, _ in VARIANTS[::-1]:  # any order in, VARIANTS order out
            runs.append({"variant": name, "seed": seed, "k": 5, "params_total": 10, "params_mask_layer": 7,
                         "wall_s": 1.0, "AR@10": a, "AR@100": b})  # fmt: skip
    rows = summarise(runs)
    assert [r["variant"] for r in rows] == [v[0] for v in VARIANTS] and all(r["n_seeds"] == 3 for r in rows)
    assert rows[0]["AR@100"] == pytest.approx(0.4) and rows[0]["AR@100_std"] == pytest.approx(
        statistics.stdev([0.2, 0.4, 0.6])
    )
    assert rows[0]["AR@10_seeds"] == [0.1, 0.3, 0.2]
    write_table(tmp_path / "A.md", rows, 5, (0, 1, 2), 2, train_config("tiny", iters=5, train_scenes=20))
    text = (tmp_path / "A.md").read_text()
    assert "0.400 +- 0.200" in text and "seeds 0, 1, 2" in text and "learned assembler, random init (k = 5)" in text
    assert "drawn from 20 per seed" in text
