"""Loader throughput: the omnicodec WebDataset pipeline against raw PIL decoding.

Both read the same tar members of the same scene shards and decode what training
consumes (JPEG image, PNG semantic mask, JSON boxes, class; the instance mask is read
but not decoded by either). Baseline: a plain loop over
``tarfile`` + ``PIL`` + ``torch.from_numpy`` in 1 process, or 2 processes each taking
half the shards; the loader adds grouping, error accounting, shuffling-free batching
and collation. Goal: loader >= 0.9x the baseline's images/s at the same process count.
Run: .venv/bin/python benchmarks/bench_loader.py
"""

from __future__ import annotations

import io
import json
import multiprocessing as mp
import tarfile
import tempfile
import time

import numpy as np
import torch
from PIL import Image

from common import machine, print_table
from omnicodec.data.loader import LoaderConfig, make_loader
from omnicodec.data.scenes import build_scenes
from omnicodec.data.shards import resolve_shards


def raw_decode(urls: list[str]) -> int:
    n = 0
    for url in urls:
        with tarfile.open(url) as t:
            for m in t:
                data = t.extractfile(m).read()
                if m.name.endswith(".jpg"):
                    arr = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
                    torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255)
                    n += 1
                elif m.name.endswith(".seg.png"):
                    torch.from_numpy(np.asarray(Image.open(io.BytesIO(data)).convert("L")).astype(np.int64))
                elif m.name.endswith(".json"):
                    torch.tensor(json.loads(data)["boxes"], dtype=torch.float32)
                elif m.name.endswith(".cls"):
                    int(data)
    return n


def raw_rate(urls: list[str], procs: int) -> float:
    """samples/s; with ``procs`` > 1 the pool is started and warmed first (start-up excluded,
    as for the loader's worker processes)."""
    if procs == 1:
        t0 = time.perf_counter()
        return raw_decode(urls) / (time.perf_counter() - t0)
    with mp.get_context("forkserver").Pool(procs) as pool:
        pool.map(raw_decode, [urls[:1]] * procs)  # start and warm every process
        t0 = time.perf_counter()
        n = sum(pool.map(raw_decode, [urls[i::procs] for i in range(procs)]))
        return n / (time.perf_counter() - t0)


def loader_rate(urls: list[str], workers: int) -> tuple[float, float]:
    """(samples/s after the first batch, seconds to the first batch). Worker processes are
    started once per training segment and amortised over it; the start-up is its own column."""
    cfg = LoaderConfig(shards=urls, batch_size=16, crop=None, resampled=False, shardshuffle=False, shuffle_buffer=0,
                       num_workers=workers)
    t0 = time.perf_counter()
    it = iter(make_loader(cfg, rank=0, world_size=1))
    next(it)
    t1 = time.perf_counter()
    n = sum(len(b["keys"]) for b in it)
    return n / (time.perf_counter() - t1), t1 - t0


def main() -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d:
        build_scenes(d, train=960, test=0, size=192, maxcount=60, progress=False)
        urls = resolve_shards(d) * 4  # 3840 samples per measurement
        raw_decode(urls[:1])  # warm the page cache and PIL
        rows = []
        for procs in (1, 2):
            base = max(raw_rate(urls, procs) for _ in range(2))
            ours, start = max(loader_rate(urls, procs if procs > 1 else 0) for _ in range(2))
            rows.append([f"{procs}", base, ours, ours / base, start])
        # one loader worker process (decode off the training process), against 1 raw process
        ours1, start1 = max(loader_rate(urls, 1) for _ in range(2))
        rows.append(["1 (loader in 1 worker process)", rows[0][1], ours1, ours1 / rows[0][1], start1])
    print_table(f"samples/s over 4 passes of 960 scenes (192x192, 16 shards); {machine()}",
                ["processes", "raw PIL samples/s (baseline)", "omnicodec loader samples/s", "x baseline", "first batch s"],
                rows, "goal: >= 0.9x. Both decode jpg, seg.png, json and cls; both produce float images and int64 masks "
                "(worker processes send uint8, the consumer converts). Loader rates exclude the first batch (worker "
                "start-up, paid once per training segment: its own column).")


if __name__ == "__main__":
    main()
