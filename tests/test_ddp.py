"""DistributedDataParallel with 2 CPU processes (gloo): it runs, and parameters stay identical across ranks."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from ifcn_viz.train.loop import build_train_model
from ifcn_viz.train.recipe import TrainConfig, train_config

pytestmark = [pytest.mark.distributed, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, cfg_dict: dict, out_dir: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    from ifcn_viz.train.loop import train

    res = train(TrainConfig.from_dict(cfg_dict))
    torch.save({k: v.detach().cpu() for k, v in res.model.named_parameters()}, Path(out_dir) / f"rank{rank}.pt")


def test_two_gloo_processes_keep_identical_parameters(tmp_path):
    cfg = train_config("tiny", out=str(tmp_path / "run"), iters=3, batch_size=1, image_size=96, short_sides=(96,),
                       train_scenes=8, windows_per_image=32, eval_images=0, progress=False, amp="none", warmup=0,
                       lr=1e-2, device="cpu", log_every=1)  # fmt: skip
    mp.spawn(_worker, args=(2, _free_port(), cfg.to_dict(), str(tmp_path)), nprocs=2, join=True)
    p0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    p1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    init = dict(build_train_model(cfg).named_parameters())
    assert p0.keys() == p1.keys()
    assert all(torch.equal(p0[k], p1[k]) for k in p0), "ranks diverged"
    assert any(not torch.equal(p0[k], init[k].detach()) for k in p0), "no training happened"
    # rank 0 alone writes the checkpoint and the log; the log counts both ranks' images
    assert (tmp_path / "run" / "checkpoint.safetensors").is_file()
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 3
