"""Driver side of ``omnicodec train``: validate, fit on Ray Train, point at the adaptors."""

from __future__ import annotations

from omnicodec import storage
from omnicodec.jobs.adaptor_job import ADAPTORS_DIR, AdaptorTrainConfig
from omnicodec.jobs.runner import TrainResult, fit


def train_adaptors(cfg: AdaptorTrainConfig, callbacks: list | None = None, local_device: str | None = None) -> TrainResult:
    """Train (or resume) the run; ``result.metrics["adaptors"]`` is the checkpoint folder.
    ``local_device`` (``cpu``, ``cuda``, ...): train in this process without Ray instead."""
    if local_device is not None:
        from omnicodec.jobs.local import fit_local

        result = fit_local("adaptors", cfg, local_device)
    else:
        result = fit("adaptors", cfg, callbacks)
    if result.checkpoint is not None:
        result.metrics["adaptors"] = storage.join(result.checkpoint, ADAPTORS_DIR)
    return result
