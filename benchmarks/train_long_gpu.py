"""Longer adaptor trainings on one GPU, several at once, without Ray (issue 9, lever "longer training").

The curve trials of `curves*.yaml` train 300 steps on 2 CPU cores (13 min each). On a GPU box
this script runs the same spec (`jobs/omnicodec/jobs/specs/train.yaml`, photo codec at quality 2,
8 images per step = the CPU runs' 2 workers x 4) for `--steps` steps, every run its own
`omnicodec train --local cuda` process (the GPU is far from saturated by one run of this size,
so several share it). A wall-clock deadline bounds the whole batch: runs still going are
stopped and their newest checkpoint (every `--checkpoint-every` steps) is what comes back,
labelled with the step it reached. The finished run folders are packed into OUT/runs.tar
(adaptors, metrics, config, log per run) and OUT/states.tar (trainer states: relaunching a run
with the same name and storage resumes it, on a GPU or on CPU).

    python benchmarks/train_long_gpu.py --data 'DIR/train-{000000..000019}.tar' --out OUT \
        --storage /tmp/runs --steps 2000 --deadline-s 420

Evaluate what comes back like any run: `benchmarks/bench_curves.py --adaptors RUN_DIR/checkpoint_NNNNNN`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tarfile
import time

from omnicodec.jobs.local import latest_checkpoint

SPEC = "jobs/omnicodec/jobs/specs/train.yaml"
ALL_TASKS = "[{name: cls, weight: 1.0, loss: distill}, {name: seg, weight: 1.0, loss: distill}, " \
            "{name: det, weight: 1.0, loss: label}]"
ONE_TASK = {"cls": "[{name: cls, weight: 1.0, loss: distill}]", "seg": "[{name: seg, weight: 1.0, loss: distill}]",
            "det": "[{name: det, weight: 1.0, loss: label}]"}

ALL_DISTILL = ALL_TASKS.replace("loss: label", "loss: distill")
DET_TWICE = ALL_TASKS.replace("{name: det, weight: 1.0", "{name: det, weight: 2.0")

# plan -> run name -> overrides of SPEC.
# "long": all-in-one at four task weights (the curve), per-task adaptor sets (one bitstream
# each: the baseline) at two, trained exactly alike. The per-task weights are small because
# three per-task streams add up: at 0.1 each their sum lands inside the all-in-one curve's
# rate range, where Delta_m at equal rate is defined.
# "det": the det levers after "long" (det's best mAP fell with longer training on its label
# loss): det distilled like cls and seg (a curve of four), det weighted twice, larger
# T-Adaptors (they cost no rate), and the lambda between the long curve's 0.1 and 0.3.
PLANS: dict[str, dict[str, dict[str, str]]] = {
    "long": {
        **{f"long-aio-l{lm}": {"lmbda": lm, "tasks": ALL_TASKS} for lm in ("0.1", "0.3", "0.8", "2")},
        **{f"long-{t}-l{lm}": {"lmbda": lm, "tasks": ONE_TASK[t]} for lm in ("0.1", "0.3") for t in ("cls", "seg", "det")},
    },
    "det": {
        **{f"long-dd-l{lm}": {"lmbda": lm, "tasks": ALL_DISTILL} for lm in ("0.2", "0.3", "0.5", "0.8")},
        "long-det2-l0.3": {"lmbda": "0.3", "tasks": DET_TWICE},
        "long-big-l0.3": {"lmbda": "0.3", "tasks": ALL_TASKS, "adaptor.bottleneck_ratio": "2"},
        "long-aio-l0.2": {"lmbda": "0.2", "tasks": ALL_TASKS},
    },
    # "fill": the long curve's widest rate gap (0.19 -> 0.28 bpp between lambda 0.2 and 0.3),
    # where seg's BD-rate interpolates; chosen by rate (the training log shows it), run on CPU.
    "fill": {"long-aio-l0.25": {"lmbda": "0.25", "tasks": ALL_TASKS}},
}


def launch(name: str, over: dict[str, str], a: argparse.Namespace) -> subprocess.Popen:
    sets = {"run.name": name, "run.storage": a.storage, "run.wandb.mode": "disabled", "run.cpus_per_worker": 1,
            "run.threads_per_worker": a.threads,
            "run.checkpoint_every": a.checkpoint_every, "run.keep_checkpoints": 1, "optim.steps": a.steps,
            "codec.arch": "mbt2018-mean-photo", "codec.quality": 2, "data.batch_size": 8, "data.shards": a.data,
            "data.num_workers": 1, **over}
    cmd = [sys.executable, "-m", "omnicodec.cli", "train", SPEC, "--local", a.device]
    for k, v in sets.items():
        cmd += ["--set", f"{k}={v}"]
    log = open(os.path.join(a.storage, f"{name}.log"), "a")  # a resumed run keeps its first log
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop(procs: dict[str, subprocess.Popen]) -> list[str]:
    stopped = [n for n, p in procs.items() if p.poll() is None]
    for n in stopped:
        os.killpg(procs[n].pid, signal.SIGTERM)
    for n in stopped:
        try:
            procs[n].wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(procs[n].pid, signal.SIGKILL)
    return stopped


def pack(a: argparse.Namespace, names: list[str], stopped: list[str]) -> list[dict]:
    rows = []
    with tarfile.open(os.path.join(a.out, "runs.tar"), "w") as runs, \
            tarfile.open(os.path.join(a.out, "states.tar"), "w") as states:
        for n in names:
            run_dir = os.path.join(a.storage, n)
            ck = latest_checkpoint(run_dir)
            row = {"run": n, "stopped_at_deadline": n in stopped, "checkpoint": None, "step": 0}
            log = os.path.join(a.storage, f"{n}.log")
            if os.path.exists(log):
                runs.add(log, f"{n}/{n}.log")
            if ck is not None:
                rel = os.path.relpath(ck, a.storage)
                for f in ("adaptors", "metrics.json"):
                    runs.add(os.path.join(ck, f), f"{rel}/{f}")
                runs.add(os.path.join(run_dir, "omnicodec-config.json"), f"{n}/omnicodec-config.json")
                states.add(os.path.join(ck, "trainer_state.pt"), f"{rel}/trainer_state.pt")
                with open(os.path.join(ck, "metrics.json")) as f:
                    m = json.load(f)
                row.update(checkpoint=rel, step=int(m["step"]), steps_per_s=m.get("steps_per_s"),
                           train_s=m.get("train_s"), loss=m.get("loss"), bpp=m.get("bpp"))
            rows.append(row)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="training shards (brace pattern)")
    p.add_argument("--out", required=True)
    p.add_argument("--storage", default="/tmp/omnicodec-long-runs")
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (CPU: the cores one run may use)")
    p.add_argument("--checkpoint-every", type=int, default=250)
    p.add_argument("--deadline-s", type=float, default=420, help="stop every run still going after this long")
    p.add_argument("--plan", choices=sorted(PLANS), default="long", help="which set of runs (see PLANS)")
    p.add_argument("--only", nargs="*", help="a subset of the plan's run names")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    os.makedirs(a.storage, exist_ok=True)
    plan = PLANS[a.plan]
    names = a.only or list(plan)
    t0 = time.time()
    procs = {n: launch(n, plan[n], a) for n in names}
    while time.time() - t0 < a.deadline_s and any(p.poll() is None for p in procs.values()):
        time.sleep(5)
    stopped = stop(procs)
    rows = pack(a, names, stopped)
    summary = {"wall_s": time.time() - t0, "steps": a.steps, "data": a.data, "device": a.device, "runs": rows,
               "exit_codes": {n: p.returncode for n, p in procs.items()}}
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    for r in rows:
        print(f"{r['run']:18s} step {r['step']:5d}/{a.steps} {'STOPPED' if r['stopped_at_deadline'] else 'done   '} "
              f"{(r.get('steps_per_s') or 0):6.2f} steps/s  loss {r.get('loss')}  bpp {r.get('bpp')}")
    print(f"wall {summary['wall_s']:.0f} s; exit codes {summary['exit_codes']}")
    for n, p in procs.items():
        if p.returncode not in (0, None) and n not in stopped:
            with open(os.path.join(a.storage, f"{n}.log")) as f:
                print(f"--- {n} failed (exit {p.returncode}):", *f.readlines()[-12:], sep="")


if __name__ == "__main__":
    main()
