"""Driver side of ``omnicodec pretrain``: fit on Ray Train, evaluate, write the artifact.

Each artifact is written as ``<name>.safetensors`` plus ``<name>.json``, the card
recording the exact command, the resolved config, the data it saw and its measured
quality, so ``omnicodec pretrain`` can reproduce it and the README can quote it.
"""

from __future__ import annotations

import datetime
import os
import sys
from collections.abc import Callable
from typing import Any

from omnicodec import storage
from omnicodec.data.shards import read_card, shard_hashes
from omnicodec.errors import OmnicodecError
from omnicodec.jobs.runner import TrainResult, fit


def _command() -> str:
    return " ".join(["omnicodec", *sys.argv[1:]]) if sys.argv and sys.argv[0].endswith("omnicodec") else " ".join(sys.argv)


def _require(result: TrainResult) -> str:
    if result.error or result.checkpoint is None:
        raise OmnicodecError(f"run {result.name} failed: {result.error or 'no checkpoint'}")
    return result.checkpoint


def pretrain_codec(cfg, out_dir: str, eval_sets: dict[str, str], start_ray: Callable[[], Any] | None = None
                   ) -> dict[str, Any]:
    from safetensors.torch import load

    from omnicodec.codec import load_codec
    from omnicodec.codec.fingerprint import codec_fingerprint
    from omnicodec.codec.registry import CodecSpec, FrozenCodec, freeze, get_architecture
    from omnicodec.eval.human import evaluate_codec
    from omnicodec.jobs.codec_job import WEIGHTS_FILE
    from omnicodec.zoo import artifact_name, round_parameters_to_fp16, save_artifact

    result = fit("codec", cfg, start_ray=start_ray)
    ckpt = _require(result)
    state = load(storage.read_bytes(storage.join(ckpt, WEIGHTS_FILE)))
    arch = get_architecture(cfg.arch)
    model = arch.build(cfg.quality)
    model.load_state_dict(state)
    fp16_keys = None
    if cfg.fp16_storage:
        round_parameters_to_fp16(model)
        fp16_keys = {n for n, p in model.named_parameters() if p.dtype.is_floating_point}
    freeze(model)
    codec = FrozenCodec(model, arch, CodecSpec(arch=cfg.arch, quality=cfg.quality), codec_fingerprint(model, arch.name))
    if arch.variable_rate:  # every trained level measured: the card is the ladder
        metrics = {}
        for level in range(model.levels):
            model.position = float(level)
            metrics.update({f"q{level + 1} {n}": _summary(evaluate_codec(codec, s)) for n, s in eval_sets.items()})
        model.position = float(cfg.quality - 1)
        lmbda: Any = model.lambdas.tolist()
    else:
        metrics = {name: _summary(evaluate_codec(codec, shards)) for name, shards in eval_sets.items()}
        lmbda = cfg.lambda_value()
    name = artifact_name("codec", cfg.arch, arch.stored_quality(cfg.quality))
    card = {
        "kind": "codec", "name": name, "arch": cfg.arch, "quality": cfg.quality, "lambda": lmbda,
        "fingerprint": codec.fingerprint, "parameters": codec.num_parameters,
        "storage": "fp16 parameters (fp16-exact fp32 values), fp32/int buffers" if fp16_keys else "fp32",
        "command": _command(), "config": cfg.to_dict(),
        "data": {**(read_card(cfg.data.shards if isinstance(cfg.data.shards, str) else cfg.data.shards[0]) or {}),
                 "sha256": shard_hashes(cfg.data.shards)},
        "train": {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))},
        "metrics": metrics, "wall_s": round(result.wall_s, 1), "train_s": round(result.metrics.get("train_s", 0.0), 1),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    save_artifact(name, model.state_dict(), card, out_dir, fp16_keys=fp16_keys)
    # the freshly written weights must load through the public path and fingerprint the same
    if os.path.abspath(out_dir) == os.path.abspath(_zoo_dir()):
        assert load_codec(CodecSpec(arch=cfg.arch, quality=cfg.quality)).fingerprint == codec.fingerprint
    return card


def _summary(ev: dict[str, Any]) -> dict[str, Any]:
    return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in ev.items() if k != "rows"}


def _zoo_dir() -> str:
    from omnicodec.zoo import WEIGHTS_DIR

    return str(WEIGHTS_DIR)


def pretrain_task(cfg, out_dir: str, test_shards: list[str], start_ray: Callable[[], Any] | None = None
                  ) -> dict[str, Any]:
    """Train a scene task network, score it on the clean test scenes, write the artifact."""
    from safetensors.torch import load

    from omnicodec.data.loader import iter_samples
    from omnicodec.eval.tasks import score_clean
    from omnicodec.jobs.task_job import WEIGHTS_FILE
    from omnicodec.tasks.networks import build_task_net
    from omnicodec.tasks.registry import freeze, get_task
    from omnicodec.zoo import save_artifact

    result = fit("task", cfg, start_ray=start_ray)
    ckpt = _require(result)
    state = load(storage.read_bytes(storage.join(ckpt, WEIGHTS_FILE)))
    net = build_task_net(get_task(cfg.task).kind, cfg.classes())
    net.load_artifact_state(state)
    freeze(net)
    samples = list(iter_samples(test_shards))
    metrics = {"scenes_test_clean": {"images": len(samples), **score_clean(cfg.task, samples, net, cfg.classes())}}
    info = get_task(cfg.task)
    data_card = read_card(cfg.data.shards if isinstance(cfg.data.shards, str) else cfg.data.shards[0]) or {}
    card = {
        "kind": "task", "name": info.bundled, "task": cfg.task, "description": info.description,
        "num_classes": cfg.classes(), "classes": data_card.get("classes"), "net_kwargs": {},
        "backbone": getattr(net, "backbone_name", None),
        "parameters": sum(p.numel() for p in net.parameters()),
        "stored_parameters": sum(v.numel() for v in net.artifact_state().values()),
        "command": _command(), "config": cfg.to_dict(), "data": data_card,
        "train": {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))},
        "metrics": metrics, "wall_s": round(result.wall_s, 1), "train_s": round(result.metrics.get("train_s", 0.0), 1),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    save_artifact(info.bundled, net.artifact_state(), card, out_dir)
    return card
