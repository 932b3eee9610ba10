"""Driver side of ``omnicodec train``: validate, fit on Ray Train, point at the adaptors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omnicodec import storage
from omnicodec.errors import ConfigError, DataError
from omnicodec.jobs.adaptor_job import ADAPTORS_DIR, AdaptorTrainConfig
from omnicodec.jobs.runner import TrainResult, launch, refused


def launch_adaptors(cfg: AdaptorTrainConfig, *, local_device: str | None = None, callbacks: list | None = None,
                    start_ray: Callable[[], Any] | None = None) -> TrainResult:
    """``runner.launch`` for an adaptor run (each check once; a bad input raises ConfigError /
    DataError before anything starts; ``start_ray`` is called only when Ray Train will train);
    ``result.metrics["adaptors"]`` is the checkpoint's adaptor folder."""
    result = launch("adaptors", cfg, local_device=local_device, callbacks=callbacks, start_ray=start_ray)
    if result.checkpoint is not None:
        result.metrics["adaptors"] = storage.join(result.checkpoint, ADAPTORS_DIR)
    return result


def train_adaptors(cfg: AdaptorTrainConfig, callbacks: list | None = None, local_device: str | None = None) -> TrainResult:
    """Train (or resume) the run; ``result.metrics["adaptors"]`` is the checkpoint folder.
    ``local_device`` (``cpu``, ``cuda``, ...): train in this process without Ray instead.
    Every error, a refused input included, comes back in ``result.error``."""
    try:
        return launch_adaptors(cfg, local_device=local_device, callbacks=callbacks)
    except (ConfigError, DataError) as e:
        return refused(cfg, e)
