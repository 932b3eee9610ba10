"""Fault drills on a real multi-node Ray cluster inside one machine.

``python -m omnicodec.jobs.chaos node-loss --workdir DIR`` starts a loopback cluster of real
raylets (``ray.cluster_utils.Cluster``: a head without CPUs and one 1-CPU node per Ray Train
worker, so the workers must land on different nodes), trains adaptors with Ray Train, and
after the first checkpoint the controller registered it kills the node under one worker: its
raylet and every process on it, without a goodbye, as a lost machine does. A replacement node
then joins (what an autoscaler does); the run must resume from its last checkpoint on the
surviving and the new node and finish. One JSON line reports the nodes each worker ran on
before and after, the step it resumed from and the wall times.

The loopback cluster itself (and why not ``ray start`` twice) is ``omnicodec.runtime.cluster``,
which the Serve drills (``omnicodec.serve.chaos``) start too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from typing import Any

from omnicodec.runtime.cluster import NODE, loopback_cluster, process_nodes
from omnicodec.runtime.ray_env import apply_local_env


def registered_checkpoints(run_dir: str) -> list[int]:
    """Steps of the checkpoints Ray Train's controller registered (what a restart restores from)."""
    try:
        with open(os.path.join(run_dir, "checkpoint_manager_snapshot.json")) as f:
            return [int(r["metrics"]["step"]) for r in json.load(f)["checkpoint_results"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def train_worker_nodes(cluster) -> dict[int, str]:
    """Ray Train worker processes (pid) -> their node."""
    return process_nodes(cluster, "RayTrainWorker")


def _wait(predicate, timeout_s: float, what: str) -> None:
    deadline = time.time() + timeout_s
    while not predicate():
        if time.time() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(0.1)


def node_loss_drill(shards: str, storage: str, steps: int = 12, every: int = 2, kill: bool = True,
                    timeout_s: float = 480) -> dict[str, Any]:
    """Train on a 1 + 2 node loopback cluster; with ``kill``, lose a worker's node mid-run."""
    apply_local_env()
    import ray

    from omnicodec.jobs.adaptor_job import AdaptorTrainConfig
    from omnicodec.jobs.train import train_adaptors
    from omnicodec.runtime.ray_env import init_ray

    name = "node-loss" if kill else "clean"
    cfg = AdaptorTrainConfig.from_dict({
        "run": {"name": name, "storage": storage, "num_workers": 2, "cpus_per_worker": 1.0, "checkpoint_every": every,
                "max_failures": 2, "seed": 7},
        "optim": {"steps": steps, "lr": 0.002, "warmup_steps": 2},
        "data": {"shards": shards, "batch_size": 2, "crop": 64, "shuffle_buffer": 8, "num_workers": 0},
        "codec": {"arch": "mbt2018-mean-small", "quality": 2},
        "tasks": [{"name": "cls", "loss": "label"}, {"name": "seg", "loss": "distill"}],
        "lmbda": 1.0,
    }, source="chaos drill")
    cluster = loopback_cluster(2, 1)
    try:
        init_ray(address=cluster.address)
        box: dict[str, Any] = {}
        t0 = time.perf_counter()
        thread = threading.Thread(target=lambda: box.setdefault("result", train_adaptors(cfg)), daemon=True)
        thread.start()
        report: dict[str, Any] = {"drill": name, "steps": steps, "checkpoint_every": every}
        if kill:
            run_dir = os.path.join(storage, name)
            _wait(lambda: bool(registered_checkpoints(run_dir)) or not thread.is_alive(), timeout_s, "first checkpoint")
            if not thread.is_alive():
                raise RuntimeError(f"training ended before its first checkpoint: {box['result'].error}")
            _wait(lambda: len(set(train_worker_nodes(cluster).values())) == 2, 60, "workers on two nodes")
            before = train_worker_nodes(cluster)
            victim = next(n for n in cluster.worker_nodes if n.node_id == sorted(before.values())[0])
            t_kill = time.perf_counter()
            report["checkpoint_at_kill"] = max(registered_checkpoints(run_dir))
            cluster.remove_node(victim, allow_graceful=False)
            replacement = cluster.add_node(**NODE, num_cpus=1)
            report.update(killed_node=victim.node_id, replacement_node=replacement.node_id,
                          nodes_before=sorted(set(before.values())), kill_at_s=round(t_kill - t0, 1))
            _wait(lambda: replacement.node_id in train_worker_nodes(cluster).values() or not thread.is_alive(),
                  timeout_s, "workers on the replacement node")
            report["nodes_after"] = sorted(set(train_worker_nodes(cluster).values()))
            report["recovered_in_s"] = round(time.perf_counter() - t_kill, 1)
        thread.join(timeout=timeout_s)
        result = box.get("result")
        if result is None:
            raise TimeoutError(f"training did not finish within {timeout_s:.0f} s")
        report.update(error=str(result.error) if result.error else None, step=result.metrics.get("step"),
                      resumed_from=result.metrics.get("resumed_from"), wall_s=round(time.perf_counter() - t0, 1),
                      adaptors=result.metrics.get("adaptors"))
        return report
    finally:
        ray.shutdown()
        cluster.shutdown()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m omnicodec.jobs.chaos", description=__doc__.splitlines()[0])
    ap.add_argument("drill", choices=["node-loss", "clean"])
    ap.add_argument("--workdir", required=True, help="scenes and runs go here (keep the path short: Ray sockets)")
    ap.add_argument("--shards", help="training shards (default: 8 small scenes built in --workdir)")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--every", type=int, default=2, help="checkpoint interval in steps")
    a = ap.parse_args(argv)
    shards = a.shards
    if not shards:
        from omnicodec.data.scenes import build_scenes

        folder = os.path.join(a.workdir, "scenes")
        if not os.path.exists(os.path.join(folder, "train-000000.tar")):
            build_scenes(folder, train=16, test=0, size=96, maxcount=8, progress=False, seed=5)
        shards = os.path.join(folder, "train-*.tar")
    report = node_loss_drill(shards, os.path.join(a.workdir, "runs"), a.steps, a.every, kill=a.drill == "node-loss")
    print(json.dumps(report), flush=True)
    sys.exit(0 if report["error"] is None and report["step"] == a.steps else 1)


if __name__ == "__main__":
    main()
