"""One training loop for every job, run by Ray Train.

A *job* (codec pretraining, task-network pretraining, multi-task adaptor training) says
how to build its model, where its batches come from and what one step does. This module
owns everything around that, identically for all jobs:

    restore the last checkpoint if there is one (same run name = resume)
    for each segment of ``checkpoint_every`` steps:
        reseed every RNG from (seed, rank, segment); rebuild the data stream for the segment
        run the steps; rank 0 logs to wandb and a progress bar
        average the metrics over steps and ranks; rank 0 writes a checkpoint; all ranks report

Because RNG and data both restart from (seed, rank, segment) at each checkpoint, a run
that is killed and resumed reads the same batches and draws the same noise as one that
was never interrupted; with the optimiser and scheduler state restored, it ends at the
same weights.
"""

from __future__ import annotations

import math
import os
import random
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from omnicodec import storage
from omnicodec.config import Config
from omnicodec.errors import ConfigError, DataError
from omnicodec.jobs.specs import OptimSpec, RunSpec
from omnicodec.registry import Registry

# the registry: one line per job; lazy, as each job module imports what it trains
JOBS: Registry[type[Job]] = Registry("training job", error=ConfigError, lazy=True)
JOBS.add("codec", "omnicodec.jobs.codec_job:CodecPretrainJob")
JOBS.add("task", "omnicodec.jobs.task_job:TaskPretrainJob")
JOBS.add("adaptors", "omnicodec.jobs.adaptor_job:AdaptorTrainJob")
STATE_FILE = "trainer_state.pt"


def job_class(kind: str) -> type[Job]:
    return JOBS.get(kind)


class Job:
    """Worker-side logic of one training job (subclasses fill in the four hooks)."""

    config_class: type[Config]

    def __init__(self, config: Config, rank: int = 0, world_size: int = 1, device: torch.device | None = None):
        """``device`` set: a local run in this process (``omnicodec.jobs.local``), no Ray;
        unset: a Ray Train worker, whose device Ray Train assigns."""
        self.config, self.rank, self.world_size = config, rank, world_size
        self.local = device is not None
        self.device = device if device is not None else torch.device("cpu")
        self.model: torch.nn.Module  # possibly DDP-wrapped; trainable weights only
        self.optimizer: torch.optim.Optimizer
        self.scheduler: torch.optim.lr_scheduler.LRScheduler

    # hooks -------------------------------------------------------------------
    def setup(self) -> None:
        raise NotImplementedError

    def batches(self, segment: int) -> Iterator[Any]:
        raise NotImplementedError

    def train_step(self, batch: Any, step: int) -> dict[str, float]:
        raise NotImplementedError

    def export(self, directory: str) -> None:
        """Write the job's deliverable (adaptor checkpoint, weights) into ``directory``."""

    def validate(self) -> dict[str, float]:
        """Metrics on held-out data, added to each report on rank 0 (none by default)."""
        return {}

    # shared helpers ------------------------------------------------------------
    def worker_device(self) -> torch.device:
        """The device this job computes on: the local run's, or Ray Train's for this worker
        (its GPU when ``run.use_gpu``)."""
        if self.local:
            return self.device
        import ray.train.torch

        return ray.train.torch.get_device() if self.config.run.use_gpu else torch.device("cpu")

    def prepare(self, model: torch.nn.Module, **ddp_kwargs: Any) -> torch.nn.Module:
        """DDP-wrap ``model`` (already on ``self.device``) under Ray Train; a local run is
        one process, so the model stays as it is."""
        if self.local:
            return model
        import ray.train.torch

        return ray.train.torch.prepare_model(model, move_to_device=False, **ddp_kwargs)

    @property
    def steps(self) -> int:
        return self.config.optim.steps

    def make_optimizer(self, params: list[torch.nn.Parameter], optim: OptimSpec) -> None:
        self.optimizer = torch.optim.AdamW(params, lr=optim.lr, weight_decay=optim.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(s, optim))

    def clip_and_step(self, params: list[torch.nn.Parameter], optim: OptimSpec) -> float:
        norm = torch.nn.utils.clip_grad_norm_(params, optim.grad_clip or float("inf"))
        self.optimizer.step()
        self.scheduler.step()
        return float(norm)

    def unwrapped(self) -> torch.nn.Module:
        return getattr(self.model, "module", self.model)

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.unwrapped().state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.unwrapped().load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


