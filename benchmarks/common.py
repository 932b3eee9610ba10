"""Shared helpers: timing with warm-up, and a table that always shows the baseline ratio."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable

for _k, _v in {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0", "WANDB_MODE": "offline"}.items():
    os.environ.setdefault(_k, _v)


def timeit(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn`` in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def print_table(title: str, head: list[str], rows: list[list[object]], note: str = "") -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    for h in head:
        t.add_column(h, justify="right")
    for r in rows:
        t.add_row(*[f"{v:.4g}" if isinstance(v, float) else str(v) for v in r])
    Console(width=160).print(t)
    if note:
        print(note)
    sys.stdout.flush()


def machine() -> str:
    import platform

    import torch

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"
