import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from _viz_helpers import random_maps  # noqa: E402
from PIL import Image  # noqa: E402

from ifcn_viz.gallery import commands  # noqa: E402
from ifcn_viz.viz import score_map_mosaic  # noqa: E402
from ifcn_viz.viz.figures import plot_heatmap, plot_loss_curve, plot_score_maps  # noqa: E402
from ifcn_viz.viz.palette import logit_range  # noqa: E402


def test_plot_helpers_draw_on_the_given_ax():
    fig, axes = plt.subplots(1, 3)
    maps = random_maps(3, 8, 8)
    assert plot_score_maps(axes[0], maps, title="maps", cell_px=4) is axes[0]
    shown = axes[0].images[0].get_array()
    assert np.array_equal(np.asarray(shown), score_map_mosaic(maps, cell_px=4))  # the very same picture
    plot_heatmap(axes[1], maps[0], kind="logit")
    lo, hi = axes[1].images[0].get_clim()
    scale = logit_range(maps[0])
    assert (lo, hi) == (scale.lo, scale.hi)  # the same logit scale as the pure views
    assert len(fig.axes) == 4  # the colour bar got its own axes
    plot_loss_curve(axes[2], [1, 2, 3], {"total": [3.0, 2.0, 1.0]})
    assert axes[2].get_yscale() == "log" and len(axes[2].lines) == 1
    with pytest.raises(ValueError, match="kind"):
        plot_heatmap(axes[1], maps[0], kind="nope")
    plt.close(fig)


@pytest.mark.slow
def test_gallery_command_renders_every_model_free_view(tmp_path):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    commands.register(sub)
    args = parser.parse_args(["gallery", "--out", str(tmp_path), "--checkpoint", "none"])
    assert args.func(args) == 0
    names = {p.name for p in tmp_path.iterdir()}
    expected = {"score_maps.png", "objectness.png", "window.png", "assembly.gif", "assembly_step.png", "slide.gif"}
    expected |= {"provenance.png", "k_comparison.png", "ideal_maps.png", "training_targets.png", "receptive_field.png"}
    assert expected <= names
    with Image.open(tmp_path / "assembly.gif") as gif:
        assert gif.n_frames == 5 * 5 + 2
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) < 3 * 1024 * 1024
