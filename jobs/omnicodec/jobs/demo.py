"""``omnicodec demo``: the platform end to end on embedded defaults.

Local loopback Ray, scene shards built (or reused) under ``--out``, the bundled photo codecs
and task networks. The curve: ONE bundled rate-conditioned all-in-one set (cls/seg/det) on
the variable-rate photo codec, coded at several rates picked at encode time, against that
codec frozen at the same levels. Beside it the fixed-rate way: one all-in-one set trained
live by Ray Train with 2 workers on the fixed photo codec, with bundled fixed-rate sets of
that codec (trained longer than a demo can) as one curve, and JPEG; all evaluated from real
bitstreams on the demo's held-out scenes. Prints the table, BD-rates and BD-metrics with
intervals, and where the report is.
"""

from __future__ import annotations

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

    # the folder names the recipe: an edited demo.yaml builds its own scenes instead of reusing others
    folder = os.path.join(out, "data", f"scenes-{spec['train']}x{spec['test']}-{spec['size']}px")
    try:
        resolve_shards(folder)
        console.print(f"[1/4] reusing scene shards in {folder}")
    except DataError:
        console.print(f"[1/4] building {spec['train']} + {spec['test']} scenes in {folder}")
        build_scenes(folder, spec["train"], spec["test"], spec["size"], maxcount=spec["maxcount"])
    return folder


def bundled_points(spec: dict[str, Any], arch: str) -> list[tuple[str, str]]:
    """The points the demo cannot train in 10 minutes on 2 cores: bundled all-in-one sets of
    the same codec (trained longer, their cards say how), labelled as bundled on the curve."""
    from omnicodec import zoo
    from omnicodec.adaptors.checkpoint import resolve

    points = []
    for name in spec.get("bundled", []):
        card = zoo.card(name)
        if not card["codec"].startswith(f"{arch} "):
            raise OmnicodecError(f"demo.yaml: bundled {name} adapts {card['codec']}, the demo trains on {arch}")
        points.append((f"lambda={card['lmbda']:g} (bundled {name})", resolve(f"zoo:{name}")))
    return points


def rate_conditioned_set(spec: dict[str, Any]) -> tuple[str, str, list[float], str]:
    """(label, location, levels, codec architecture) of the demo's main curve: one bundled
    rate-conditioned set, evaluated at ``levels`` of its variable-rate codec."""
    from omnicodec import zoo
    from omnicodec.adaptors.checkpoint import resolve

    rate = spec["rate_conditioned"]
    card = zoo.card(rate["set"])
    if not card.get("rate_levels"):
        raise OmnicodecError(f"demo.yaml: rate_conditioned {rate['set']} is a fixed-rate set (no rate_levels)")
    return (f"one set ({rate['set']})", resolve(f"zoo:{rate['set']}"), [float(v) for v in rate["levels"]],
            card["codec"].split(" ")[0])


def demo_baselines(spec: dict[str, Any], rate_arch: str, arch: str, live: list[str]) -> list[str]:
    """The variable-rate codec frozen at the curve's levels, the fixed-rate sets (``live``
    checkpoints and the bundled ones) as one named curve, JPEG (and, when the spec names
    qualities under ``baselines.frozen``, the fixed codec frozen)."""
    from omnicodec.eval.systems.adaptors import frozen_levels

    base = spec["baselines"]
    levels = frozen_levels(spec["rate_conditioned"]["levels"])
    fixed = [*live, *(where for _, where in bundled_points(spec, arch))]
    return [f"frozen:{rate_arch}:{','.join(map(str, levels))}",
            f"adaptors:fixed-rate sets (live + bundled)={','.join(fixed)}",
            *([f"frozen:{arch}:{','.join(map(str, base['frozen']))}"] if base.get("frozen") else []),
            f"jpeg:{','.join(map(str, base['jpeg']))}"]


