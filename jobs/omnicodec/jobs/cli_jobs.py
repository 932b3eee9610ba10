"""Command-line handlers for the Ray jobs (pretrain, train, eval): flags -> configs -> runs."""

from __future__ import annotations

import argparse
import os
from typing import Any

from omnicodec import storage
from omnicodec.config import apply_overrides
from omnicodec.data.shards import resolve_shards
from omnicodec.errors import DataError, OmnicodecError
from omnicodec.jobs.specs import DEFAULT_HOME

DATA_HOME = os.path.join(DEFAULT_HOME, "data")


def default_photos() -> str:
    """Photo crops for codec pretraining; built once under $OMNICODEC_HOME/data."""
    from omnicodec.data.photos import build_photo_shards

    out = os.path.join(DATA_HOME, "photos")
    if not _has_shards(out):
        build_photo_shards(out, count=4000)
    return out


def default_heldout_photos() -> str:
    from omnicodec.data.photos import build_heldout_photos

    out = os.path.join(DATA_HOME, "heldout-photos")
    if not _has_shards(out):
        build_heldout_photos(out)
    return out


def default_kodaklike() -> str:
    from omnicodec.data.photos import build_kodaklike

    out = os.path.join(DATA_HOME, "kodaklike")
    if not _has_shards(out):
        build_kodaklike(out)
    return out


def default_scenes(train: int = 2000, test: int = 200, size: int = 192) -> str:
    from omnicodec.data.scenes import build_scenes

    out = os.path.join(DATA_HOME, f"scenes-{size}")
    if not _has_shards(out):
        build_scenes(out, train, test, size)
    return out


def _has_shards(folder: str) -> bool:
    try:
        return bool(resolve_shards(folder))
    except DataError:
        return False


def split_shards(folder: str, split: str) -> list[str]:
    """The ``<split>-*.tar`` shards of a scene folder."""
    return [u for u in resolve_shards(folder) if os.path.basename(u).startswith(f"{split}-")]


def _qualities(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(q) for q in text.split(",") if q.strip())
    except ValueError:
        raise OmnicodecError(f"qualities must be integers separated by commas, got '{text}'") from None


def _overrides(a: argparse.Namespace, mapping: dict[str, Any]) -> list[str]:
    return [f"{k}={v}" for k, v in mapping.items() if v is not None] + list(a.set)


def absolute_args(a: argparse.Namespace, names: tuple[str, ...]) -> None:
    """Make the paths given on the command line absolute, here in the driver: Ray workers and
    actors run in other folders than the user's."""
    for name in names:
        value = getattr(a, name, None)
        if isinstance(value, str):
            setattr(a, name, storage.absolute(value))


def _init(a: argparse.Namespace) -> None:
    from omnicodec.jobs.ray_env import init_ray

    init_ray(a.address)


def _zoo_out(a: argparse.Namespace) -> str:
    from omnicodec.zoo import WEIGHTS_DIR

    return a.out or str(WEIGHTS_DIR)


def pretrain_codec_command(a: argparse.Namespace) -> None:
    from omnicodec.jobs.codec_job import CodecPretrainConfig
    from omnicodec.jobs.pretrain import pretrain_codec
    from omnicodec.jobs.report_cli import print_card

    data = a.data or default_photos()
    base = {"data": {"shards": data, "batch_size": 8, "crop": 128, "num_workers": 1}, "arch": a.arch,
            "quality": a.quality, "run": {"name": a.name or f"codec-{a.arch}-q{a.quality}"}}
    cfg = CodecPretrainConfig.from_user_dict(apply_overrides(base, _overrides(a, {
        "lmbda": a.lmbda, "init_from": a.init_from, "optim.steps": a.steps, "optim.lr": a.lr,
        "data.batch_size": a.batch_size, "data.crop": a.crop, "run.num_workers": a.workers,
        "run.cpus_per_worker": a.cpus_per_worker, "run.storage": a.storage,
    })), source="pretrain codec")
    eval_sets = {"kodaklike": a.eval_data or default_kodaklike()}
    if not a.eval_data:
        eval_sets["heldout_photos"] = default_heldout_photos()
    scenes = os.path.join(DATA_HOME, "scenes-192")
    if _has_shards(scenes) and split_shards(scenes, "test"):
        eval_sets["scenes_test"] = split_shards(scenes, "test")
    _init(a)
    card = pretrain_codec(cfg, _zoo_out(a), eval_sets)
    print_card(card)


