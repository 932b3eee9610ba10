"""Multi-node Ray on one machine: real raylets on 127.0.0.1 (a CPU-less head and two 1-CPU
nodes, so the two Ray Train workers run on different nodes). Losing a worker's node mid-run
(raylet and processes killed, no goodbye) and a replacement node joining must end in a
finished run that resumed from its last checkpoint, not from step 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import pytest

pytestmark = pytest.mark.ray


def test_training_survives_losing_a_workers_node_and_resumes_on_a_new_one():
    workdir = tempfile.mkdtemp(prefix="mn", dir="/tmp")  # short: Ray's socket paths must stay < 108 bytes
    proc = subprocess.run([sys.executable, "-m", "omnicodec.jobs.chaos", "node-loss", "--workdir", workdir,
                           "--steps", "12", "--every", "2"], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(lines[-1])
    assert report["error"] is None and report["step"] == 12
    assert len(report["nodes_before"]) == 2  # one worker per node
    assert report["killed_node"] in report["nodes_before"]
    assert report["killed_node"] not in report["nodes_after"] and report["replacement_node"] in report["nodes_after"]
    assert 0 < report["resumed_from"] < 12 and report["resumed_from"] % 2 == 0  # a checkpoint, not step 0
