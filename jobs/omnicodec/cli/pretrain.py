"""``omnicodec pretrain codec | task``: train the parts the method later freezes."""

from __future__ import annotations

import argparse
import os
from typing import Any

from omnicodec.cli._common import HOME, add_command, add_group


def register(sub: argparse._SubParsersAction) -> None:
    psub = add_group(sub, "pretrain", "train the frozen parts here: base codecs and task networks",
                     "Pretrain base codecs and task networks on Ray Train; write bundled artifacts.",
                     "pretrain_command", "WHAT")
    s = add_command(psub, "codec", "a base codec: rate + lambda*255^2*MSE on real-photo crops",
                    "Trains ARCH at QUALITY (lambda from CompressAI's ladder unless --lmbda; a variable-rate ARCH such as\n"
                    "mbt2018-mean-photo-vr trains all its lambda levels at once), evaluates real-byte\n"
                    "bpp, PSNR and MS-SSIM on the Kodak-like set, and writes codec-<arch>-q<quality>.{safetensors,json}.\n\n"
                    "example: omnicodec pretrain codec --quality 3 --steps 6000\n"
                    "         omnicodec pretrain codec --quality 1 --init-from mbt2018-mean-small:3 --steps 2000",
                    _codec)
    _add_run_flags(s)
    s.add_argument("--arch", default="mbt2018-mean-small")
    s.add_argument("--quality", type=int, default=3)
    s.add_argument("--lmbda", type=float)
    s.add_argument("--init-from", help="start from a codec checkpoint or bundled ARCH:QUALITY")
    s.add_argument("--data", help="photo shards (default: made under $OMNICODEC_HOME/data/photos)")
    s.add_argument("--eval-data", help="evaluation shards (default: the Kodak-like set)")
    s = add_command(psub, "task", "a frozen task network on the scene shards (cls, seg, det)",
                    "Trains a small torchvision-architecture network for TASK on the scene shards, evaluates it on\n"
                    "the clean test scenes (top-1, mIoU or mAP) and writes task-<task>.{safetensors,json}.\n\n"
                    "example: omnicodec pretrain task --task seg --steps 3000", _task)
    _add_run_flags(s)
    s.add_argument("--task", required=True, metavar="TASK",
                   help="a bundled task whose network is trained here: " + ", ".join(_trainable()) +
                        " (batch, crop and steps default to its kind's pretrain_defaults)")
    s.add_argument("--data", help="scene folder (default: made under $OMNICODEC_HOME/data/scenes)")


def _trainable() -> list[str]:
    from omnicodec.tasks.registry import trainable_tasks  # imports no torch: fine for --help

    return trainable_tasks()


def _add_run_flags(s: argparse.ArgumentParser) -> None:
    s.add_argument("--steps", type=int, help="optimisation steps")
    s.add_argument("--lr", type=float)
    s.add_argument("--batch-size", type=int)
    s.add_argument("--crop", type=int)
    s.add_argument("--workers", type=int, default=1, help="Ray Train workers (default 1)")
    s.add_argument("--cpus-per-worker", type=float, default=None)
    s.add_argument("--name", help="run name = run id (relaunch to resume)")
    s.add_argument("--storage", default=os.path.join(HOME, "runs"))
    s.add_argument("--out", default=None, help="artifact folder (default: the bundled zoo folder)")
    s.add_argument("--address", help="Ray address to join (default: local loopback Ray)")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config key")


def _overrides(a: argparse.Namespace, mapping: dict[str, Any]) -> list[str]:
    """The flags given (``KEY=VALUE`` for each that is set), then every ``--set``."""
    return [f"{k}={v}" for k, v in mapping.items() if v is not None] + list(a.set)


def _zoo_out(a: argparse.Namespace) -> str:
    from omnicodec.zoo import WEIGHTS_DIR

    return a.out or str(WEIGHTS_DIR)


def _codec(a: argparse.Namespace) -> None:
    from omnicodec.config import apply_overrides
    from omnicodec.jobs.codec_job import CodecPretrainConfig
    from omnicodec.jobs.default_data import (
        DATA_HOME,
        default_heldout_photos,
        default_kodaklike,
        default_photos,
        has_shards,
        split_shards,
    )
    from omnicodec.jobs.pretrain import pretrain_codec
    from omnicodec.jobs.report_cli import print_card
    from omnicodec.runtime.ray_env import init_ray

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
    if has_shards(scenes) and split_shards(scenes, "test"):
        eval_sets["scenes_test"] = split_shards(scenes, "test")
    card = pretrain_codec(cfg, _zoo_out(a), eval_sets, start_ray=lambda: init_ray(a.address))
    print_card(card)


def _task(a: argparse.Namespace) -> None:
    from omnicodec.config import apply_overrides
    from omnicodec.jobs.default_data import default_scenes, split_shards
    from omnicodec.jobs.pretrain import pretrain_task
    from omnicodec.jobs.report_cli import print_card
    from omnicodec.jobs.task_job import TaskPretrainConfig
    from omnicodec.runtime.ray_env import init_ray
    from omnicodec.tasks.registry import pretrain_defaults

    scenes = a.data or default_scenes()
    batch, crop, steps = pretrain_defaults(a.task)  # the task kind's hook
    base = {"task": a.task, "data": {"shards": split_shards(scenes, "train") or scenes, "batch_size": batch,
                                     "crop": crop, "hflip": True, "num_workers": 1},
            "optim": {"steps": steps, "lr": 2e-3, "warmup_steps": 100, "weight_decay": 1e-4},
            "run": {"name": a.name or f"task-{a.task}", "checkpoint_every": 250}}
    cfg = TaskPretrainConfig.from_user_dict(apply_overrides(base, _overrides(a, {
        "optim.steps": a.steps, "optim.lr": a.lr, "data.batch_size": a.batch_size, "data.crop": a.crop,
        "run.num_workers": a.workers, "run.cpus_per_worker": a.cpus_per_worker, "run.storage": a.storage,
    })), source="pretrain task")
    card = pretrain_task(cfg, _zoo_out(a), split_shards(scenes, "test"), start_ray=lambda: init_ray(a.address))
    print_card(card)
