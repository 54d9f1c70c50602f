"""Which windows are positive or negative, and the ground-truth m x m mask of each positive window.

The paper (Sec. 3.3, "Training") samples 256 windows per image at positive:negative = 1:1 and defines a
positive as in DeepMask: an object roughly *centred* in the window and of a *matching scale*.  It does not give
InstanceFCN's tolerances (docs/PAPER_NOTES.md, Sec. 2), so we take DeepMask's, measured in input pixels at
stride 8 and scaled by ``stride / 8`` for other strides:

* **reference size** ``R = ref_fraction * window``: DeepMask's object has its larger side at 128 px in a 224-px
  input, so ``ref_fraction = 128 / 224`` and ``R = 96 px`` for the 168-px window.
* **positive** window centred at cell (y, x) for object n: the centre of n's tight box lies within
  ``+-centre_tol`` px of the window centre on both axes (DeepMask: +-16 px), and n's larger side is within
  ``2^(+-pos_scale_tol)`` of R.  DeepMask jitters by +-0.25 octave for a pyramid in steps of 2^0.5; our pyramids
  step by 1.5 = 2^0.585 (docs/PAPER_NOTES.md, Sec. 3), so we widen this to +-0.5 octave (sides 68..136 px)
  so that every object size is positive at some scale.  Several qualifying objects: the one with the nearest centre.
* **negative**: for *every* object, the centre is at least ``neg_centre`` px away on some axis (DeepMask: 48 px)
  or the size is off by at least ``2^neg_scale_tol`` (DeepMask: a factor 2).  Windows that are neither are
  not sampled ("don't care").
* Only windows whose centre pixel lies inside the un-padded image are candidates.

Sampling: up to ``windows_per_image * positive_fraction`` positives (128 of 256); when fewer exist, all are
taken and the rest of the 256 is filled with negatives (our choice; the paper is silent).  Each draw is uniform
without replacement: every window gets a distinct random integer key and the eligible windows with the smallest
keys are taken (a random permutation, cut).

The whole batch is labelled, sampled and given its mask targets at once on the masks' device, with one host
synchronisation per batch (the number of windows drawn) -- no per-image loop (the per-image sampler it replaced
is kept in ``tests/_targets_reference.py``, and the two agree window for window).

Ground truth mask of a positive window: the owning instance's mask cropped to the window's pixel box
(:func:`ifcn_viz.model.geometry.window_box`: m*s pixels, zero outside the image) and area-resized to m x m,
i.e. the fraction of each cell's s x s pixels covered by that instance only (a touching neighbour reads 0).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ifcn_viz.model.geometry import POSITIVE_SCALE_TOLERANCE, REFERENCE_FRACTION


@dataclass(frozen=True)
class WindowRule:
    centre_tol: float = 16.0  # px at stride 8 (DeepMask)
    ref_fraction: float = REFERENCE_FRACTION  # reference object side / window side (DeepMask: 128 / 224)
    pos_scale_tol: float = POSITIVE_SCALE_TOLERANCE  # octaves (DeepMask: 0.25; widened, see module doc)
    neg_centre: float = 48.0  # px at stride 8 (DeepMask)
    neg_scale_tol: float = 1.0  # octaves (DeepMask)
    windows_per_image: int = 256  # (paper)
    positive_fraction: float = 0.5  # (paper) 1:1

    def __post_init__(self) -> None:
        if self.centre_tol < 0 or self.neg_centre <= self.centre_tol:
            raise ValueError(f"need 0 <= centre_tol < neg_centre, got {self.centre_tol}, {self.neg_centre}")
        if not 0 < self.pos_scale_tol <= self.neg_scale_tol:
            raise ValueError(f"need 0 < pos_scale_tol <= neg_scale_tol, got {self.pos_scale_tol}, {self.neg_scale_tol}")
        if self.windows_per_image < 1 or not 0 < self.positive_fraction <= 1:
            raise ValueError("windows_per_image must be >= 1 and positive_fraction in (0, 1]")

    def to_dict(self) -> dict:
        return asdict(self)


class WindowLabels(NamedTuple):
    positive: Tensor  # (H', W') bool
    negative: Tensor  # (H', W') bool
    owner: Tensor  # (H', W') long: the instance of each positive window, -1 elsewhere
    # (batched: each field [B, H', W'], the owner counted within its image)


class WindowTargets(NamedTuple):
    centers: Tensor  # (S, 3) long (b, y, x): every sampled window, the positives first
    labels: Tensor  # (S,) float: 1 positive, 0 negative
    pos_centers: Tensor  # (P, 3) long: the positive windows among them
    pos_masks: Tensor  # (P, m, m) float in [0, 1]: their ground-truth masks


def instance_box_stats(masks: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per instance of ``masks`` ``[N, H, W]``: its tight box's centre ``cx``, ``cy`` and larger side in pixels, and
    whether the mask has a pixel at all (``[N]`` each).  The box is torchvision's ``masks_to_boxes`` (inclusive
    corners) computed without a host synchronisation; an empty mask's numbers are meaningless."""
    h, w = masks.shape[1:]
    bytes_ = masks.view(torch.uint8) if masks.dtype == torch.bool else (masks != 0).view(torch.uint8)
    rows, cols = bytes_.amax(2), bytes_.amax(1)  # (N, H), (N, W): 1 where the mask has a pixel
    y0, x0 = rows.argmax(1).float(), cols.argmax(1).float()
    y1 = ((h - 1) - rows.flip(1).argmax(1)).float()
    x1 = ((w - 1) - cols.flip(1).argmax(1)).float()
    cx, cy = (x0 + x1 + 1) / 2, (y0 + y1 + 1) / 2
    side = torch.maximum(x1 - x0 + 1, y1 - y0 + 1)
    return cx, cy, side, rows.amax(1) > 0


