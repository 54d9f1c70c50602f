"""The assembling module against the paper's definition (slow float64 loops), a one-hot grouped conv, gradcheck."""

import pytest
import torch

from ifcn_viz.model.assemble import (
    OUTSIDE_LOGIT,
    Assembler,
    assemble_at,
    assemble_dense,
    assemble_dense_conv,
    assemble_reference,
    bin_edges,
    bin_index,
    cell_to_map_index,
    iter_assemble_dense,
)

KM = [(1, 1), (1, 3), (1, 7), (2, 5), (3, 3), (3, 7), (5, 5), (5, 21), (7, 21), (4, 9)]


def maps(k, h=5, w=6, b=2, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, k * k, h, w, generator=g, dtype=dtype)


def test_binning_21_by_5_follows_fcis():
    # g(p) = floor(p * k / m): for k = 5, m = 21 the bins hold 5, 4, 4, 4, 4 cells
    counts = torch.bincount(bin_index(5, 21))
    assert counts.tolist() == [5, 4, 4, 4, 4]
    assert bin_edges(5, 21) == [0, 5, 9, 13, 17, 21]
    assert bin_edges(3, 9) == [0, 3, 6, 9]  # m a multiple of k: equal bins, as the paper draws


def test_cell_to_map_index_known_values():
    idx = cell_to_map_index(3, 3)
    assert idx.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    idx = cell_to_map_index(5, 21)
    assert idx[0, 0] == 0 and idx[0, 20] == 4 and idx[20, 0] == 20 and idx[20, 20] == 24
    assert idx[4, 5] == 1 and idx[5, 4] == 5  # cell 4 is the last of bin 0, cell 5 the first of bin 1
    assert cell_to_map_index(1, 7).unique().tolist() == [0]


@pytest.mark.parametrize("k,m", KM)
def test_dense_equals_reference_loop(k, m):
    s = maps(k)
    assert torch.equal(assemble_dense(s, m), assemble_reference(s, m))


def test_dense_on_tiny_known_input():
    # k = 1, m = 3 on a 2x2 map holding 1..4: the window at (0, 0) sees the map in its lower-right 2x2
    s = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    f = OUTSIDE_LOGIT
    w = assemble_dense(s, 3)[0, 0, 0]
    assert w.tolist() == [[f, f, f], [f, 1.0, 2.0], [f, 3.0, 4.0]]
    # k = m = 3: each cell reads its own map, so the centre window of a 1x1 map picks the diagonal of one-hots
    s = torch.arange(9.0).view(1, 9, 1, 1)
    w = assemble_dense(s, 3, fill=-1.0)[0, 0, 0]
    assert w.tolist() == [[-1, -1, -1], [-1, 4.0, -1], [-1, -1, -1]]


@pytest.mark.parametrize("k,m", KM)
def test_sparse_equals_dense_including_every_border(k, m):
    s = maps(k, h=4, w=7)
    dense = assemble_dense(s, m)
    b, h, w = s.shape[0], s.shape[2], s.shape[3]
    centers = torch.tensor([[bb, y, x] for bb in range(b) for y in range(h) for x in range(w)])
    sparse = assemble_at(s, centers, m)
    assert torch.equal(sparse, dense[centers[:, 0], centers[:, 1], centers[:, 2]])


def test_sparse_centres_outside_the_map_are_allowed():
    s = maps(5, h=4, w=4)
    w = assemble_at(s, torch.tensor([[0, -3, 10], [1, 100, 100]]), 21)
    ref = assemble_reference(torch.nn.functional.pad(s, (10, 10, 10, 10), value=OUTSIDE_LOGIT), 21)
    assert torch.equal(w[0], ref[0, -3 + 10, 10 + 10])
    assert torch.all(w[1] == OUTSIDE_LOGIT)


@pytest.mark.parametrize("k,m", [(1, 3), (3, 7), (5, 21), (7, 7)])
def test_equals_one_hot_grouped_convolution(k, m):
    s = maps(k, h=6, w=5)
    assert torch.equal(assemble_dense_conv(s, m), assemble_dense(s, m))


