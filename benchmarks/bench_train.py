"""Training cost: adaptor steps against full fine-tuning, and 1 vs 2 Ray Train workers.

Part 1 (in-process, same batch, median of 5 steps): an all-in-one adaptor step (frozen
codec, 3 tasks, one S and three T stacks) against full fine-tuning, where every codec
weight trains and, as the per-task baseline does, each task has its own codec (3 tasks =
3 full steps). Also one task alone. Goal: adaptor step <= 0.6x the full fine-tune step.

Part 2 (Ray Train on a local cluster): the same adaptor job with 1 worker x 2 threads and
2 workers x 1 thread, equal global batch; throughput after start-up, as a ratio.
Run: .venv/bin/python benchmarks/bench_train.py
"""

from __future__ import annotations

import copy
import os
import tempfile

import torch

from common import machine, print_table, timeit
from omnicodec.codec import load_codec
from omnicodec.data.loader import LoaderConfig, make_loader
from omnicodec.data.scenes import build_scenes
from omnicodec.model import OmniCodec
from omnicodec.tasks.registry import load_task_net

TASKS = ["cls", "seg", "det"]


def adaptor_step(model: OmniCodec, nets, batch, tasks, opt) -> None:
    out = model(batch["image"], tasks)
    loss = out["bpp"] + sum(nets[t].label_loss(out["x_hat"][t], batch) for t in tasks)
    opt.zero_grad()
    loss.backward()
    opt.step()


def full_step(codec_model, nets, batch, task, opt) -> None:
    out = codec_model(batch["image"])  # CompressAI forward: every weight trainable
    n = batch["image"].shape[0] * batch["image"].shape[-2] * batch["image"].shape[-1]
    bpp = sum(-torch.log2(l).sum() for l in out["likelihoods"].values()) / n
    loss = bpp + nets[task].label_loss(out["x_hat"].clamp(0, 1), batch)
    opt.zero_grad()
    loss.backward()
    opt.step()


def part1(shards: str) -> list[list]:
    torch.set_num_threads(2)
    batch = next(iter(make_loader(LoaderConfig(shards=shards, batch_size=4, crop=128, shuffle_buffer=0))))
    codec = load_codec("mbt2018-mean-small:2")
    nets = {t: load_task_net(t) for t in TASKS}
    rows = []
    for tasks in (TASKS, ["cls"]):
        model = OmniCodec(codec, tasks)
        opt = torch.optim.Adam(model.parameters(), 1e-4)
        ta = timeit(lambda model=model, tasks=tasks, opt=opt: adaptor_step(model, nets, batch, tasks, opt), repeat=5)
        fulls = []
        for t in tasks:
            m = copy.deepcopy(codec.model).train()
            for p in m.parameters():
                p.requires_grad_(True)
            o = torch.optim.Adam(m.parameters(), 1e-4)
            fulls.append(timeit(lambda m=m, t=t, o=o: full_step(m, nets, batch, t, o), repeat=5))
        tf = sum(fulls)
        rows.append([f"{len(tasks)} task(s): {','.join(tasks)}", ta, tf, ta / tf,
                     model.adaptors.num_parameters(), sum(p.numel() for p in codec.model.parameters()) * len(tasks)])
    return rows


def part2(shards: str, storage: str) -> list[list]:
    from omnicodec.jobs.adaptor_job import AdaptorTrainConfig
    from omnicodec.jobs.ray_env import init_ray
    from omnicodec.jobs.train import train_adaptors

    init_ray(num_cpus=2)
    rows = []
    for workers, threads, batch in ((1, 2, 8), (2, 1, 4)):
        cfg = AdaptorTrainConfig.from_dict({
            "run": {"name": f"bench-{workers}w", "storage": storage, "num_workers": workers, "cpus_per_worker": 2 / workers,
                    "threads_per_worker": threads, "checkpoint_every": 10, "wandb": {"mode": "disabled"}},
            "optim": {"steps": 30}, "data": {"shards": shards, "batch_size": batch, "crop": 128, "shuffle_buffer": 16},
            "codec": {"arch": "mbt2018-mean-small", "quality": 2},
            "tasks": [{"name": t} for t in TASKS]})
        r = train_adaptors(cfg)
        if r.error:
            raise RuntimeError(r.error)
        rows.append([f"{workers} worker(s) x {threads} thread(s), batch {batch}/worker", r.metrics["steps_per_s"],
                     r.metrics["steps_per_s"] * 8, r.wall_s])
    rows[1].append(rows[1][1] / rows[0][1])
    rows[0].append(1.0)
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        build_scenes(os.path.join(d, "scenes"), train=64, test=0, size=192, maxcount=8, progress=False)
        shards = os.path.join(d, "scenes")
        print_table(f"one training step on the same batch (4 x 128x128), median of 5; {machine()}",
                    ["objective", "adaptor step s", "full fine-tune s", "x full fine-tune", "trainable (adaptors)",
                     "trainable (full)"], part1(shards),
                    "full fine-tune = every codec weight trains, one codec per task (the per-task baseline); goal <= 0.6x")
        print_table("Ray Train throughput at equal total threads (2) and global batch (8), after start-up",
                    ["layout", "steps/s", "images/s", "fit wall s", "x 1 worker"], part2(shards, os.path.join(d, "runs")))


if __name__ == "__main__":
    main()
