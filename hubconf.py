"""torch.hub entry points for ifcn_viz's shipped models (works offline with ``source="local"``).

    import torch
    model = torch.hub.load("path/to/ifcn_viz", "instancefcn_tiny", source="local")            # an nn.Module
    predictor = torch.hub.load("path/to/ifcn_viz", "instancefcn_tiny_predictor", source="local")
    predictor.set_image(image)          # H x W x 3 uint8 array, PIL image or path
    proposals = predictor.proposals()   # masks, boxes, scores of the top segment proposals

``instancefcn_tiny`` (and ``instancefcn_small``, the wider model) returns the model (an
:class:`ifcn_viz.InstanceFCN` in eval mode, as torchvision's hub entries do); ``instancefcn_tiny_predictor``
returns an :class:`ifcn_viz.Predictor` around it, which turns images
into segment proposals.  The weights ship inside the repository (``ifcn_viz/weights/shipped.safetensors``, with
the model card in its metadata), so nothing is downloaded.
"""

dependencies = ["torch", "torchvision", "safetensors", "numpy", "PIL"]


def instancefcn_tiny(pretrained: bool = True, device: str = "cpu"):
    """The shipped ``tiny`` InstanceFCN (k = 5, m = 21, stride 8), trained on synthetic touching-object scenes;
    ``pretrained=False`` gives the same architecture at random initialisation.  Returns the model in eval mode."""
    if not pretrained:
        from ifcn_viz.model import build_model

        return build_model("tiny").to(device).eval()
    from ifcn_viz.checkpoints import load_checkpoint

    model, _card = load_checkpoint("shipped", device=device)
    return model


def instancefcn_tiny_predictor(device: str | None = None):
    """A :class:`ifcn_viz.Predictor` with the shipped ``tiny`` model and the inference settings of its card."""
    from ifcn_viz.inference.predictor import Predictor

    return Predictor.from_checkpoint("shipped", device=device)


def instancefcn_small(pretrained: bool = True, device: str = "cpu"):
    """The shipped ``small`` InstanceFCN (the tiny CNN twice as wide, 3.6M parameters, about 3x slower; at its
    shipped budget of 1,500 iterations it is behind ``instancefcn_tiny``, see docs/TRAINING.md).
    ``pretrained=False`` gives the architecture at random initialisation.  Returns the model in eval mode."""
    if not pretrained:
        from ifcn_viz.model import build_model

        return build_model("small").to(device).eval()
    from ifcn_viz.checkpoints import load_checkpoint

    model, _card = load_checkpoint("small", device=device)
    return model


def instancefcn_small_predictor(device: str | None = None):
    """A :class:`ifcn_viz.Predictor` with the shipped ``small`` model and the inference settings of its card."""
    from ifcn_viz.inference.predictor import Predictor

    return Predictor.from_checkpoint("small", device=device)