def lr_factor(step: int, optim: OptimSpec) -> float:
    """Warm-up then cosine decay to ``min_lr_ratio``. Returns a Python float: the scheduler
    state holds it, and checkpoints load with ``weights_only=True`` (no numpy scalars)."""
    if optim.warmup_steps and step < optim.warmup_steps:
        return (step + 1) / optim.warmup_steps
    if optim.schedule == "constant":
        return 1.0
    progress = min(1.0, (step - optim.warmup_steps) / max(1, optim.steps - optim.warmup_steps))
    return float(optim.min_lr_ratio + (1 - optim.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def seed_everything(seed: int, rank: int, segment: int) -> None:
    s = (seed * 1_000_003 + rank * 10_007 + segment) % (2**31)
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)


# ----------------------------------------------------------------- worker side
def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """Ray Train's per-worker entry point (see the module docstring)."""
    import ray.train

    from omnicodec.jobs.tracking import RankZeroTracker
    from omnicodec.runtime.ray_env import apply_local_env

    apply_local_env()
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    cls = job_class(loop_config["job"])
    config = cls.config_class.from_dict(loop_config["config"], source=f"{loop_config['job']} job config")
    run: RunSpec = config.run
    torch.set_num_threads(run.threads_per_worker or max(1, int(run.cpus_per_worker)))
    job = cls(config, rank, world)
    seed_everything(run.seed, rank, -1)  # model init is identical on every rank
    job.setup()

    step, elapsed = 0, 0.0
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            step, elapsed = restore(job, d)
    tracker = RankZeroTracker(run, config.to_dict(), rank, total=job.steps, start=step)
    run_steps(job, step, elapsed, lambda s, m, e: _report(job, s, m, rank, e), tracker)


def restore(job: Job, directory: str) -> tuple[int, float]:
    """Load a checkpoint folder's trainer state into ``job``: (step, training seconds)."""
    state = torch.load(os.path.join(directory, STATE_FILE), map_location=job.device, weights_only=True)
    job.load_state_dict(state)
    return int(state["step"]), float(state.get("elapsed", 0.0))


def run_steps(job: Job, step: int, elapsed: float, report: Any, tracker: Any) -> None:
    """The loop every job runs, on a Ray Train worker or in one local process: segments of
    ``checkpoint_every`` steps, each reseeded from (seed, rank, segment) with a fresh data
    stream; ``report(step, metrics, elapsed)`` checkpoints at each segment's end."""
    run: RunSpec = job.config.run
    resumed_from = step
    while step < job.steps:
        segment = step // run.checkpoint_every
        seed_everything(run.seed, job.rank, segment)
        batches = iter(job.batches(segment))
        end = min(job.steps, (segment + 1) * run.checkpoint_every)
        sums: dict[str, float] = defaultdict(float)
        n = 0
        t0 = time.perf_counter()
        while step < end:
            metrics = job.train_step(next(batches), step)
            step, n = step + 1, n + 1
            for k, v in metrics.items():
                sums[k] += float(v)
            tracker.log(step, metrics)
        means = _mean_over_ranks({k: v / n for k, v in sums.items()})
        seconds = time.perf_counter() - t0
        elapsed += seconds
        means.update(step=step, steps_per_s=n / seconds, lr=float(job.scheduler.get_last_lr()[0]),
                     resumed_from=resumed_from, train_s=elapsed)
        if job.rank == 0:
            means.update(job.validate())
        report(step, means, elapsed)
        tracker.segment(step, means)
    if tracker.reported == 0:
        # Relaunched after completion: nothing to train. Re-report the restored state as a
        # checkpoint, because Ray's Result carries the metrics of the latest checkpoint.
        report(step, {"step": step, "already_complete": 1.0, "resumed_from": resumed_from, "train_s": elapsed}, elapsed)
    tracker.finish()


def _mean_over_ranks(metrics: dict[str, float]) -> dict[str, float]:
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return metrics
    keys = sorted(metrics)
    t = torch.tensor([metrics[k] for k in keys], dtype=torch.float64)
    torch.distributed.all_reduce(t)
    return {k: float(v) / torch.distributed.get_world_size() for k, v in zip(keys, t)}


def _report(job: Job, step: int, metrics: dict[str, float], rank: int, elapsed: float) -> None:
    import ray.train

    with tempfile.TemporaryDirectory() as tmp:
        if rank == 0:
            write_checkpoint(job, tmp, step, elapsed)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))
        else:
            ray.train.report(metrics, checkpoint=None)


def write_checkpoint(job: Job, directory: str, step: int, elapsed: float) -> None:
    """Trainer state (resume) and the job's deliverable (``export``) into one folder."""
    torch.save({"step": step, "elapsed": elapsed, **job.state_dict()}, os.path.join(directory, STATE_FILE))
    job.export(directory)


# ----------------------------------------------------------------- driver side
@dataclass
class TrainResult:
    name: str
    run_dir: str
    checkpoint: str | None  # folder (local path or URL) of the last checkpoint
    metrics: dict[str, Any]
    wall_s: float
    error: str | None = None


