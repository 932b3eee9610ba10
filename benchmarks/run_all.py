"""Every benchmark, one after the other: .venv/bin/python benchmarks/run_all.py"""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
for name in ("bench_rd.py", "bench_codec.py", "bench_loader.py", "bench_train.py", "bench_serve.py", "bench_sweep.py",
             "bench_faults.py"):
    print(f"\n=== {name}", flush=True)
    subprocess.run([sys.executable, os.path.join(HERE, name)], check=True, cwd=HERE)
