"""Which Ray a local command uses (issue 27): its own loopback Ray, even with a `ray start`
cluster running on the machine, unless the user asks for a cluster (`--address` or
RAY_ADDRESS); a cluster that does not answer is one line within seconds, naming the address."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

OMNICODEC = os.path.join(os.path.dirname(sys.executable), "omnicodec")


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory):
    from omnicodec.data.scenes import build_scenes

    d = tmp_path_factory.mktemp("user")
    build_scenes(str(d / "shards"), train=2, test=2, size=64, maxcount=2, progress=False)
    return d


def _eval(user_dir, *extra: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """A plain `omnicodec eval` of the bundled demo adaptors on the user's shards, from their folder."""
    args = [OMNICODEC, "eval", "--adaptors", "zoo:adaptors-demo", "--data", "shards/test-*.tar", "--limit", "2",
            "--resamples", "0", "--pictures", "0", "--no-records-cache", "--out", "report", *extra]
    return subprocess.run(args, cwd=user_dir, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMNICODEC_HOME": str(user_dir / "home"), **(env or {})})


@pytest.mark.slow
@pytest.mark.parametrize("how", ["--address", "RAY_ADDRESS"])
def test_a_cluster_that_does_not_answer_is_one_line_within_seconds(user_dir, how, free_port):
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    t0 = time.perf_counter()
    out = _eval(user_dir, *(["--address", address] if how == "--address" else []),
                env={"RAY_ADDRESS": address} if how == "RAY_ADDRESS" else None, timeout=90)
    err = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(err) == 1, out.stderr[-3000:]
    assert f"no Ray cluster answers at {address} ({how}) within 5 s" in err[0], err[0]
    assert time.perf_counter() - t0 < 30


@pytest.fixture
def ray_start_cluster(free_port):
    """`ray start --head` on 127.0.0.1 as a user leaves it running: no CPUs to give, its address in
    the machine's Ray temp folder (RAY_TMPDIR here, so no other Ray on this machine sees it)."""
    tmpdir = tempfile.mkdtemp(prefix="rs", dir="/tmp")  # short: Ray's socket paths must stay < 108 bytes
    ray = os.path.join(os.path.dirname(sys.executable), "ray")
    env = {**os.environ, "RAY_TMPDIR": tmpdir, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    gcs = free_port()
    proc = subprocess.Popen([ray, "start", "--head", "--block", f"--port={gcs}", "--node-ip-address=127.0.0.1",
                             "--include-dashboard=false", "--num-cpus=0", f"--dashboard-agent-listen-port={free_port()}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while not os.path.exists(os.path.join(tmpdir, "ray", "ray_current_cluster")) and time.time() < deadline:
        time.sleep(1)
    assert proc.poll() is None, "ray start failed"
    yield tmpdir, f"127.0.0.1:{gcs}"
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    shutil.rmtree(tmpdir, ignore_errors=True)


@pytest.mark.cluster
def test_a_local_command_does_not_join_a_ray_start_cluster_by_itself(user_dir, ray_start_cluster):
    """Ray's own ray.init() joins the cluster named in the temp folder's ray_current_cluster; there
    (no CPUs) the evaluation's actors would wait forever. omnicodec starts its own local Ray."""
    tmpdir, address = ray_start_cluster
    out = _eval(user_dir, env={"RAY_TMPDIR": tmpdir}, timeout=240)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert (user_dir / "report" / "report.md").exists()