def storage_args(location: str) -> dict[str, Any]:
    """``storage_path`` (absolute) and, for non-local URLs, a pyarrow-wrapped fsspec fs."""
    if not storage.is_url(location) or location.startswith("file://"):
        return {"storage_path": storage.absolute(location.removeprefix("file://"))}
    import fsspec
    import pyarrow.fs

    fs, path = fsspec.core.url_to_fs(location)
    return {"storage_path": path, "storage_filesystem": pyarrow.fs.PyFileSystem(pyarrow.fs.FSSpecHandler(fs))}


RUN_CONFIG_FILE = "omnicodec-config.json"
RELAUNCH_MAY_CHANGE = ("run.", "optim.steps")  # placement, logging, and training longer


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def has_checkpoint(run_dir: str) -> bool:
    """Whether any launch of the run got as far as a checkpoint (its trainer state written)."""
    return any(storage.exists(storage.join(run_dir, n, STATE_FILE))
               for n in storage.listdir(run_dir) if n.startswith("checkpoint_") and not n.endswith(".json"))


def guard_relaunch(config: Config) -> bool:
    """Relaunching a run name resumes it, so the run must still be the same experiment:
    the first launch records its config; a later launch whose config differs (other than
    ``run.*`` and ``optim.steps``) is refused, naming each changed key, instead of silently
    continuing the old experiment under the new settings. A run with no checkpoint has
    nothing to resume: a corrected relaunch after a failed one replaces the record.
    Returns True when this launch created the run folder."""
    import json

    run_dir = config.run.run_dir()
    path = storage.join(run_dir, RUN_CONFIG_FILE)
    current = config.to_dict()  # JSON-typed already (model_dump(mode="json"))
    created = not storage.exists(run_dir)
    if created or not storage.exists(path) or not has_checkpoint(run_dir):
        storage.makedirs(run_dir)
        storage.write_text(path, json.dumps(current, indent=2, sort_keys=True))
        return created
    before, now = _flat(json.loads(storage.read_text(path))), _flat(current)
    changed = [f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in sorted(set(before) | set(now))
               if not k.startswith(RELAUNCH_MAY_CHANGE) and before.get(k) != now.get(k)]
    if changed:
        raise ConfigError(f"run '{config.run.name}' in {run_dir} was started with another config "
                          f"({'; '.join(changed)}); relaunching would resume it. Use a new run.name, "
                          f"or delete the run folder to start over")
    return False


def preflight(config: Config) -> None:
    """Inputs the driver can check before Ray starts: every shard of ``data.shards`` exists
    (one line naming the key and the first missing shard, and no run folder is created), and
    whatever the config's own ``preflight()`` checks (the networks users bring, built and run
    once here), so a bad input is one line now instead of worker tracebacks a minute later."""
    from omnicodec.data.shards import check_shards_exist

    data = getattr(config, "data", None)
    if data is not None and getattr(data, "shards", None):
        check_shards_exist(data.shards, "data.shards")
    own = getattr(config, "preflight", None)
    if callable(own):
        own()


def completed_checkpoint(config: Config) -> TrainResult | None:
    """A run whose newest checkpoint already reached ``optim.steps``: its result, read from
    disk without starting Ray (relaunching a finished run says so in a sentence)."""
    run: RunSpec = config.run
    run_dir = run.run_dir()
    names = [n for n in storage.listdir(run_dir) if n.startswith("checkpoint_") and not n.endswith(".json")]
    for name in sorted(names, reverse=True):
        path = storage.join(run_dir, name, STATE_FILE)
        if not storage.exists(path):
            continue
        with storage.open_file(path, "rb") as f:
            state = torch.load(f, map_location="cpu", weights_only=True)
        step = int(state["step"])
        if step < config.optim.steps:
            return None
        return TrainResult(run.name, run_dir, storage.join(run_dir, name),
                           {"step": step, "already_complete": 1.0, "resumed_from": step,
                            "train_s": float(state.get("elapsed", 0.0))}, 0.0)
    return None


def forget_failed_launch(config: Config, created: bool) -> None:
    """A launch that failed before its first checkpoint leaves no run folder it created (there
    is nothing to resume, and a stale one would only confuse the corrected relaunch)."""
    run_dir = config.run.run_dir()
    if created and not has_checkpoint(run_dir):
        try:
            storage.remove(run_dir)
        except OSError:
            pass


def refused(config: Config, error: Exception) -> TrainResult:
    """The result of a launch its checks refused: nothing trained, the reason in ``error``."""
    return TrainResult(config.run.name, config.run.run_dir(), None, {}, 0.0, f"{type(error).__name__}: {error}")


