"""``omnicodec pretrain codec | task``: train the parts the method later freezes."""

from __future__ import annotations

import argparse
import os

from omnicodec.cli._common import HOME, add_command, add_group


def register(sub: argparse._SubParsersAction) -> None:
    psub = add_group(sub, "pretrain", "train the frozen parts here: base codecs and task networks",
                     "Pretrain base codecs and task networks on Ray Train; write bundled artifacts.",
                     "pretrain_command", "WHAT")
    s = add_command(psub, "codec", "a base codec: rate + lambda*255^2*MSE on real-photo crops",
                    "Trains ARCH at QUALITY (lambda from CompressAI's ladder unless --lmbda), evaluates real-byte\n"
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
                   help="a bundled task whose network is trained here: cls, seg or det (checked against the registry)")
    s.add_argument("--data", help="scene folder (default: made under $OMNICODEC_HOME/data/scenes)")


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


def _codec(a: argparse.Namespace) -> None:
    from omnicodec.jobs.cli_jobs import pretrain_codec_command

    pretrain_codec_command(a)


def _task(a: argparse.Namespace) -> None:
    from omnicodec.jobs.cli_jobs import pretrain_task_command

    pretrain_task_command(a)
