"""`omnicodec submit` sends a real Ray Job to a real (local, loopback) Ray head."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from omnicodec.model import OmniCodec

pytestmark = pytest.mark.ray


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    """A second Ray head with the dashboard (job submission), on loopback ports of its own."""
    tmp = tmp_path_factory.mktemp("head")
    gcs, dash, agent = _free_port(), _free_port(), _free_port()
    ray = os.path.join(os.path.dirname(sys.executable), "ray")
    # jobs run `python` from the head's PATH: here, this virtualenv's (a cluster image's own python elsewhere)
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    proc = subprocess.Popen([ray, "start", "--head", "--block", f"--port={gcs}", "--node-ip-address=127.0.0.1",
                             "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", "--include-dashboard=true",
                             f"--dashboard-agent-listen-port={agent}", "--num-cpus=1", f"--temp-dir={tmp}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{dash}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            httpx.get(f"{url}/api/version", timeout=2)
            break
        except httpx.HTTPError:
            time.sleep(1)
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def test_submit_runs_an_omnicodec_command_on_the_cluster(head, trained_codec, photo, tmp_path):
    from omnicodec.jobs.submit import submit

    path = tmp_path / "x.omc"
    path.write_bytes(OmniCodec(trained_codec, with_adaptors=False).encode(photo).to_bytes())
    deadline = time.time() + 120
    while True:  # the head's job agent needs a few seconds after start
        try:
            job_id, status = submit(head, ["info", str(path)], wait=True, timeout_s=180)
            break
        except RuntimeError as e:
            if "No available agent" not in str(e) or time.time() > deadline:
                raise
            time.sleep(2)
    assert status.endswith("SUCCEEDED"), status
    from ray.job_submission import JobSubmissionClient

    logs = JobSubmissionClient(head).get_job_logs(job_id)
    header = json.loads(logs[logs.index("{"): logs.rindex("}") + 1])
    assert header["width"] == 300 and header["height"] == 200
