"""Serve under faults: a bounded load test on 127.0.0.1 while replicas are killed.

``python -m omnicodec.serve.chaos --seconds 12`` deploys the app (bundled demo adaptors:
cls, seg, det; one replica each, a bearer token), keeps ``--concurrency`` clients posting
the same bitstream to ``/v1/analyze?tasks=cls,seg,det``, and runs three equal phases:
undisturbed (the baseline), the ``cls`` task replica killed (SIGKILL: no goodbye) at the
start of its phase, then the router replica killed; a fault phase lasts until Serve reports
the deployment healthy again plus ``--seconds``. Per phase (requests counted when they
complete): sent and failed, p50/p90/p99 latency (the perf_analyzer convention), and how long
until the killed deployment was healthy again. One JSON line on stdout.

``python -m omnicodec.serve.chaos multinode``: the app on a loopback multi-node Ray (a
CPU-less head with the one HTTP proxy, two 1-CPU nodes): where each replica landed, answers
from it, then the node under the cls replica lost and the answers after Serve re-placed it.

Expected: a dead task replica costs no failed request (the router retries a task call whose
replica died, on the replacement); a dead router loses at most the requests in flight on it.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import threading
import time
from typing import Any

import numpy as np


def replica_pids(deployment: str, app: str = "omnicodec") -> set[int]:
    """Processes of a deployment's replicas (Ray titles them ``ray::ServeReplica:APP:NAME``)."""
    import psutil

    tag = f"ServeReplica:{app}:{deployment}"
    return {p.info["pid"] for p in psutil.process_iter(["pid", "cmdline"])
            if tag in " ".join(p.info["cmdline"] or [])}


class Load:
    """``concurrency`` client threads posting one request in a loop; every request's
    (start time, latency, HTTP status or 0 for a transport error)."""

    def __init__(self, url: str, token: str, data: bytes, concurrency: int):
        self.url, self.token, self.data, self.concurrency = url, token, data, concurrency
        self.events: list[tuple[float, float, int]] = []
        self.failures: list[tuple[float, str]] = []  # (start time, status and the answer's first bytes)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(concurrency)]

    def _client(self) -> None:
        import httpx

        with httpx.Client(base_url=self.url, timeout=60, headers={"Authorization": f"Bearer {self.token}",
                                                                   "Content-Type": "application/octet-stream"}) as c:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                try:  # a failure is stamped with its completion time, as its latency row is
                    r = c.post("/v1/analyze", params={"tasks": "cls,seg,det"}, content=self.data)
                    status = r.status_code
                    if status != 200:
                        self.failures.append((time.perf_counter(), f"{status} {r.text[:160]}"))
                except httpx.HTTPError as e:
                    status = 0
                    self.failures.append((time.perf_counter(), f"{type(e).__name__}: {e}"[:160]))
                self.events.append((t0, time.perf_counter() - t0, status))

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=90)

    def phase(self, start: float, end: float) -> dict[str, Any]:
        rows = [(lat, st) for t0, lat, st in self.events if start <= t0 + lat < end]  # by completion
        lat = np.array([r[0] for r in rows]) * 1000
        failed = sum(1 for _, st in rows if st != 200)
        pct = {f"p{q}_ms": round(float(np.percentile(lat, q)), 1) if len(lat) else None for q in (50, 90, 99)}
        why = sorted({f for t1, f in self.failures if start <= t1 < end})[:3]
        return {"sent": len(rows), "failed": failed, **pct, **({"failures": why} if why else {})}


def _kill_and_time(deployment: str, timeout_s: float) -> dict[str, Any]:
    """SIGKILL the deployment's replica; seconds until a new replica process runs and Serve
    reports the deployment healthy again (its constructor loaded the models)."""
    import psutil

    before = replica_pids(deployment)
    if not before:
        raise RuntimeError(f"no running replica of {deployment}")
    t0 = time.perf_counter()
    for pid in before:
        psutil.Process(pid).kill()
    while time.perf_counter() - t0 < timeout_s:
        if replica_pids(deployment) - before and _healthy(deployment):
            return {"killed": deployment, "replicas_killed": len(before),
                    "healthy_again_after_s": round(time.perf_counter() - t0, 1)}
        time.sleep(0.2)
    return {"killed": deployment, "replicas_killed": len(before), "healthy_again_after_s": None}


def _stream() -> bytes:
    """A real bitstream of a real photo, made with the bundled demo adaptors."""
    import skimage.data
    import torch

    from omnicodec.adaptors.checkpoint import resolve
    from omnicodec.model import OmniCodec

    model = OmniCodec.from_checkpoint(resolve("zoo:adaptors-demo"))
    x = torch.from_numpy(skimage.data.astronaut()[::4, ::4].copy()).permute(2, 0, 1)[None].float() / 255
    return model.encode(x).to_bytes()


