"""Rank-0 progress and experiment tracking inside Ray Train workers.

Only rank 0 logs. Progress uses Ray's own ``tqdm_ray`` (a bar that survives being
forwarded from a worker process to the driver's terminal); metrics go to wandb, offline
by default (``wandb sync`` uploads later), with the run name as the wandb run id so a
resumed run continues the same wandb run.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from omnicodec import storage
from omnicodec.jobs.specs import DEFAULT_HOME, RunSpec


class RankZeroTracker:
    def __init__(self, run: RunSpec, config: dict[str, Any], rank: int, total: int, start: int,
                 under_ray: bool = True):
        self.active = rank == 0
        self.reported = 0
        self.wandb = None
        self.bar = None
        self.every = run.log_every
        self.name = run.name
        if not self.active:
            return
        if start < total:
            if under_ray:  # a bar that survives forwarding from a worker to the driver's terminal
                from ray.experimental.tqdm_ray import tqdm
            else:
                from tqdm import tqdm

            self.bar = tqdm(total=total, desc=run.name)
            if start:
                self.bar.update(start)
        if run.wandb.mode != "disabled":
            import wandb

            wandb_dir = run.wandb.dir or (run.run_dir() if not storage.is_url(run.storage)
                                          else os.path.join(DEFAULT_HOME, "wandb"))
            os.makedirs(wandb_dir, exist_ok=True)
            run_id = run.name + "-" + hashlib.sha256(run.run_dir().encode()).hexdigest()[:8]
            self.wandb = wandb.init(project=run.wandb.project, entity=run.wandb.entity, name=run.name,
                                    id=run_id, resume="allow", mode=run.wandb.mode, dir=wandb_dir,
                                    config=config, tags=run.wandb.tags, reinit="finish_previous")

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if not self.active:
            return
        if self.bar is not None:
            self.bar.update(1)
        if step % self.every == 0:
            if self.wandb is not None:
                self.wandb.log({f"train/{k}": float(v) for k, v in metrics.items()}, step=step)
            if self.bar is not None:
                shown = " ".join(f"{k}={float(v):.4g}" for k, v in list(metrics.items())[:3])
                self.bar.set_description(f"{self.name} {shown}")

    def segment(self, step: int, means: dict[str, float]) -> None:
        self.reported += 1
        if self.active and self.wandb is not None:
            self.wandb.log({f"segment/{k}": v for k, v in means.items()}, step=step)

    def finish(self) -> None:
        if not self.active:
            return
        if self.bar is not None:
            self.bar.close()
        if self.wandb is not None:
            self.wandb.finish()
