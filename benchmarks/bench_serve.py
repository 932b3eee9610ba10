"""Serving: requests/s and latency for 1 and 3 tasks at fixed concurrency, and the cost
of one 3-task request against 3 single-task requests (the decode-once dividend).

Real Serve on 127.0.0.1, real HTTP, bitstreams encoded with the bundled demo adaptors.
Run: .venv/bin/python benchmarks/bench_serve.py
"""

from __future__ import annotations

import socket
import statistics
import threading
import time

import httpx
import numpy as np
from PIL import Image

from common import machine, print_table

CONCURRENCY = 4
REQUESTS = 48


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_load(url: str, data: bytes, tasks: str) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = REQUESTS // CONCURRENCY

    def worker():
        c = httpx.Client(base_url=url, timeout=120)
        for _ in range(per_thread):
            t0 = time.perf_counter()
            r = c.post("/v1/analyze", params={"tasks": tasks}, content=data)
            assert r.status_code == 200, r.text
            with lock:
                latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(CONCURRENCY)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(latencies) / (time.perf_counter() - t0), latencies


def main() -> None:
    import skimage.data
    from ray import serve

    from omnicodec.images import to_tensor
    from omnicodec.jobs.ray_env import init_ray
    from omnicodec.model import OmniCodec
    from omnicodec.serve.run import deploy

    init_ray(num_cpus=2)
    fixed = {"min_replicas": 1, "max_replicas": 1}
    args = {"tasks": {t: {"versions": {"v1": "zoo:adaptors-demo"}, "autoscaling": fixed, "max_batch_size": 4}
                      for t in ("cls", "seg", "det")}, "auth": {"token_env": None}}
    url = deploy({"http_options": {"host": "127.0.0.1", "port": _free_port()},
                  "applications": [{"name": "omnicodec", "route_prefix": "/", "args": args}]})
    try:
        img = to_tensor(Image.fromarray(skimage.data.chelsea()[:192, :256]))
        data = OmniCodec.from_checkpoint("zoo:adaptors-demo").encode(img).to_bytes()
        c = httpx.Client(base_url=url, timeout=120)
        for _ in range(120):
            try:
                if c.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        for tasks in ("cls", "cls,seg,det"):  # warm every replica and model
            c.post("/v1/analyze", params={"tasks": tasks}, content=data)
        rows = []
        for tasks in ("cls", "cls,seg,det"):
            before = c.get("/v1/stats").json().get("latent_decodes", 0)
            rps, lat = run_load(url, data, tasks)
            decodes = (c.get("/v1/stats").json()["latent_decodes"] - before) / len(lat)
            rows.append([tasks, CONCURRENCY, len(lat), rps, 1000 * statistics.median(lat),
                         1000 * float(np.percentile(lat, 99)), decodes])
        print_table(f"/v1/analyze at fixed concurrency, one replica per deployment; {machine()}",
                    ["tasks", "concurrency", "requests", "req/s", "p50 ms", "p99 ms", "latent decodes / request"], rows)

        def seq(tasks_list: list[str], n: int = 12) -> float:
            times = []
            for _ in range(n):
                t0 = time.perf_counter()
                for tasks in tasks_list:
                    assert c.post("/v1/analyze", params={"tasks": tasks}, content=data).status_code == 200
                times.append(time.perf_counter() - t0)
            return statistics.median(times)

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