def serve_fault_drill(seconds: float = 12.0, concurrency: int = 4, port: int = 8765,
                      recovery_timeout_s: float = 120.0) -> dict[str, Any]:
    from omnicodec.runtime.ray_env import apply_local_env, init_ray

    apply_local_env()  # before Ray is imported: it reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER at import
    from ray import serve

    from omnicodec.serve.client import wait_healthy
    from omnicodec.serve.run import config_for_adaptors, deploy

    token = secrets.token_hex(16)
    init_ray(num_cpus=2)
    one = [f"tasks.{t}.autoscaling.{k}=1" for t in ("cls", "seg", "det") for k in ("min_replicas", "max_replicas")]
    cfg = config_for_adaptors("zoo:adaptors-demo", [f"http_options.port={port}", f"auth.token={token}", *one])
    try:
        url = deploy(cfg)
        wait_healthy(url)
        data = _stream()
        report: dict[str, Any] = {"seconds_per_phase": seconds, "concurrency": concurrency}
        with Load(url, token, data, concurrency) as load:
            marks = [time.perf_counter()]
            time.sleep(seconds)
            marks.append(time.perf_counter())
            report["task_kill"] = _kill_and_time("task-cls", recovery_timeout_s)
            time.sleep(seconds)  # the phase runs on past recovery: requests queued in the outage finish
            report["router_stats_before_its_kill"] = _stats(url, token)
            marks.append(time.perf_counter())
            report["router_kill"] = _kill_and_time("router", recovery_timeout_s)
            time.sleep(seconds)
            marks.append(time.perf_counter())
        marks[-1] = float("inf")  # requests still in flight when the load stops belong to the last phase
        names = ["baseline", "task replica killed", "router killed"]
        report["phases"] = {n: load.phase(a, b) for n, a, b in zip(names, marks, marks[1:])}
        return report
    finally:
        serve.shutdown()


def serve_multinode_drill(port: int = 8766, requests: int = 6) -> dict[str, Any]:
    """Serve on a loopback multi-node Ray: replicas land on both worker nodes and answer; the
    node under the cls replica is then lost and Serve re-places it on the survivor."""
    from omnicodec.runtime.ray_env import apply_local_env

    apply_local_env()  # before Ray is imported: it reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER at import
    import httpx
    import ray
    from ray import serve

    from omnicodec.runtime.cluster import loopback_cluster, process_nodes
    from omnicodec.runtime.ray_env import init_ray
    from omnicodec.serve.client import wait_healthy
    from omnicodec.serve.run import config_for_adaptors, deploy

    token = secrets.token_hex(16)
    cluster = loopback_cluster(2, 1)
    try:
        init_ray(address=cluster.address)
        one = [f"tasks.{t}.autoscaling.{k}=1" for t in ("cls", "seg", "det") for k in ("min_replicas", "max_replicas")]
        cfg = config_for_adaptors("zoo:adaptors-demo", [f"http_options.port={port}", f"auth.token={token}", *one])
        serve.start(http_options=cfg["http_options"], proxy_location="HeadOnly")  # one proxy: one port per machine
        url = deploy(cfg)
        wait_healthy(url)
        data = _stream()

        def placement() -> dict[str, str]:
            return {d: node for d in ("router", "task-cls", "task-seg", "task-det")
                    for node in process_nodes(cluster, f"ServeReplica:omnicodec:{d}").values()}

        def ask() -> list[int]:
            with httpx.Client(base_url=url, timeout=120, headers={"Authorization": f"Bearer {token}"}) as c:
                return [c.post("/v1/analyze", params={"tasks": "cls,seg,det"}, content=data).status_code
                        for _ in range(requests)]

        report: dict[str, Any] = {"placement": placement(), "statuses": ask()}
        victim = next(n for n in cluster.worker_nodes if n.node_id == report["placement"]["task-cls"])
        cluster.remove_node(victim, allow_graceful=False)
        report["killed_node"] = victim.node_id
        deadline = time.time() + 180
        while time.time() < deadline and not (placement().get("task-cls") not in (None, victim.node_id)
                                              and _healthy("task-cls") and _healthy("router")):
            time.sleep(0.5)
        report["placement_after"] = placement()
        report["statuses_after"] = ask()
        return report
    finally:
        serve.shutdown()
        ray.shutdown()
        cluster.shutdown()


def _healthy(deployment: str) -> bool:
    from ray import serve

    status = str(serve.status().applications["omnicodec"].deployments[deployment].status)
    return status.endswith("HEALTHY") and "UN" not in status


def _stats(url: str, token: str) -> dict[str, Any]:
    import httpx

    return httpx.get(f"{url}/v1/stats", headers={"Authorization": f"Bearer {token}"}, timeout=30).json()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m omnicodec.serve.chaos", description=__doc__.splitlines()[0])
    ap.add_argument("drill", nargs="?", choices=["replica-loss", "multinode"], default="replica-loss")
    ap.add_argument("--seconds", type=float, default=8.0, help="length of each of the three phases")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--port", type=int, default=int(os.environ.get("OMNICODEC_DRILL_PORT", 8765)))
    a = ap.parse_args(argv)
    if a.drill == "multinode":
        print(json.dumps(serve_multinode_drill(a.port)), flush=True)
    else:
        print(json.dumps(serve_fault_drill(a.seconds, a.concurrency, a.port)), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