def label_window_batch(
    cx: Tensor,
    cy: Tensor,
    side: Tensor,
    present: Tensor,
    valid_hw: Tensor,
    feat_hw: tuple[int, int],
    m: int,
    stride: int,
    rule: WindowRule,
) -> WindowLabels:
    """Label every window of B images at once (the rule of the module doc; DeepMask's, as the paper's Sec. 3.3).

    ``cx``, ``cy``, ``side``, ``present``: ``[B, n]``, instance slot j of image b (:func:`instance_box_stats`;
    slots an image does not fill are not ``present``).  ``valid_hw``: ``[B, 2]`` the true (h, w) of each image.
    Returns ``[B, H', W']`` fields; ``owner`` is the slot of the nearest-centred qualifying instance.
    """
    if cx.shape[1] == 0:  # no instance in the batch: one empty slot keeps the shapes (and argmin) defined
        cx, cy, side, present = (t.new_zeros((t.shape[0], 1)) for t in (cx, cy, side, present))
    hf, wf = feat_hw
    dev = cx.device
    ys = (torch.arange(hf, device=dev) + 0.5) * stride  # window centres in pixels
    xs = (torch.arange(wf, device=dev) + 0.5) * stride
    valid_hw = valid_hw.to(dev)
    inside = (ys[None, :, None] < valid_hw[:, 0, None, None]) & (xs[None, None, :] < valid_hw[:, 1, None, None])
    k = stride / 8.0
    ref = rule.ref_fraction * m * stride
    dscale = torch.log2(side / ref).abs()  # (B, n)
    dy = (ys[None, None, :, None] - cy[:, :, None, None]).abs()  # (B, n, H', 1)
    dx = (xs[None, None, None, :] - cx[:, :, None, None]).abs()  # (B, n, 1, W')
    cheb = torch.maximum(dy, dx)  # (B, n, H', W')
    pos_n = (cheb <= rule.centre_tol * k) & (present & (dscale <= rule.pos_scale_tol))[:, :, None, None]
    near_n = (cheb < rule.neg_centre * k) & (present & (dscale < rule.neg_scale_tol))[:, :, None, None]
    positive = pos_n.any(1) & inside
    negative = ~near_n.any(1) & inside
    dist = torch.where(pos_n, torch.hypot(dy.expand_as(cheb), dx.expand_as(cheb)), torch.full_like(cheb, float("inf")))
    owner = torch.where(positive, dist.argmin(1), torch.full_like(positive, -1, dtype=torch.long))
    return WindowLabels(positive, negative, owner)


