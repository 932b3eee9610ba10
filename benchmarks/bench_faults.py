"""What a lost node costs a training run: the same run on a loopback multi-node Ray (a
CPU-less head, two 1-CPU nodes, real raylets), once undisturbed and once losing the node
under one Ray Train worker after its first checkpoint, a replacement node joining.

Reports both wall times (the undisturbed run is the baseline, as a ratio), the time from
the kill to the workers running on the new node, and the step the run resumed from.
Run: .venv/bin/python benchmarks/bench_faults.py [--steps 24] [--every 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from common import machine, print_table

HERE = os.path.dirname(os.path.abspath(__file__))


def drill(kind: str, workdir: str, steps: int, every: int) -> dict:
    proc = subprocess.run([sys.executable, "-m", "omnicodec.jobs.chaos", kind, "--workdir", workdir,
                           "--steps", str(steps), "--every", str(every)], capture_output=True, text=True, timeout=1800)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise SystemExit(f"{kind} drill failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "faults.json"))
    a = ap.parse_args()
    print(f"machine: {machine()}")
    workdir = tempfile.mkdtemp(prefix="bf", dir="/tmp")
    clean = drill("clean", workdir, a.steps, a.every)
    lost = drill("node-loss", workdir, a.steps, a.every)
    rows = [["undisturbed (baseline)", clean["wall_s"], 1.0, "-", "-", clean["step"]],
            [f"node lost at {lost['kill_at_s']:.0f} s", lost["wall_s"], lost["wall_s"] / clean["wall_s"],
             lost["recovered_in_s"], lost["resumed_from"], lost["step"]]]
    print_table(f"Ray Train, 2 workers on 2 loopback nodes, {a.steps} steps, checkpoint every {a.every}",
                ["run", "wall s", "x baseline", "kill -> workers on new node (s)", "resumed from", "final step"], rows)
    with open(a.out, "w") as f:
        json.dump({"machine": machine(), "clean": clean, "node_loss": lost}, f, indent=2)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
