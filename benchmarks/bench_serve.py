"""Serving: throughput and latency against the compute limit, and the decode-once dividend.

1. The compute limit, measured in this process first: the model time one request needs
   (entropy decode + per task g_s, T-Adaptors and network, one thread each as in the
   replicas). With one replica per deployment on C cores, no server can answer more than
   min(C / total, 1 / slowest deployment) requests/s; achieved req/s is reported as a
   fraction of it.
2. Concurrency sweep 1 / 4 / 16 (the perf_analyzer convention) for 1 and 3 tasks: req/s,
   p50 / p90 / p99, and how many requests shared an entropy-decode call (the router batches
   concurrent requests' decoding, off its event loop).
3. One 3-task request against 3 single-task requests (sequential).

Real Serve on 127.0.0.1, real HTTP, bitstreams encoded with the bundled demo adaptors.
Run: .venv/bin/python benchmarks/bench_serve.py
"""

from __future__ import annotations

import os
import socket
import statistics
import threading
import time

import httpx
import numpy as np
from PIL import Image

from common import machine, print_table, timeit

CONCURRENCY = (1, 4, 16)
TASK_SETS = ("cls", "cls,seg,det")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_load(url: str, data: bytes, tasks: str, concurrency: int, requests: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = max(1, requests // concurrency)

    def worker():
        c = httpx.Client(base_url=url, timeout=120)
        for _ in range(per_thread):
            t0 = time.perf_counter()
            r = c.post("/v1/analyze", params={"tasks": tasks}, content=data)
            assert r.status_code == 200, r.text
            with lock:
                latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(latencies) / (time.perf_counter() - t0), latencies


def model_times(data: bytes) -> dict[str, float]:
    """Median seconds of each model stage one request needs, one thread (as in a replica)."""
    import torch

    from omnicodec.model import OmniCodec
    from omnicodec.serve.core import TaskWorker

    torch.set_num_threads(1)
    model = OmniCodec.from_checkpoint("zoo:adaptors-demo")
    _, y_hat = model.decode_latent(data)
    header = {"height": 192, "width": 256}

    out = {"entropy decode": timeit(lambda: model.decode_latent(data), repeat=9)}
    for task in ("cls", "seg", "det"):
        worker = TaskWorker(task, "zoo:adaptors-demo")
        out[task] = timeit(lambda worker=worker: worker.run_batch([(y_hat, header)]), repeat=9)
    return out


def compute_limit(times: dict[str, float], tasks: str, cores: int) -> float:
    """req/s that model time alone allows: every core busy, no deployment over its one replica."""
    stages = [times["entropy decode"], *(times[t] for t in tasks.split(","))]
    return min(cores / sum(stages), 1 / max(stages))


def main() -> None:
    import skimage.data
    from ray import serve

    from omnicodec.images import to_tensor
    from omnicodec.model import OmniCodec
    from omnicodec.runtime.ray_env import init_ray
    from omnicodec.serve.client import wait_healthy
    from omnicodec.serve.run import deploy

    img = to_tensor(Image.fromarray(skimage.data.chelsea()[:192, :256]))
    data = OmniCodec.from_checkpoint("zoo:adaptors-demo").encode(img).to_bytes()
    times = model_times(data)
    init_ray(num_cpus=os.cpu_count() or 1)
    fixed = {"min_replicas": 1, "max_replicas": 1}
    args = {"tasks": {t: {"versions": {"v1": "zoo:adaptors-demo"}, "autoscaling": fixed, "max_batch_size": 4}
                      for t in ("cls", "seg", "det")}, "auth": {"token_env": None}}
    url = deploy({"http_options": {"host": "127.0.0.1", "port": _free_port()},
                  "applications": [{"name": "omnicodec", "route_prefix": "/", "args": args}]})
    try:
        c = httpx.Client(base_url=url, timeout=120)
        wait_healthy(c)
        for tasks in TASK_SETS:  # warm every replica and model
            c.post("/v1/analyze", params={"tasks": tasks}, content=data)
        cores = os.cpu_count() or 1
        rows = []
        for tasks in TASK_SETS:
            limit = compute_limit(times, tasks, cores)
            for conc in CONCURRENCY:
                before = c.get("/v1/stats").json()
                rps, lat = run_load(url, data, tasks, conc, max(16, 4 * conc))
                after = c.get("/v1/stats").json()
                decodes = after["latent_decodes"] - before["latent_decodes"]
                shared = decodes / max(1, after["decode_calls"] - before["decode_calls"])
                p50, p90, p99 = (1000 * float(np.percentile(lat, q)) for q in (50, 90, 99))
                rows.append([tasks, conc, len(lat), rps, limit, rps / limit, p50, p90, p99, decodes / len(lat), shared])
        print_table(f"/v1/analyze, one replica per deployment; {machine()}",
                    ["tasks", "concurrency", "requests", "req/s", "compute limit req/s", "x limit", "p50 ms",
                     "p90 ms", "p99 ms", "latent decodes / request", "requests / decode call"], rows,
                    "model time per request (one thread): " + ", ".join(f"{k} {1000 * v:.1f} ms" for k, v in times.items())
                    + f"; compute limit = min({cores} cores / total, 1 / slowest stage)")

        def seq(tasks_list: list[str], n: int = 12) -> float:
            durations = []
            for _ in range(n):
                t0 = time.perf_counter()
                for tasks in tasks_list:
                    assert c.post("/v1/analyze", params={"tasks": tasks}, content=data).status_code == 200
                durations.append(time.perf_counter() - t0)
            return statistics.median(durations)

        three_single = seq(["cls", "seg", "det"])
        one_triple = seq(["cls,seg,det"])
        print_table("one 3-task request against 3 single-task requests (sequential, median of 12)",
                    ["3 single-task requests (baseline) ms", "one 3-task request ms", "x baseline"],
                    [[1000 * three_single, 1000 * one_triple, one_triple / three_single]],
                    f"bitstream: {len(data)} bytes for a 256x192 image; the 3-task request parses and entropy-decodes it once")
    finally:
        serve.shutdown()


if __name__ == "__main__":
    main()