def label_windows(
    masks: Tensor,
    feat_hw: tuple[int, int],
    m: int,
    stride: int,
    rule: WindowRule,
    valid_hw: tuple[int, int] | None = None,
) -> WindowLabels:
    """Label every window of one image (:func:`label_window_batch` of a batch of one).  ``masks``: ``[N, H, W]``
    bool at the input resolution; ``owner`` indexes them."""
    if masks.dim() != 3:
        raise ValueError(f"masks must be [N, H, W], got shape {tuple(masks.shape)}")
    valid = torch.tensor([valid_hw if valid_hw is not None else tuple(masks.shape[1:])])
    stats = (s[None] for s in instance_box_stats(masks))
    return WindowLabels(*(f[0] for f in label_window_batch(*stats, valid, feat_hw, m, stride, rule)))


def cell_cover(masks: Tensor, feat_hw: tuple[int, int], stride: int) -> Tensor:
    """``[N, H', W']``: the fraction of each output cell's ``stride x stride`` pixels that each mask covers (pixels
    past the mask's edge count as uncovered): an average pool of the masks at the output stride."""
    hf, wf = feat_hw
    H, W = hf * stride, wf * stride
    sub = masks[:, :H, :W].float()
    sub = F.pad(sub, (0, W - sub.shape[2], 0, H - sub.shape[1]))  # (N, H, W)
    return F.avg_pool2d(sub[:, None], stride)[:, 0]


def window_mask_targets(
    masks: Tensor, owners: Tensor, yx: Tensor, feat_hw: tuple[int, int], m: int, stride: int
) -> Tensor:
    """Ground-truth ``[P, m, m]`` masks: instance ``owners[p]`` cropped to the window at cell ``yx[p]``, area-resized.

    Because the window box is aligned to the cell grid (m*s pixels), area-resizing to m x m is the mean over each
    cell's s x s pixels (:func:`cell_cover`, computed once per instance of ``masks``), cut out around the cell.
    """
    if owners.numel() == 0:
        return torch.zeros((0, m, m), dtype=torch.float32, device=masks.device)
    r = m // 2
    cover = F.pad(cell_cover(masks, feat_hw, stride), (r, r, r, r))  # zero outside the image
    offs = torch.arange(m, device=masks.device)
    iy = yx[:, 0, None, None] + offs[None, :, None]  # (P, m, 1) rows in the padded map
    ix = yx[:, 1, None, None] + offs[None, None, :]  # (P, 1, m)
    return cover[owners[:, None, None], iy, ix]  # (P, m, m)