def launch(kind: str, config: Config, *, local_device: str | None = None, keep: int | None = None,
           callbacks: list | None = None, start_ray: Callable[[], Any] | None = None) -> TrainResult:
    """The one launch path: ``omnicodec train`` and ``pretrain``, sweep trials, the demo, the
    drills and the Python API (``fit``, ``fit_local``, ``train_adaptors``) all come here, and
    each check runs once, in this order, before anything starts:

    1. the inputs (:func:`preflight`): shards exist, brought networks build and run. A bad
       input *raises* ConfigError / DataError naming it: one line, before Ray starts and before
       any run folder exists (the Python API wrappers turn it into ``result.error``);
    2. a run that already reached ``optim.steps``: its result, read from disk, nothing started;
    3. a relaunch is still the same experiment (:func:`guard_relaunch`; the first launch
       records the config), then the placement: ``local_device`` (``cpu``, ``cuda``, ...)
       trains in this process without Ray (``omnicodec.jobs.local``); otherwise
       ``start_ray()`` (when given: Ray starts only now that there is something to train),
       the cluster must fit the workers, and Ray Train fits the run.

    Errors from step 3 on come back in ``result.error``; a launch that fails before its first
    checkpoint leaves no run folder it created."""
    run: RunSpec = config.run
    if local_device is not None and storage.is_url(run.run_dir()):
        return TrainResult(run.name, run.run_dir(), None, {}, 0.0,
                           "ConfigError: a local run writes to a local run.storage folder (not a URL)")
    preflight(config)
    done = completed_checkpoint(config)
    if done is not None:
        return done
    if local_device is not None:
        from omnicodec.jobs.local import resolve_device, train_local

        try:
            guard_relaunch(config)
            placed = resolve_device(local_device)
        except (ConfigError, DataError) as e:
            return refused(config, e)
        return train_local(kind, config, placed, keep)
    from omnicodec.runtime.ray_env import check_fits

    created = False
    try:
        created = guard_relaunch(config)
        if start_ray is not None:
            start_ray()
        check_fits(f"run '{run.name}'", run.num_workers * run.cpus_per_worker, run.num_workers if run.use_gpu else 0,
                   f"{run.num_workers} workers x {run.cpus_per_worker:g} CPU")
    except (ConfigError, DataError) as e:
        forget_failed_launch(config, created)
        return refused(config, e)
    except BaseException:  # Ray did not start (an unreachable cluster, Ctrl-C): no run folder is left behind
        forget_failed_launch(config, created)
        raise
    return _fit_on_ray(kind, config, callbacks, created)


def fit(kind: str, config: Config, callbacks: list | None = None,
        start_ray: Callable[[], Any] | None = None) -> TrainResult:
    """Run ``kind`` on Ray Train (Ray initialised, or ``start_ray`` starts it once the checks
    passed); resumes a run of the same name. Every error, a refused input included, comes
    back in ``result.error``."""
    try:
        return launch(kind, config, callbacks=callbacks, start_ray=start_ray)
    except (ConfigError, DataError) as e:
        return refused(config, e)


def _fit_on_ray(kind: str, config: Config, callbacks: list | None, created: bool) -> TrainResult:
    """Ray Train's part of :func:`launch`, once the checks passed."""
    import ray.train
    from ray.train.torch import TorchTrainer

    run: RunSpec = config.run
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"job": kind, "config": config.to_dict()},
        scaling_config=ray.train.ScalingConfig(
            num_workers=run.num_workers, use_gpu=run.use_gpu,
            resources_per_worker={"CPU": run.cpus_per_worker, **({"GPU": 1} if run.use_gpu else {})},
        ),
        run_config=ray.train.RunConfig(
            name=run.name,
            **storage_args(run.storage),
            failure_config=ray.train.FailureConfig(max_failures=run.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=run.keep_checkpoints),
            callbacks=callbacks or None,
        ),
    )
    t0 = time.perf_counter()
    try:
        result = trainer.fit()
    except Exception as e:  # Ray raises the worker error after exhausting max_failures
        forget_failed_launch(config, created)
        return TrainResult(run.name, run.run_dir(), None, {}, time.perf_counter() - t0, f"{type(e).__name__}: {e}")
    ckpt = result.checkpoint
    if result.error is not None:
        forget_failed_launch(config, created)
    location = None
    if ckpt is not None:
        location = ckpt.path if not storage.is_url(run.storage) or run.storage.startswith("file://") else \
            f"{run.storage.split('://', 1)[0]}://{ckpt.path.lstrip('/')}"
    err = result.error
    return TrainResult(run.name, run.run_dir(), location, dict(result.metrics or {}),
                       time.perf_counter() - t0, None if err is None else f"{type(err).__name__}: {err}")
