"""The parameter-free instance assembling module (paper, Sec. 3.1 "Instance assembling module").

An m x m window centred at feature position (y, x) is split into k x k sub-windows; sub-window (a, b)
copies its values from instance-sensitive score map ``a * k + b`` at the same positions.  Concretely, with
``r = m // 2`` the window cell (i, j) holds

    window[i, j] = score_maps[g(i) * k + g(j), y - r + i, x - r + j],     g(p) = floor(p * k / m)

The paper draws m as a multiple of k but uses m = 21, k = 5; it does not say how to bin 21 cells into 5.
We follow FCIS (msracver/FCIS) and use ``g(p) = floor(p * k / m)``: for k = 5, m = 21 the bins hold
5, 4, 4, 4, 4 cells.  The paper is also silent on windows that cross the border of the map: cells outside
the map take ``fill`` (default :data:`OUTSIDE_LOGIT` = -20, a logit whose sigmoid is about 2e-9, i.e.
"not object").  It is a constant, so no gradient flows through it.

Three equivalent implementations are provided:

* :func:`assemble_dense` -- every window of a batch, ``[B, H, W, m, m]`` (a few strided copies);
* :func:`iter_assemble_dense` -- the same in bands of rows, to bound memory;
* :func:`assemble_at` -- the windows at given centres ``[N, 3]`` of (batch, y, x), ``[N, m, m]`` (a gather);
* :func:`assemble_dense_conv` -- the "[0, ..., 1, ..., 0] convolution" readers of the paper guess at: a
  grouped convolution with one-hot m x m kernels over the maps re-indexed to m^2 channels.  It is exact but
  slow, and is kept to prove (in tests and notebooks) that the copy-paste assembler *is* that convolution.

All are differentiable, device-agnostic and dtype-preserving (so they run under autocast unchanged).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from ifcn_viz.config import check_km as _check_km

OUTSIDE_LOGIT: float = -20.0
"""Fill for window cells outside the score map: sigmoid(-20) ~ 2e-9 reads as "not object"."""


def _check_maps(score_maps: Tensor, k: int | None = None) -> int:
    """Validate a score-map tensor; return k (inferred from the channel count when not given)."""
    if not isinstance(score_maps, Tensor):
        raise TypeError(f"score_maps must be a torch.Tensor of shape [B, k*k, H, W], got {type(score_maps).__name__}")
    if score_maps.dim() != 4:
        raise ValueError(f"score_maps must be 4-D [B, k*k, H, W], got shape {tuple(score_maps.shape)}")
    if not score_maps.is_floating_point():
        raise TypeError(f"score_maps must be a floating-point tensor (logits), got dtype {score_maps.dtype}")
    c = score_maps.shape[1]
    if k is not None and k * k != c:
        raise ValueError(f"score_maps has {c} channels, expected k*k = {k * k} for k={k}")
    k = round(c**0.5)
    if k < 1 or k * k != c:
        raise ValueError(f"score_maps has {c} channels; the channel count must be k*k (1, 4, 9, 25, 49, ...)")
    return k


def bin_index(k: int, m: int, device: torch.device | str | None = None) -> Tensor:
    """``g(p) = floor(p * k / m)`` for p = 0..m-1: which of the k bins each of the m cells falls in. ``[m]``."""
    _check_km(k, m)
    return torch.arange(m, device=device) * k // m


def cell_to_map_index(k: int, m: int, device: torch.device | str | None = None) -> Tensor:
    """``LongTensor[m, m]``: the score-map channel ``g(i) * k + g(j)`` that window cell (i, j) copies from."""
    g = bin_index(k, m, device)
    return g[:, None] * k + g[None, :]  # (m, m)


def bin_edges(k: int, m: int) -> list[int]:
    """The k + 1 cell boundaries of the bins: bin a covers cells ``edges[a] <= p < edges[a + 1]``."""
    g = bin_index(k, m).tolist()
    return [g.index(a) for a in range(k)] + [m]


def assemble_dense(score_maps: Tensor, m: int, fill: float = OUTSIDE_LOGIT) -> Tensor:
    """Assemble the window centred at every feature position.

    Args:
        score_maps: ``[B, k*k, H, W]`` instance-sensitive score maps (logits).
        m: window size in feature cells (odd; the paper's 21).
        fill: the value of cells outside the map.

    Returns:
        ``[B, H, W, m, m]``: ``out[b, y, x]`` is the window centred at (y, x).  It is a permuted view of a
        contiguous ``[B, m, m, H, W]`` buffer (the layout in which the copies run at memory speed); call
        ``.contiguous()`` if a contiguous result is needed.
    """
    k = _check_maps(score_maps)
    _check_km(k, m)
    B, _, H, W = score_maps.shape
    return _assemble_rows(score_maps, k, m, fill, 0, H).permute(0, 3, 4, 1, 2)  # (B, H, W, m, m)


def _bin_runs(k: int, m: int) -> list[tuple[int, int, int, int]]:
    """Group consecutive bins of equal size: ``(first bin, end bin, first cell, cells per bin)`` per run.

    For k = 5, m = 21 the runs are (0, 1, 0, 5) and (1, 5, 5, 4): within a run, sub-window (a, b) is a fixed
    affine function of (a, b), so a whole run of sub-windows is one strided view of the padded maps.
    """
    edges = bin_edges(k, m)
    sizes = [edges[a + 1] - edges[a] for a in range(k)]
    runs, a = [], 0
    while a < k:
        b = a
        while b + 1 < k and sizes[b + 1] == sizes[a]:
            b += 1
        runs.append((a, b + 1, edges[a], sizes[a]))
        a = b + 1
    return runs


def _assemble_rows(score_maps: Tensor, k: int, m: int, fill: float, y0: int, y1: int) -> Tensor:
    """Windows centred on rows y0..y1-1 of the map, as ``[B, m, m, y1 - y0, W]``.

    ``out[b, i, j, y, x] = padded[b, g(i)*k + g(j), i + y, j + x]``.  Written sub-window by sub-window this is
    k^2 block copies; grouping bins of equal size (:func:`_bin_runs`) makes each pair of runs a single strided
    view, so k = 5, m = 21 takes 4 copies and runs close to memory speed.
    """
    B, C, H, W = score_maps.shape
    r = m // 2
    h = y1 - y0
    # Only the rows these windows can reach: y0 - r .. y1 - 1 + r, padded with `fill` outside the map.
    top, bottom = max(0, y0 - r), min(H, y1 + r)
    band = score_maps[:, :, top:bottom]
    padded = F.pad(band, (r, r, r - (y0 - top), r - (bottom - y1)), value=fill).contiguous()  # (B, C, h+2r, W+2r)
    sB, sC, sH, sW = padded.stride()
    base = padded.storage_offset()
    out = padded.new_empty((B, m, m, h, W))
    runs = _bin_runs(k, m)
    for a0, a1, i0, n in runs:  # rows: bins a0..a1-1, n cells each, starting at cell i0
        for b0, b1, j0, q in runs:  # columns likewise
            na, nb = a1 - a0, b1 - b0
            # src[b, a, u, c, v, y, x] = padded[b, (a0+a)*k + (b0+c), i0 + a*n + u + y, j0 + c*q + v + x]:
            # sub-window (a0+a, b0+c) copies score map (a0+a)*k + (b0+c) (paper, Sec. 3.1)
            src = padded.as_strided(
                (B, na, n, nb, q, h, W),
                (sB, k * sC + n * sH, sH, sC + q * sW, sW, sH, sW),
                base + (a0 * k + b0) * sC + i0 * sH + j0 * sW,
            )
            out[:, i0 : i0 + na * n, j0 : j0 + nb * q].view(B, na, n, nb, q, h, W).copy_(src)
    return out


def iter_assemble_dense(
    score_maps: Tensor, m: int, rows_per_chunk: int = 8, fill: float = OUTSIDE_LOGIT
) -> Iterator[tuple[int, int, Tensor]]:
    """Like :func:`assemble_dense`, in bands of rows so that peak memory is bounded.

    Yields ``(y0, y1, windows)`` with ``windows`` of shape ``[B, y1 - y0, W, m, m]`` for the centres on
    feature rows ``y0 <= y < y1``.  Peak extra memory is about ``B * rows_per_chunk * W * m * m`` elements.
    """
    k = _check_maps(score_maps)
    _check_km(k, m)
    if not isinstance(rows_per_chunk, int) or rows_per_chunk < 1:
        raise ValueError(f"rows_per_chunk must be an integer >= 1, got {rows_per_chunk!r}")
    H = score_maps.shape[2]
    for y0 in range(0, H, rows_per_chunk):
        y1 = min(H, y0 + rows_per_chunk)
        yield y0, y1, _assemble_rows(score_maps, k, m, fill, y0, y1).permute(0, 3, 4, 1, 2)


def assemble_at(score_maps: Tensor, centers: Tensor, m: int, fill: float = OUTSIDE_LOGIT) -> Tensor:
    """Assemble only the windows centred at ``centers``.

    Args:
        score_maps: ``[B, k*k, H, W]`` score-map logits.
        centers: ``LongTensor[N, 3]`` of (batch index, y, x) in feature-map cells.  Centres may lie anywhere in
            the map (windows crossing the border are filled with ``fill``).
        m: window size (odd).

    Returns:
        ``[N, m, m]`` windows; ``out[n]`` equals ``assemble_dense(score_maps, m)[b, y, x]`` for
        ``(b, y, x) = centers[n]``.
    """
    k = _check_maps(score_maps)
    _check_km(k, m)
    if not isinstance(centers, Tensor) or centers.dim() != 2 or centers.shape[1] != 3:
        shape = tuple(centers.shape) if isinstance(centers, Tensor) else type(centers).__name__
        raise ValueError(f"centers must be a tensor [N, 3] of (batch, y, x), got {shape}")
    if centers.is_floating_point() or centers.dtype == torch.bool:
        raise TypeError(f"centers must be an integer tensor, got dtype {centers.dtype}")
    B, _, H, W = score_maps.shape
    centers = centers.to(device=score_maps.device, dtype=torch.long)
    bi, yc, xc = centers.unbind(1)  # each (N,)
    if centers.numel() and (bi.min() < 0 or bi.max() >= B):
        raise ValueError(f"centers' batch index must be in [0, {B}), got range [{bi.min()}, {bi.max()}]")
    r = m // 2
    offs = torch.arange(m, device=score_maps.device) - r
    ys = yc[:, None, None] + offs[None, :, None]  # (N, m, 1)
    xs = xc[:, None, None] + offs[None, None, :]  # (N, 1, m)
    inside = (ys >= 0) & (ys < H) & (xs >= 0) & (xs < W)  # (N, m, m)
    chan = cell_to_map_index(k, m, score_maps.device)[None]  # (1, m, m)
    vals = score_maps[bi[:, None, None], chan, ys.clamp(0, H - 1), xs.clamp(0, W - 1)]  # (N, m, m)
    return torch.where(inside, vals, vals.new_tensor(fill))


def assemble_dense_conv(score_maps: Tensor, m: int, fill: float = OUTSIDE_LOGIT) -> Tensor:
    """The assembler as a grouped convolution with fixed one-hot kernels (exact; slow; for teaching).

    Re-index the k^2 maps to m^2 channels (channel ``i*m + j`` is a copy of map ``g(i)*k + g(j)``), then
    convolve each channel with a one-hot m x m kernel whose single 1 sits at (i, j).  Output ``[B, H, W, m, m]``.
    """
    k = _check_maps(score_maps)
    _check_km(k, m)
    B, _, H, W = score_maps.shape
    r = m // 2
    idx = cell_to_map_index(k, m, score_maps.device).flatten()  # (m*m,)
    x = F.pad(score_maps[:, idx], (r, r, r, r), value=fill)  # (B, m*m, H + 2r, W + 2r)
    weight = torch.eye(m * m, dtype=score_maps.dtype, device=score_maps.device).view(m * m, 1, m, m)
    out = F.conv2d(x, weight, groups=m * m)  # (B, m*m, H, W)
    return out.view(B, m, m, H, W).permute(0, 3, 4, 1, 2)


def assemble_reference(score_maps: Tensor, m: int, fill: float = OUTSIDE_LOGIT) -> Tensor:
    """A slow, literal loop over every window and cell, straight from the definition (tests and docs)."""
    k = _check_maps(score_maps)
    _check_km(k, m)
    B, _, H, W = score_maps.shape
    r = m // 2
    out = torch.full((B, H, W, m, m), fill, dtype=score_maps.dtype)
    s = score_maps.detach().cpu()
    for bb in range(B):
        for y in range(H):
            for x in range(W):
                for i in range(m):
                    for j in range(m):
                        yy, xx = y - r + i, x - r + j
                        if 0 <= yy < H and 0 <= xx < W:
                            c = (i * k // m) * k + (j * k // m)
                            out[bb, y, x, i, j] = s[bb, c, yy, xx]
    return out


class Assembler(torch.nn.Module):
    """A thin module around :func:`assemble_at` / :func:`assemble_dense` (no parameters)."""

    def __init__(self, k: int, m: int, fill: float = OUTSIDE_LOGIT) -> None:
        super().__init__()
        _check_km(k, m)
        self.k, self.m, self.fill = k, m, fill
        self.register_buffer("cell_to_map", cell_to_map_index(k, m), persistent=False)

    def forward(self, score_maps: Tensor, centers: Tensor | None = None) -> Tensor:
        _check_maps(score_maps, self.k)
        if centers is None:
            return assemble_dense(score_maps, self.m, self.fill)
        return assemble_at(score_maps, centers, self.m, self.fill)

    def extra_repr(self) -> str:
        return f"k={self.k}, m={self.m}, fill={self.fill}"
