"""Sweeps that stop losers early: the same search with and without ASHA.

A learning-rate x adaptor-width grid (lambda fixed, so every trial's ``val_loss`` is the
same objective and comparable), the demo codec, 3 tasks. Both sweeps run through the CLI
(``omnicodec sweep``) with their own local Ray, one trial at a time, on the same scenes.
Every trial scores the objective on the same held-out batch at each checkpoint
(``val_loss``); with ASHA (grace 1 report, reduction factor 2) trials that trail at a rung
stop there. Reported per sweep: wall time, training steps spent over all trials, trials
run to the end, the best final ``val_loss`` and which trial it was, and the rate/accuracy
Pareto front of the finished trials; the ratio columns are against the sweep without
early stopping (the baseline), measured in the same run.
Run: .venv/bin/python benchmarks/bench_sweep.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import yaml

from common import machine, print_table

STEPS, EVERY = 16, 4
GRID = {"optim.lr": [3e-3, 1e-4, 1e-5], "adaptor.bottleneck_ratio": [4, 8]}
CLI = os.path.join(os.path.dirname(sys.executable), "omnicodec")


def spec(scenes: str, storage: str, name: str, asha: bool) -> dict:
    train = {"run": {"num_workers": 1, "cpus_per_worker": 1.9, "threads_per_worker": 2, "checkpoint_every": EVERY,
                     "wandb": {"mode": "disabled"}},
             "optim": {"steps": STEPS, "warmup_steps": 2},
             "data": {"shards": os.path.join(scenes, "train-{000000..000003}.tar"), "batch_size": 4, "crop": 128,
                      "shuffle_buffer": 16},
             "validation": {"shards": os.path.join(scenes, "test-000000.tar"), "images": 8},
             "codec": {"arch": "mbt2018-mean-small", "quality": 2}, "lmbda": 2.0,
             "tasks": [{"name": "cls"}, {"name": "seg"}, {"name": "det"}]}
    out = {"name": name, "storage": storage, "train": train, "trial_cpus": 0.1,
           "eval_data": os.path.join(scenes, "test-000000.tar"), "eval_limit": 16,
           "search": {k: {"grid": v} for k, v in GRID.items()}, "max_concurrent_trials": 1}
    if asha:
        out["scheduler"] = {"kind": "asha", "metric": "val_loss", "grace_period": 1, "reduction_factor": 2,
                            "validation_images": 8}
    return out


def run(scenes: str, storage: str, name: str, asha: bool) -> dict:
    path = os.path.join(storage, f"{name}.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(spec(scenes, storage, name, asha), f)
    t0 = time.perf_counter()
    out = subprocess.run([CLI, "sweep", path], capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(out.stdout[-3000:] + out.stderr[-3000:])
    summary = json.load(open(os.path.join(storage, name, "sweep.json")))
    errors = [f"{t['trial']}: {t['error']}" for t in summary["trials"] if t["error"]]
    if errors:
        raise RuntimeError(f"{name}: {len(errors)} trial(s) failed:\n" + "\n".join(e[-1500:] for e in errors))
    return {"wall": wall, **summary}


def describe(summary: dict) -> dict:
    trials = summary["trials"]
    steps = sum(min(STEPS, (t.get("reports") or 0) * EVERY) for t in trials)
    done = [t for t in trials if t["status"] == "done"]
    best = min(done, key=lambda t: t.get("val_loss", float("inf")))
    front = {_label(t) for t in trials if t["trial"] in summary["pareto"]}
    return {"steps": steps, "done": len(done), "stopped": sum(t["status"] == "stopped early" for t in trials),
            "best": best.get("val_loss"), "best_trial": _label(best), "front": front}


def _label(t: dict) -> str:
    c = t["config"]
    return f"lr {c['optim.lr']:g}, ratio {c['adaptor.bottleneck_ratio']}"


def main() -> None:
    from omnicodec.data.scenes import build_scenes

    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as d:
        scenes = os.path.join(d, "scenes")
        build_scenes(scenes, train=128, test=16, size=160, maxcount=32, progress=False)
        full = describe(base := run(scenes, d, "grid", asha=False))
        early = describe(asha := run(scenes, d, "grid-asha", asha=True))
    rows = []
    for label, s, r in (("no early stopping (baseline)", base, full), ("ASHA on val_loss", asha, early)):
        rows.append([label, len(s["trials"]), r["done"], r["stopped"], r["steps"], r["steps"] / full["steps"], s["wall"],
                     s["wall"] / base["wall"], r["best"], r["best_trial"], len(r["front"]),
                     len(r["front"] & full["front"])])
    print_table(f"{len(base['trials'])} trials ({' x '.join(f'{k} {v}' for k, v in GRID.items())}), {STEPS} steps each, "
                f"reports every {EVERY}; {machine()}",
                ["sweep", "trials", "run to the end", "stopped early", "training steps", "x baseline", "wall s",
                 "x baseline", "best val_loss", "best trial", "Pareto front", "of the baseline's front"], rows,
                "trials-to-front: the baseline's front members the ASHA sweep also finished (its stopped trials "
                "have no final evaluation)")


if __name__ == "__main__":
    main()