# per task: batch size, crop (None = full 192 px scenes: FCOS is sized for them), steps
TASK_DEFAULTS = {"cls": (32, 160, 800), "seg": (16, 160, 2000), "det": (8, None, 2500)}


def pretrain_task_command(a: argparse.Namespace) -> None:
    from omnicodec.jobs.pretrain import pretrain_task
    from omnicodec.jobs.report_cli import print_card
    from omnicodec.jobs.task_job import TaskPretrainConfig

    scenes = a.data or default_scenes()
    batch, crop, steps = TASK_DEFAULTS[a.task]
    base = {"task": a.task, "data": {"shards": split_shards(scenes, "train") or scenes, "batch_size": batch,
                                     "crop": crop, "hflip": True, "num_workers": 1},
            "optim": {"steps": steps, "lr": 2e-3, "warmup_steps": 100, "weight_decay": 1e-4},
            "run": {"name": a.name or f"task-{a.task}", "checkpoint_every": 250}}
    cfg = TaskPretrainConfig.from_user_dict(apply_overrides(base, _overrides(a, {
        "optim.steps": a.steps, "optim.lr": a.lr, "data.batch_size": a.batch_size, "data.crop": a.crop,
        "run.num_workers": a.workers, "run.cpus_per_worker": a.cpus_per_worker, "run.storage": a.storage,
    })), source="pretrain task")
    _init(a)
    card = pretrain_task(cfg, _zoo_out(a), split_shards(scenes, "test"))
    print_card(card)


def train_command(a: argparse.Namespace) -> None:
    from omnicodec.jobs.adaptor_job import ADAPTORS_DIR, AdaptorTrainConfig
    from omnicodec.jobs.report_cli import print_train_summary
    from omnicodec.jobs.runner import completed_checkpoint, preflight
    from omnicodec.jobs.shipped import find_spec
    from omnicodec.jobs.train import train_adaptors

    cfg = AdaptorTrainConfig.from_yaml(find_spec(a.config), a.set)  # every path absolute from here on
    preflight(cfg)  # missing shards, brought networks: one line, before Ray starts and before any run folder
    result = completed_checkpoint(cfg)
    if result is not None:
        result.metrics["adaptors"] = storage.join(result.checkpoint, ADAPTORS_DIR)
        print(f"run '{cfg.run.name}' is already complete ({int(result.metrics['step'])}/{cfg.optim.steps} steps); "
              f"its adaptors: {result.metrics['adaptors']} (raise optim.steps to train longer, or use a new run.name)")
    else:
        if a.local is None:
            _init(a)
        result = train_adaptors(cfg, local_device=a.local)
        print_train_summary(result)
        if result.error:
            raise OmnicodecError(f"run {cfg.run.name} failed: {result.error}")
        print(f"adaptors: {result.metrics['adaptors']}  (every command that takes adaptors also accepts the run "
              f"name '{cfg.run.name}')")
    if a.export:
        from omnicodec.model import OmniCodec

        model = OmniCodec.from_checkpoint(result.metrics["adaptors"])
        model.save(a.export, metadata={**model.metadata, "exported_from": result.metrics["adaptors"]})
        print(f"exported adaptors to {a.export}")


def eval_command(a: argparse.Namespace) -> None:
    if a.human:
        from omnicodec.eval.rd import run_rd

        if getattr(a, "bootstrap_by", None):
            raise OmnicodecError("--bootstrap-by groups the task report's images; the --human report "
                                 "resamples single images (drop one of the two)")

        summary = run_rd(a.data, a.out, a.codec, a.checkpoint, _qualities(a.jpeg), _qualities(a.webp), a.limit,
                         avif=_qualities(a.avif))
        print(summary["markdown"])
        print(f"report: {os.path.join(a.out, 'rd.md')} (rd.png, rd.json, rd_rows.csv)")
        return
    from omnicodec.eval.evaluate import evaluate_command

    absolute_args(a, ("data", "out", "records_cache", "storage"))
    a.adaptors = [storage.absolute(x) if os.path.exists(os.path.expanduser(x)) else x for x in a.adaptors or []] or None
    predictor = None
    if not a.in_process:  # each (system, shard) is Ray work: local loopback Ray, or --address
        from omnicodec.jobs.evaluation import ray_predictor
        from omnicodec.jobs.ray_env import init_ray

        init_ray(a.address)
        predictor = ray_predictor(a.cpus_per_worker)
    evaluate_command(a, predictor)
