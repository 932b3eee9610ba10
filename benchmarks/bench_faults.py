"""What faults cost. (1) Training: the same run on a loopback multi-node Ray (a CPU-less
head, two 1-CPU nodes, real raylets), once undisturbed and once losing the node under one
Ray Train worker after its first checkpoint, a replacement node joining: both wall times
(the undisturbed run is the baseline, as a ratio), kill -> workers on the new node, the
step it resumed from. (2) Serving: a bounded load on 127.0.0.1 (``omnicodec.serve.chaos``)
with the cls replica, then the router replica SIGKILLed: requests sent / failed and
p50/p90/p99 per phase against the undisturbed phase of the same run.
Run: .venv/bin/python benchmarks/bench_faults.py [--steps 24] [--every 4] [--seconds 8]
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


def _serve_drill(seconds: float) -> dict:
    proc = subprocess.run([sys.executable, "-m", "omnicodec.serve.chaos", "--seconds", str(seconds)],
                          capture_output=True, text=True, timeout=900)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise SystemExit(f"serve drill failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=8.0, help="serve drill: seconds per phase")
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
    serve = _serve_drill(a.seconds)
    base = serve["phases"]["baseline"]
    rows = [[name, p["sent"], p["failed"], p["p50_ms"], p["p90_ms"], p["p99_ms"],
             (p["p99_ms"] or 0) / base["p99_ms"] if base["p99_ms"] else "-", recovery]
            for (name, p), recovery in zip(serve["phases"].items(),
                                           ["-", serve["task_kill"]["healthy_again_after_s"],
                                            serve["router_kill"]["healthy_again_after_s"]])]
    print_table(f"Serve under faults: {serve['concurrency']} clients, cls+seg+det per request, 127.0.0.1",
                ["phase", "sent", "failed", "p50 ms", "p90 ms", "p99 ms", "p99 x baseline", "healthy again (s)"], rows,
                note="Requests count in the phase they complete in; a fault phase runs until the deployment is "
                     "healthy again, then --seconds more.")
    with open(a.out, "w") as f:
        json.dump({"machine": machine(), "clean": clean, "node_loss": lost, "serve": serve}, f, indent=2)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
