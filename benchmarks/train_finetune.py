"""The full fine-tuning baseline (issue 9): one whole codec per task, every weight trained.

For each task and lambda, the bundled photo codec (`mbt2018-mean-photo` q2, the codec every
adaptor curve adapts) is fine-tuned with ``L = R + lambda * L_task``: the same task term as
the all-in-one objective (cls and seg distilled, det on FCOS's label loss), the same training
scenes, 8 scenes per step like the adaptor runs, but every codec weight trains (CompressAI's
recipe: main loss on all weights, auxiliary loss on the quantiles, ``update(force=True)``
before export). Small scale, on purpose: 300 steps per codec (the adaptor curves' CPU
budget), lr 1e-4 (CompressAI's fine-tuning rate; 1e-3 suits freshly initialised adaptors,
not trained weights).

Each run is the codec job (`omnicodec.jobs.codec_job`, ``task`` set) in this process,
without Ray (`fit_local`), resumable: rerunning the command continues every unfinished run
from its newest checkpoint. Evaluate what it writes with
``omnicodec eval ... --baseline finetuned:cls=RUN/checkpoint_N/codec.safetensors,seg=...,det=...``
(`bench_curves.py --finetuned STORAGE` builds that command).

    python benchmarks/train_finetune.py --lambdas 0.9 2.4
"""

from __future__ import annotations

import argparse
import json
import os
import time

import yaml

from omnicodec.jobs.codec_job import WEIGHTS_FILE, CodecPretrainConfig
from omnicodec.jobs.local import fit_local

HOME = os.path.expanduser(os.environ.get("OMNICODEC_HOME", "~/.cache/omnicodec"))
SHARDS = os.path.join(HOME, "data/scenes-192/train-{000000..000039}.tar")
SPEC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "jobs/omnicodec/jobs/specs/train.yaml")
with open(SPEC) as _f:  # each task's loss kind, as the all-in-one adaptors train it
    LOSS = {t["name"]: t["loss"] for t in yaml.safe_load(_f)["tasks"]}


def run_name(task: str, lmbda: float) -> str:
    return f"ft-{task}-l{lmbda:g}"


def config(task: str, lmbda: float, a: argparse.Namespace) -> CodecPretrainConfig:
    return CodecPretrainConfig.from_dict({
        "run": {"name": run_name(task, lmbda), "storage": a.storage, "checkpoint_every": a.checkpoint_every,
                "keep_checkpoints": 1, "cpus_per_worker": a.threads, "wandb": {"mode": "disabled"}},
        "optim": {"steps": a.steps, "lr": a.lr, "warmup_steps": 20},
        "data": {"shards": a.data, "batch_size": 8, "crop": None, "hflip": True, "shuffle_buffer": 64,
                 "num_workers": 1},
        "arch": "mbt2018-mean-photo", "quality": 2, "init_from": "mbt2018-mean-photo:2", "lmbda": lmbda,
        "task": {"name": task, "loss": LOSS[task]},
    }, source="train_finetune")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lambdas", type=float, nargs="+", default=[0.9, 2.4])
    p.add_argument("--tasks", nargs="+", default=list(LOSS), choices=list(LOSS))
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--checkpoint-every", type=int, default=50)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data", default=SHARDS, help="training shards (the adaptors' training scenes)")
    p.add_argument("--storage", default=os.path.join(HOME, "runs-finetune"))
    a = p.parse_args()
    rows = []
    for lmbda in a.lambdas:
        for task in a.tasks:
            t0 = time.time()
            result = fit_local("codec", config(task, lmbda, a), "cpu", keep=1)
            if result.error or result.checkpoint is None:
                raise SystemExit(f"{run_name(task, lmbda)} failed: {result.error}")
            rows.append({"run": result.name, "weights": os.path.join(result.checkpoint, WEIGHTS_FILE),
                         "wall_s": round(time.time() - t0, 1), **result.metrics})
            print(json.dumps(rows[-1]), flush=True)
    with open(os.path.join(a.storage, "summary.json"), "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
