"""Train a job in this process on one device, without Ray.

Why: a machine with a GPU but no Ray cluster (a workstation, a notebook, a lent accelerator
box), or a debugger session, should run exactly the steps Ray Train runs. This runner drives
the same job hooks through the same loop (``runner.run_steps``: segment reseeding, fresh data
streams, averaged metrics) and writes the same run folder: ``checkpoint_<step>/`` holding
the trainer state and the job's export (``adaptors/`` for adaptor jobs), so ``omnicodec
eval``, ``encode``, ``serve`` and a relaunch (resume) read it like a Ray Train run's.

It is one process and one device: for several workers or nodes, use Ray Train (``fit``).
"""

from __future__ import annotations

import json
import os
import shutil
import time

import torch

from omnicodec.config import Config
from omnicodec.errors import ConfigError, DataError
from omnicodec.jobs.runner import (
    TrainResult,
    job_class,
    launch,
    refused,
    restore,
    run_steps,
    seed_everything,
    write_checkpoint,
)
from omnicodec.jobs.specs import RunSpec

CHECKPOINT_PREFIX = "checkpoint_"


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:1``, ``mps``: refused with a sentence when this machine lacks it."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: this machine has no CUDA device (torch {torch.__version__})")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--device {name}: MPS is not available on this machine")
    return device


def latest_checkpoint(run_dir: str) -> str | None:
    """The newest complete checkpoint folder of a local run (a folder is renamed into place
    only once written, so a run killed mid-write leaves no half checkpoint behind)."""
    if not os.path.isdir(run_dir):
        return None
    names = sorted(n for n in os.listdir(run_dir) if n.startswith(CHECKPOINT_PREFIX)
                   and os.path.isdir(os.path.join(run_dir, n)))
    return os.path.join(run_dir, names[-1]) if names else None


def fit_local(kind: str, config: Config, device: str = "cpu", keep: int | None = None) -> TrainResult:
    """Train (or resume) ``config`` in this process on ``device``; same result type as ``fit``
    (the launch path of ``runner.launch``; every error, a refused input included, in ``result.error``)."""
    try:
        return launch(kind, config, local_device=device, keep=keep)
    except (ConfigError, DataError) as e:
        return refused(config, e)


def train_local(kind: str, config: Config, placed: torch.device, keep: int | None = None) -> TrainResult:
    """The in-process part of ``runner.launch``, once its checks passed: train on ``placed``."""
    run: RunSpec = config.run
    threads, benchmark = torch.get_num_threads(), torch.backends.cudnn.benchmark
    try:  # this process's settings are the caller's again afterwards (a notebook, a test session)
        torch.set_num_threads(run.threads_per_worker or max(1, int(run.cpus_per_worker)))
        if placed.type == "cuda":
            torch.backends.cudnn.benchmark = True  # training shapes are fixed: pick the fastest kernels once
        return _train(kind, config, placed, keep)
    finally:
        torch.set_num_threads(threads)
        torch.backends.cudnn.benchmark = benchmark


def _train(kind: str, config: Config, placed: torch.device, keep: int | None) -> TrainResult:
    run: RunSpec = config.run
    run_dir = run.run_dir()
    job = job_class(kind)(config, rank=0, world_size=1, device=placed)
    seed_everything(run.seed, 0, -1)
    job.setup()
    step, elapsed = 0, 0.0
    last = latest_checkpoint(run_dir)
    if last is not None:
        step, elapsed = restore(job, last)
    reported: dict[str, float] = {}

    def report(at: int, metrics: dict[str, float], seconds: float) -> None:
        final = os.path.join(run_dir, f"{CHECKPOINT_PREFIX}{at:06d}")
        partial = os.path.join(run_dir, f".writing_{at:06d}")  # not a checkpoint_ name until complete
        shutil.rmtree(partial, ignore_errors=True)
        os.makedirs(partial)
        write_checkpoint(job, partial, at, seconds)
        with open(os.path.join(partial, "metrics.json"), "w") as f:
            json.dump(metrics, f, indent=1, sort_keys=True)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)
        _prune(run_dir, keep or run.keep_checkpoints)
        reported.clear()
        reported.update(metrics)

    from omnicodec.jobs.tracking import RankZeroTracker

    tracker = RankZeroTracker(run, config.to_dict(), 0, total=job.steps, start=step, under_ray=False)
    t0 = time.perf_counter()
    run_steps(job, step, elapsed, report, tracker)
    return TrainResult(run.name, run_dir, latest_checkpoint(run_dir), dict(reported), time.perf_counter() - t0)


def _prune(run_dir: str, keep: int | None) -> None:
    if not keep:
        return
    names = sorted(n for n in os.listdir(run_dir) if n.startswith(CHECKPOINT_PREFIX))
    for name in names[:-keep]:
        shutil.rmtree(os.path.join(run_dir, name), ignore_errors=True)