def demo_train_config(spec: dict[str, Any], i: int, lmbda: float, shards: list[str], runs: str,
                      steps: int | None = None):
    """The validated training config of the demo's ``i``-th live point. Its run name carries
    the recipe's hash: rerunning the demo resumes (or reuses) the same recipe's runs, and an
    edited demo.yaml starts new ones."""
    from omnicodec.jobs.adaptor_job import AdaptorTrainConfig

    train = yaml.safe_load(yaml.safe_dump(spec["train"]))
    train["data"]["shards"] = shards
    train["lmbda"] = lmbda
    if steps:
        train["optim"]["steps"] = steps
    recipe = hashlib.sha256(json.dumps(train, sort_keys=True).encode()).hexdigest()[:8]
    train["run"].update(name=f"demo-lambda{i}-{recipe}", storage=runs)
    return AdaptorTrainConfig.from_dict(train, source="demo.yaml")


def run_demo(out: str, steps: int | None = None, fresh: bool = False) -> dict[str, Any]:
    """The whole demo (see the module docstring) into ``out``: scenes, live training (``steps``
    overrides the spec's; ``fresh`` retrains instead of reusing finished runs), the evaluation
    and its printed summary. Returns the evaluation report."""
    from omnicodec.eval.evaluate import build_systems, name_adaptor_systems, run_evaluation
    from omnicodec.eval.report import print_summary
    from omnicodec.jobs.default_data import split_shards
    from omnicodec.jobs.evaluation import ray_predictor
    from omnicodec.jobs.train import train_adaptors
    from omnicodec.runtime.ray_env import init_ray

    t0 = time.perf_counter()
    spec = load_demo_spec()
    out = os.path.abspath(os.path.expanduser(out))
    runs = os.path.join(out, "runs")
    if fresh and os.path.isdir(runs):
        shutil.rmtree(runs)
    scenes = demo_shards(out, spec["scenes"])
    init_ray(num_cpus=2)
    ckpts = []
    for i, lmbda in enumerate(spec["lambdas"]):
        cfg = demo_train_config(spec, i, lmbda, split_shards(scenes, "train"), runs, steps)
        console.print(f"[2/4] training all-in-one adaptors for {', '.join(cfg.task_names)} at lambda={lmbda} "
                      f"({cfg.run.num_workers} Ray Train workers, {cfg.optim.steps} steps)")
        result = train_adaptors(cfg)
        if result.error:
            raise OmnicodecError(f"demo run {cfg.run.name} failed: {result.error}")
        if "bpp" in result.metrics:
            console.print(f"      done in {result.wall_s:.0f} s: bpp {result.metrics['bpp']:.3f}, "
                          f"loss {result.metrics.get('loss', float('nan')):.3f}")
        else:  # the same recipe finished before: its checkpoint is reused, nothing was trained
            console.print(f"      reusing the finished run {cfg.run.name} (--fresh retrains)")
        ckpts.append(result.metrics["adaptors"])
    label, rate_set, levels, rate_arch = rate_conditioned_set(spec)
    console.print(f"[3/4] evaluating ONE rate-conditioned set at {len(levels)} rates against its codec frozen at the "
                  f"same levels, beside {len(ckpts) + len(spec['bundled'])} fixed-rate sets and JPEG")
    systems, tasks = build_systems([(label, rate_set)], demo_baselines(spec, rate_arch, spec["train"]["codec"]["arch"],
                                                                       ckpts), runs, rate_levels=levels)
    name_adaptor_systems(systems)
    report = run_evaluation(systems, split_shards(scenes, "test"), tasks, os.path.join(out, "report"),
                            meta={"demo": {"lambdas": spec["lambdas"], "rate_levels": levels}}, resamples=400,
                            det_resamples=100, predictor=ray_predictor(), pictures=2)
    wall = time.perf_counter() - t0
    console.print("[4/4] results")
    print_summary(report)
    console.print(f"demo wall time: {wall / 60:.1f} min; report: {report['files']['markdown']}")
    return report
