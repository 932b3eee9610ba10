"""Config sections shared by every training job (run, optimiser, wandb)."""

from __future__ import annotations

import os
import re
from typing import Literal

from pydantic import Field, field_validator

from omnicodec import home, storage
from omnicodec.config import Config

DEFAULT_HOME = home()
# the user paths every training job's config holds (see Config.path_keys)
RUN_PATH_KEYS = ("run.storage", "run.wandb.dir", "data.shards")
ADAPTOR_PATH_KEYS = (*RUN_PATH_KEYS, "validation.shards", "codec.checkpoint", "tasks.*.network.weights")


class WandbSpec(Config):
    project: str = "omnicodec"
    mode: Literal["offline", "online", "disabled"] = "offline"
    entity: str | None = None
    dir: str | None = Field(None, description="local folder for run files (default: next to the run)")
    tags: list[str] = Field(default_factory=list)


class RunSpec(Config):
    """Where a run lives and how it is scaled. ``name`` is the run id: relaunching the
    same command with the same (storage, name) resumes from the last checkpoint."""

    name: str = "run"
    storage: str = Field(os.path.join(DEFAULT_HOME, "runs"), description="local path or fsspec URL")
    num_workers: int = Field(1, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = Field(1.0, gt=0)
    threads_per_worker: int | None = Field(None, ge=1, description="torch threads per worker (default: cpus)")
    max_failures: int = Field(0, ge=-1, description="worker-group restarts before giving up (-1: forever)")
    checkpoint_every: int = Field(50, ge=1, description="steps between checkpoints (and metric reports)")
    keep_checkpoints: int = Field(2, ge=1)
    log_every: int = Field(10, ge=1)
    seed: int = 0
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="the heavy transforms (g_a, g_s) under autocast; entropy models stay fp32")
    channels_last: bool = Field(False, description="NHWC memory layout (faster convolutions on CPU and GPU)")
    wandb: WandbSpec = Field(default_factory=WandbSpec)

    @field_validator("name")
    @classmethod
    def _stable_id(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", v):
            raise ValueError("use letters, digits, '.', '_' and '-' (it names a folder)")
        return v

    @field_validator("storage")
    @classmethod
    def _absolute(cls, v: str) -> str:
        return storage.absolute(v)  # Ray rejects relative storage paths

    def run_dir(self) -> str:
        return storage.join(self.storage, self.name)


class OptimSpec(Config):
    steps: int = Field(1000, ge=1)
    lr: float = Field(1e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    schedule: Literal["constant", "cosine"] = "cosine"
    warmup_steps: int = Field(0, ge=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    grad_clip: float | None = Field(1.0, gt=0)
