"""Training cost: adaptor steps against full fine-tuning, and 1 vs 2 Ray Train workers.

Part 1 (in-process, same batch, median of 5 steps): an all-in-one adaptor step (frozen
codec, 3 tasks, one S and three T stacks) against full fine-tuning, where every codec
weight trains and, as the per-task baseline does, each task has its own codec (3 tasks =
3 full steps). Also one task alone. Both codecs: the bundled photo codec the curves use
(``mbt2018-mean-photo``, N=128/M=192) and the small demo codec. Goal: adaptor step <= 0.6x
the full fine-tune step. What makes the adaptor step cheaper is structural: frozen weights
get no weight gradients (autograd records nothing before the first S-Adaptor tap and
computes only input gradients through frozen layers), and one g_a + hyperprior pass serves
all tasks where full fine-tuning runs one codec per task. The frozen task networks cost the
same in both (forward + input gradients), so the ratio falls as the codec's share grows.

Part 2 (Ray Train on a local cluster), after start-up: scaling efficiency, 2 workers x 1
thread against 1 worker x 1 thread at the same per-worker batch (goal >= 1.8x images/s),
and the comparison at equal total threads: 1 worker x 2 threads at the global batch.
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


CODECS = ("mbt2018-mean-photo:2", "mbt2018-mean-small:2")


def part1(shards: str) -> list[list]:
    torch.set_num_threads(2)
    batch = next(iter(make_loader(LoaderConfig(shards=shards, batch_size=4, crop=128, shuffle_buffer=0))))
    nets = {t: load_task_net(t) for t in TASKS}
    return [row for name in CODECS for row in _codec_rows(load_codec(name), name, nets, batch)]


def _codec_rows(codec, name: str, nets: dict, batch: dict) -> list[list]:
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
        rows.append([name, f"{len(tasks)} task(s): {','.join(tasks)}", ta, tf, ta / tf,
                     model.adaptors.num_parameters(), sum(p.numel() for p in codec.model.parameters()) * len(tasks)])
    return rows


def part2(shards: str, storage: str) -> list[list]:
    from omnicodec.jobs.adaptor_job import AdaptorTrainConfig
    from omnicodec.jobs.train import train_adaptors
    from omnicodec.runtime.ray_env import init_ray

    init_ray(num_cpus=2)
    rows = []
    for workers, threads, batch in ((1, 1, 4), (2, 1, 4), (1, 2, 8)):
        cfg = AdaptorTrainConfig.from_dict({
            "run": {"name": f"bench-{workers}w{threads}t", "storage": storage, "num_workers": workers, "cpus_per_worker": 2 / workers,
                    "threads_per_worker": threads, "checkpoint_every": 10, "wandb": {"mode": "disabled"}},
            "optim": {"steps": 30}, "data": {"shards": shards, "batch_size": batch, "crop": 128, "shuffle_buffer": 16},
            "codec": {"arch": "mbt2018-mean-small", "quality": 2},
            "tasks": [{"name": t} for t in TASKS]})
        r = train_adaptors(cfg)
        if r.error:
            raise RuntimeError(r.error)
        rows.append([f"{workers} worker(s) x {threads} thread(s), batch {batch}/worker", r.metrics["steps_per_s"],
                     r.metrics["steps_per_s"] * batch * workers, r.wall_s])
    base = rows[0][2]
    for row, note in zip(rows, ("baseline", "scaling efficiency, goal >= 1.8x", "equal total threads")):
        row += [row[2] / base, note]
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        build_scenes(os.path.join(d, "scenes"), train=64, test=0, size=192, maxcount=8, progress=False)
        shards = os.path.join(d, "scenes")
        print_table(f"one training step on the same batch (4 x 128x128), median of 5; {machine()}",
                    ["codec", "objective", "adaptor step s", "full fine-tune s", "x full fine-tune", "trainable (adaptors)",
                     "trainable (full)"], part1(shards),
                    "full fine-tune = every codec weight trains, one codec per task (the per-task baseline); goal <= 0.6x")
        print_table("Ray Train throughput after start-up (mbt2018-mean-small, 3 tasks, 30 steps)",
                    ["layout", "steps/s", "images/s", "fit wall s", "x 1 worker x 1 thread", "what"],
                    part2(shards, os.path.join(d, "runs")))


if __name__ == "__main__":
    main()
