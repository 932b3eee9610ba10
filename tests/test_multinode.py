"""A Ray cluster of two real nodes on one machine (loopback): `ray start --head` plus
`ray start --address`, each with its own CPU. A 2-worker training spans both nodes; the
second node is killed mid-run (its whole process group: raylet, workers) and started
again; the run resumes from its last registered checkpoint and finishes.

This lane (`make test-cluster`, run by CI after `make test`) needs no other cluster."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.cluster

BIN = os.path.dirname(sys.executable)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    return {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
            "WANDB_MODE": "disabled", "PATH": BIN + os.pathsep + os.environ.get("PATH", "")}


def _node_ports() -> list[str]:
    """Every port a node listens on, free and distinct (two nodes share one host)."""
    lo = _free_port()
    return [f"--node-manager-port={_free_port()}", f"--object-manager-port={_free_port()}",
            f"--dashboard-agent-listen-port={_free_port()}", f"--dashboard-agent-grpc-port={_free_port()}",
            f"--metrics-export-port={_free_port()}", f"--runtime-env-agent-port={_free_port()}",
            f"--min-worker-port={20000 + lo % 20000}", f"--max-worker-port={20000 + lo % 20000 + 200}"]


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([os.path.join(BIN, "ray"), "start", "--block", "--node-ip-address=127.0.0.1",
                             "--num-cpus=1", *_node_ports(), *args], env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _kill(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def _alive_nodes(address: str) -> int:
    out = subprocess.run([os.path.join(BIN, "python"), "-c",
                          "import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
                          "print(sum(n['Alive'] for n in ray.nodes()))", address],
                         env=_env(), capture_output=True, text=True, timeout=120)
    return int(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else -1


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> str:
    from omnicodec.data.scenes import build_scenes

    out = tmp_path_factory.mktemp("mn-scenes")
    build_scenes(str(out), train=16, test=2, size=96, maxcount=4, progress=False)
    return str(out)


def test_training_spans_two_nodes_and_resumes_after_one_is_lost(scenes, tmp_path):
    gcs = _free_port()
    address = f"127.0.0.1:{gcs}"
    head = _start(["--head", f"--port={gcs}", "--include-dashboard=false", f"--temp-dir={tmp_path / 'ray'}"])
    second = None
    try:
        _wait_for(lambda: _alive_nodes(address) == 1, 120, "the head node")
        second = _start([f"--address={address}"])
        _wait_for(lambda: _alive_nodes(address) == 2, 120, "the second node")

        # each node has ONE CPU and each of the 2 workers needs one: the run spans both nodes
        steps, every = 30, 5
        runs = tmp_path / "runs"
        train = subprocess.Popen(
            [os.path.join(BIN, "omnicodec"), "train", "jobs/omnicodec/jobs/specs/train.yaml", "--address", address,
             "--set", "run.name=two-nodes", "--set", f"run.storage={runs}", "--set", "run.num_workers=2",
             "--set", "run.cpus_per_worker=1", "--set", "run.max_failures=3", "--set", f"run.checkpoint_every={every}",
             "--set", "run.wandb.mode=disabled", "--set", f"optim.steps={steps}", "--set", "optim.warmup_steps=1",
             "--set", f"data.shards={scenes}/train-*.tar", "--set", "data.batch_size=2", "--set", "data.crop=64",
             "--set", "data.num_workers=0", "--set", "codec.arch=mbt2018-mean-small",
             "--set", "tasks=[{name: cls, loss: distill}]"],
            cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        snapshot = runs / "two-nodes" / "checkpoint_manager_snapshot.json"
        # a checkpoint is REGISTERED (not only written) before the node goes: see test_train's SIGKILL test
        _wait_for(lambda: snapshot.exists() and "checkpoint_" in snapshot.read_text() or train.poll() is not None,
                  300, "the first registered checkpoint")
        assert train.poll() is None, train.communicate()[0][-3000:]
        _kill(second)  # the node's raylet, its workers, its agents: all of it
        _wait_for(lambda: _alive_nodes(address) == 1, 120, "the cluster to notice the lost node")
        second = _start([f"--address={address}"])  # a replacement joins; the run gets its 2 CPUs back
        out, _ = train.communicate(timeout=600)
        assert train.returncode == 0, out[-3000:]
        resumed = int(re.search(r"resumed_from\s*\S\s*(\d+)", out).group(1))
        assert 0 < resumed < steps and resumed % every == 0, out[-2000:]
        assert re.search(rf"\bstep\s*\S\s*{steps}\b", out), out[-2000:]
    finally:
        if second is not None:
            _kill(second)
        _kill(head, signal.SIGTERM)  # never `ray stop`: it would stop every Ray on this machine
