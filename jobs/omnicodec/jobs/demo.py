"""``omnicodec demo``: the platform end to end on embedded defaults.

Local loopback Ray, scene shards built (or reused) under ``--out``, the bundled codec
and task networks, all-in-one adaptors for cls/seg/det trained by Ray Train with 2
workers at 2 lambdas, and an evaluation from real bitstreams against the frozen codec
and JPEG. Prints the table and where the report is.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import time
from importlib import resources
from typing import Any

import yaml
from rich.console import Console

from omnicodec.data.shards import resolve_shards
from omnicodec.errors import DataError, OmnicodecError

console = Console()


def load_demo_spec() -> dict[str, Any]:
    return yaml.safe_load(resources.files("omnicodec.jobs").joinpath("specs/demo.yaml").read_text())


def demo_shards(out: str, spec: dict[str, Any]) -> str:
    from omnicodec.data.scenes import build_scenes

    folder = os.path.join(out, "data", "scenes")
    try:
        resolve_shards(folder)
        console.print(f"[1/4] reusing scene shards in {folder}")
    except DataError:
        console.print(f"[1/4] building {spec['train']} + {spec['test']} scenes in {folder}")
        build_scenes(folder, spec["train"], spec["test"], spec["size"], maxcount=spec["maxcount"])
    return folder


def demo_command(a: argparse.Namespace) -> None:
    from omnicodec.eval.evaluate import build_systems, run_evaluation
    from omnicodec.eval.report import print_summary
    from omnicodec.jobs.adaptor_job import AdaptorTrainConfig
    from omnicodec.jobs.cli_jobs import split_shards
    from omnicodec.jobs.evaluation import ray_predictor
    from omnicodec.jobs.ray_env import init_ray
    from omnicodec.jobs.train import train_adaptors

    t0 = time.perf_counter()
    spec = load_demo_spec()
    out = os.path.abspath(os.path.expanduser(a.out))
    runs = os.path.join(out, "runs")
    if a.fresh and os.path.isdir(runs):
        shutil.rmtree(runs)
    scenes = demo_shards(out, spec["scenes"])
    init_ray(num_cpus=2)
    ckpts = []
    for i, lmbda in enumerate(spec["lambdas"]):
        train = yaml.safe_load(yaml.safe_dump(spec["train"]))
        train["data"]["shards"] = split_shards(scenes, "train")
        train["lmbda"] = lmbda
        if a.steps:
            train["optim"]["steps"] = a.steps
        # The run name carries the recipe's hash: rerunning the demo resumes (or reuses) the
        # same recipe's runs, and an edited demo.yaml starts new ones.
        recipe = hashlib.sha256(json.dumps(train, sort_keys=True).encode()).hexdigest()[:8]
        train["run"].update(name=f"demo-lambda{i}-{recipe}", storage=runs)
        cfg = AdaptorTrainConfig.from_dict(train, source="demo.yaml")
        console.print(f"[2/4] training all-in-one adaptors for {', '.join(cfg.task_names)} at lambda={lmbda} "
                      f"({cfg.run.num_workers} Ray Train workers, {cfg.optim.steps} steps)")
        result = train_adaptors(cfg)
        if result.error:
            raise OmnicodecError(f"demo run {cfg.run.name} failed: {result.error}")
        console.print(f"      done in {result.wall_s:.0f} s: bpp {result.metrics.get('bpp', float('nan')):.3f}, "
                      f"loss {result.metrics.get('loss', float('nan')):.3f}")
        ckpts.append((f"lambda={lmbda:g}", result.metrics["adaptors"]))
    console.print("[3/4] evaluating from real bitstreams against the frozen codec and JPEG")
    systems, tasks = build_systems(ckpts, None, runs, jpeg=tuple(spec["baselines"]["jpeg"]))
    report = run_evaluation(systems, split_shards(scenes, "test"), tasks, os.path.join(out, "report"),
                            meta={"demo": {"lambdas": spec["lambdas"]}}, resamples=400, det_resamples=100,
                            predictor=ray_predictor(), pictures=2)
    wall = time.perf_counter() - t0
    console.print("[4/4] results")
    print_summary(report)
    console.print(f"demo wall time: {wall / 60:.1f} min; report: {report['files']['markdown']}")
