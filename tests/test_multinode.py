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

pytestmark = [pytest.mark.ray, pytest.mark.cluster]


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
    assert report["resumed_from"] >= report["checkpoint_at_kill"]  # the newest: at most one interval lost


def test_serve_loses_no_request_to_a_dead_task_replica_and_only_in_flight_ones_to_a_dead_router():
    """A bounded load (4 clients, real HTTP on 127.0.0.1) while the cls replica, then the router
    replica, is SIGKILLed: the router retries a task call whose replica died, Serve brings both
    back, and only requests in flight on the dead router may fail."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run([sys.executable, "-m", "omnicodec.serve.chaos", "--seconds", "5", "--concurrency", "4",
                           "--port", str(port)], capture_output=True, text=True, timeout=600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(lines[-1])
    phases = report["phases"]
    assert phases["baseline"]["failed"] == 0 and phases["baseline"]["sent"] > 0
    assert phases["task replica killed"]["failed"] == 0, phases["task replica killed"]
    assert phases["router killed"]["failed"] <= 4, phases["router killed"]  # at most the requests in flight
    assert report["task_kill"]["healthy_again_after_s"] is not None
    assert report["router_kill"]["healthy_again_after_s"] is not None
    assert phases["router killed"]["sent"] > phases["router killed"]["failed"]  # serving again afterwards


def test_serve_replicas_on_two_nodes_answer_and_survive_losing_one():
    """One HTTP proxy on the head; the router and task replicas land on both worker nodes
    and answer; the node under the cls replica is lost and Serve re-places it."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run([sys.executable, "-m", "omnicodec.serve.chaos", "multinode", "--port", str(port)],
                          capture_output=True, text=True, timeout=600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(lines[-1])
    assert len(set(report["placement"].values())) == 2, report["placement"]  # replicas on both nodes
    assert report["statuses"] == [200] * 6
    assert report["killed_node"] not in report["placement_after"].values()
    assert report["statuses_after"] == [200] * 6, report