def window_keys(shape: tuple[int, int], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """``[B, W]`` distinct random int64 keys per row: random high bits, the window's index as the low bits.

    Drawn on ``generator``'s device (so a CPU generator gives the same draw on every device), then moved."""
    b, n = shape
    bits = max(1, (n - 1).bit_length())
    gdev = generator.device if generator is not None else torch.device("cpu")
    high = torch.randint(0, 2 ** (62 - bits), (b, n), generator=generator, device=gdev)
    return ((high << bits) | torch.arange(n, device=gdev)).to(device, non_blocking=True)


def draw_windows(labels: WindowLabels, keys: Tensor, rule: WindowRule) -> tuple[Tensor, Tensor]:
    """Per image, up to ``windows_per_image * positive_fraction`` positives, then negatives up to
    ``windows_per_image`` in all (paper, Sec. 3.3: 256 at 1:1), each set uniform without replacement: the
    eligible windows with the smallest ``keys`` (:func:`window_keys`).

    Returns ``take`` ``[2, B, K]`` bool (row 0: positives, row 1: negatives) and ``at`` ``[2, B, K]`` the flat
    cell index of each candidate; :func:`drawn_centers` lists the taken ones.  No host synchronisation.
    """
    b, hf, wf = labels.positive.shape
    dev = keys.device
    n_pos_max = int(round(rule.windows_per_image * rule.positive_fraction))
    kp, kn = min(n_pos_max, hf * wf), min(rule.windows_per_image, hf * wf)
    none = torch.iinfo(torch.int64).max
    pos_key, pos_at = torch.where(labels.positive.flatten(1), keys, none).topk(kp, 1, largest=False)
    neg_key, neg_at = torch.where(labels.negative.flatten(1), keys, none).topk(kn, 1, largest=False)
    take_pos = pos_key != none  # (B, kp): the first min(P_b, n_pos_max) of each row
    room = rule.windows_per_image - take_pos.sum(1, keepdim=True)
    take_neg = (neg_key != none) & (torch.arange(kn, device=dev) < room)
    pad = torch.zeros((b, kn - kp), dtype=torch.bool, device=dev)
    take = torch.stack([torch.cat([take_pos, pad], 1), take_neg])
    return take, torch.stack([torch.cat([pos_at, pad.long()], 1), neg_at])


def drawn_centers(take: Tensor, at: Tensor, n_taken: int, wf: int) -> Tensor:
    """``[S, 3]`` (b, y, x) of the windows :func:`draw_windows` took: every image's positives (image by image), then
    every image's negatives.  ``n_taken = take.sum()``, read by the caller (so that it can be read together with
    other counts in one host synchronisation)."""
    g, b, j = torch.nonzero_static(take, size=n_taken).unbind(1)
    cell = at[g, b, j]
    return torch.stack([b, cell // wf, cell % wf], 1)


class InstanceBatch(NamedTuple):
    """Every instance of a batch in one tensor, with where each belongs (:func:`stack_instances`)."""

    masks: Tensor  # (N, H, W) bool: image 0's instances, then image 1's, ...
    slot_of: Tensor  # (N,) long: b * n + j for instance j of image b
    first: Tensor  # (B,) long: the index of image b's first instance
    n: int  # the most instances of one image
    valid_hw: Tensor  # (B, 2) long: the true (h, w) of each image


def _pad_to(masks: Tensor, h: int, w: int) -> Tensor:
    if tuple(masks.shape[1:]) == (h, w):
        return masks
    return F.pad(masks.to(torch.uint8), (0, w - masks.shape[2], 0, h - masks.shape[1])).bool()


def stack_instances(masks_list: list[Tensor], valid_sizes: Tensor | None = None) -> InstanceBatch:
    """``masks_list[b]``: ``[N_b, H, W]`` masks of image b (images of different sizes are padded with zeros);
    ``valid_sizes`` ``[B, 2]`` (default: each image's mask size).  Per-image sizes only: no host synchronisation."""
    counts = [int(mk.shape[0]) for mk in masks_list]
    h = max(int(mk.shape[1]) for mk in masks_list)
    w = max(int(mk.shape[2]) for mk in masks_list)
    if valid_sizes is None:
        valid_sizes = torch.tensor([tuple(mk.shape[1:]) for mk in masks_list])
    return _instance_batch(torch.cat([_pad_to(mk.bool(), h, w) for mk in masks_list]), counts, valid_sizes)


def _instance_batch(masks: Tensor, counts: list[int], valid_hw: Tensor) -> InstanceBatch:
    """``masks``: the ``sum(counts)`` instances, image by image; the slot table from the per-image counts."""
    dev, n = masks.device, max(counts, default=0)
    slot_of = [b * n + j for b, c in enumerate(counts) for j in range(c)]
    first = [sum(counts[:b]) for b in range(len(counts))]
    return InstanceBatch(
        masks,
        torch.tensor(slot_of, dtype=torch.long).to(dev, non_blocking=True),
        torch.tensor(first, dtype=torch.long).to(dev, non_blocking=True),
        n,
        valid_hw.to(dev, non_blocking=True),
    )


def instances_from_labels(labels: Tensor, counts: list[int], valid_hw: Tensor) -> InstanceBatch:
    """The instances of a batch of label maps ``[B, H, W]`` (0 background, i the i-th of ``counts[b]`` instances;
    disjoint masks, as the synthetic scenes'), on the maps' device; an instance may be empty (it then labels no
    window).  Host work only: no synchronisation."""
    dev = labels.device
    image_of = torch.tensor([b for b, c in enumerate(counts) for _ in range(c)], dtype=torch.long)
    ids = torch.tensor([j + 1 for c in counts for j in range(c)], dtype=labels.dtype)
    masks = labels[image_of.to(dev, non_blocking=True)] == ids.to(dev, non_blocking=True)[:, None, None]
    return _instance_batch(masks, counts, valid_hw)


def label_instance_batch(
    inst: InstanceBatch, feat_hw: tuple[int, int], m: int, stride: int, rule: WindowRule
) -> WindowLabels:
    """:func:`label_window_batch` of a stacked batch: ``[B, H', W']`` fields, the owner counted within its image."""
    b = inst.first.shape[0]
    slots = []
    for stat in instance_box_stats(inst.masks):
        full = stat.new_zeros(b * max(inst.n, 1))
        full[inst.slot_of] = stat
        slots.append(full.view(b, -1))
    return label_window_batch(*slots, inst.valid_hw, feat_hw, m, stride, rule)


def sample_windows(
    masks_list: list[Tensor] | InstanceBatch,
    feat_hw: tuple[int, int],
    m: int,
    stride: int,
    rule: WindowRule | None = None,
    generator: torch.Generator | None = None,
    valid_sizes: Tensor | None = None,
) -> WindowTargets:
    """Sample ``rule.windows_per_image`` windows per image and build their targets (see the module doc), for the
    whole batch at once on the masks' device.

    ``masks_list[b]``: ``[N_b, H, W]`` bool masks of image b (N_b may be 0), or the batch's instances already
    stacked (:class:`InstanceBatch`, e.g. :func:`instances_from_labels`).  ``valid_sizes``: ``[B, 2]`` true
    (h, w) of each image inside the padded batch (default: each image's mask size; an InstanceBatch has its
    own).  ``generator`` makes the draw reproducible; a CPU generator draws the same windows on every device.
    """
    rule = rule or WindowRule()
    if not isinstance(masks_list, InstanceBatch) and not masks_list:
        z = torch.zeros((0, 3), dtype=torch.long)
        return WindowTargets(z, torch.zeros(0), z, torch.zeros((0, m, m)))
    inst = masks_list if isinstance(masks_list, InstanceBatch) else stack_instances(masks_list, valid_sizes)
    labels = label_instance_batch(inst, feat_hw, m, stride, rule)
    dev = inst.masks.device
    take, at = draw_windows(labels, window_keys((len(inst.first), feat_hw[0] * feat_hw[1]), generator, dev), rule)
    # the instances that own a positive window: only their masks are pooled for the targets
    n_inst = inst.masks.shape[0]
    owner = torch.where(labels.owner >= 0, labels.owner + inst.first[:, None, None], n_inst).flatten()
    owns = torch.zeros(n_inst + 1, dtype=torch.bool, device=dev).index_fill_(0, owner, True)[:n_inst]
    n_pos, n_all, n_used = torch.stack([take[0].sum(), take.sum(), owns.sum()]).tolist()  # the one host sync
    centers = drawn_centers(take, at, n_all, feat_hw[1])
    pos = centers[:n_pos]
    used = torch.nonzero_static(owns, size=n_used).squeeze(1)
    local = torch.zeros(n_inst, dtype=torch.long, device=dev).index_copy_(0, used, torch.arange(n_used, device=dev))
    owners = local[labels.owner[pos[:, 0], pos[:, 1], pos[:, 2]] + inst.first[pos[:, 0]]]
    pos_masks = window_mask_targets(inst.masks[used], owners, pos[:, 1:], feat_hw, m, stride)
    flags = torch.zeros(len(centers), device=dev)
    flags[:n_pos] = 1.0
    return WindowTargets(centers, flags, pos, pos_masks)