@pytest.mark.parametrize("rows", [1, 3, 8, 100])
def test_chunked_equals_dense(rows):
    s = maps(5, h=9, w=4)
    dense = assemble_dense(s, 21)
    parts = list(iter_assemble_dense(s, 21, rows_per_chunk=rows))
    assert [p[0] for p in parts] == list(range(0, 9, rows))
    assert torch.equal(torch.cat([p[2] for p in parts], dim=1), dense)


def test_gradcheck_dense_and_sparse():
    s = maps(3, h=4, w=4, b=1).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: assemble_dense(t, 5), (s,))
    centers = torch.tensor([[0, 0, 0], [0, 2, 3], [0, 3, 1], [0, 2, 3]])  # a repeated centre accumulates
    assert torch.autograd.gradcheck(lambda t: assemble_at(t, centers, 5), (s,))


def test_gradient_counts_how_often_each_map_value_is_copied():
    # each map value (c, y, x) is copied once per window cell that reads it: d(sum)/d(value) = that count
    k, m, h, w = 3, 5, 4, 6
    s = torch.zeros(1, k * k, h, w, requires_grad=True)
    assemble_dense(s, m).sum().backward()
    ref = torch.zeros(k * k, h, w)
    idx = cell_to_map_index(k, m)
    r = m // 2
    for y in range(h):
        for x in range(w):
            for i in range(m):
                for j in range(m):
                    yy, xx = y - r + i, x - r + j
                    if 0 <= yy < h and 0 <= xx < w:
                        ref[idx[i, j], yy, xx] += 1
    assert torch.equal(s.grad[0], ref)


def test_dtype_preserved_and_autocast():
    s = maps(5, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = assemble_dense(s.bfloat16(), 21)
    assert out.dtype == torch.bfloat16
    assert torch.equal(out.float(), assemble_dense(s.bfloat16(), 21).float())


def test_module_wrapper():
    s = maps(5)
    mod = Assembler(5, 21)
    assert sum(p.numel() for p in mod.parameters()) == 0  # parameter-free, as the paper stresses
    assert torch.equal(mod(s), assemble_dense(s, 21))
    c = torch.tensor([[1, 2, 3]])
    assert torch.equal(mod(s, c), assemble_at(s, c, 21))
    with pytest.raises(ValueError, match="expected k\\*k = 25"):
        mod(maps(3))


@pytest.mark.parametrize(
    "call,err,msg",
    [
        (lambda: assemble_dense(torch.zeros(1, 24, 4, 4), 21), ValueError, "must be k\\*k"),
        (lambda: assemble_dense(torch.zeros(1, 25, 4, 4), 20), ValueError, "odd"),
        (lambda: assemble_dense(torch.zeros(1, 49, 4, 4), 5), ValueError, "k must be <= m"),
        (lambda: assemble_dense(torch.zeros(25, 4, 4), 21), ValueError, "4-D"),
        (lambda: assemble_dense(torch.zeros(1, 25, 4, 4, dtype=torch.long), 21), TypeError, "floating-point"),
        (lambda: assemble_dense([[1.0]], 21), TypeError, "torch.Tensor"),
        (lambda: assemble_at(torch.zeros(1, 25, 4, 4), torch.zeros(3, 2, dtype=torch.long), 21), ValueError, "N, 3"),
        (lambda: assemble_at(torch.zeros(1, 25, 4, 4), torch.zeros(3, 3), 21), TypeError, "integer"),
        (lambda: assemble_at(torch.zeros(1, 25, 4, 4), torch.tensor([[1, 0, 0]]), 21), ValueError, "batch index"),
        (lambda: list(iter_assemble_dense(torch.zeros(1, 25, 4, 4), 21, 0)), ValueError, "rows_per_chunk"),
        (lambda: cell_to_map_index(0, 3), ValueError, "k must be"),
    ],
)
def test_clear_errors(call, err, msg):
    with pytest.raises(err, match=msg):
        call()
