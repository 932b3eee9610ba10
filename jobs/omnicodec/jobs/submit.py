"""``omnicodec submit``: run an omnicodec command on a Ray cluster as a Ray Job.

The checkout travels as the job's ``working_dir`` (virtualenvs, shards, run outputs, git
metadata and the bundled weights excluded: ``.rayignore``, which ``ray job submit
--working-dir .`` honours too) and the four source roots go on ``PYTHONPATH`` there, so the
cluster runs exactly this code; the cluster image provides the dependencies
(``infra/docker/Dockerfile``). The user's own files named on the command line (a config, the
network weights it names) travel as well (``omnicodec.jobs.job_files``), and the job runs
from their folder (``python -m omnicodec.cli._job``). The bundled weights (114 MiB, over Ray's
100 MiB upload cap) are found by the job at ``$OMNICODEC_ZOO_DIR``: this checkout's folder
when the cluster runs on this machine, else the value set here (a folder on the cluster),
else the cluster's installed omnicodec. Logs stream while the job runs. Storage for runs should be shared (``s3://``,
``gs://``, NFS): pass it with ``--set run.storage=...``.
"""

from __future__ import annotations

import os
import shlex
import socket
import sys
import tempfile
import time
from typing import Any
from urllib.parse import urlparse

from omnicodec.errors import OmnicodecError

SOURCE_ROOTS = ("platform", "adaptors", "jobs", "serve")
# What the checkout's upload leaves out is the checkout's .rayignore (with .gitignore), which Ray
# reads itself: no runtime_env "excludes", which Ray would also apply to the user's staged files.


def repo_root() -> str:
    here = os.path.dirname(os.path.abspath(__file__))  # jobs/omnicodec/jobs
    return os.path.abspath(os.path.join(here, "..", "..", ".."))


def cluster_is_here(address: str) -> bool:
    """Whether the cluster's address names this machine (its disk is the cluster's)."""
    host = urlparse(address if "://" in address else f"http://{address}").hostname or ""
    if host in ("127.0.0.1", "localhost", "::1", socket.gethostname(), socket.getfqdn()):
        return True
    try:
        return host in {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)}
    except OSError:
        return False


def zoo_env(address: str) -> dict[str, str]:
    """Where the job finds the bundled weights (they do not travel): this checkout's folder for a
    cluster on this machine, else the user's $OMNICODEC_ZOO_DIR (a folder on the cluster), else
    nothing (the cluster's installed omnicodec; the job's error then says how)."""
    from omnicodec.zoo import WEIGHTS_DIR

    if os.environ.get("OMNICODEC_ZOO_DIR"):
        return {"OMNICODEC_ZOO_DIR": os.environ["OMNICODEC_ZOO_DIR"]}
    if cluster_is_here(address) and any(WEIGHTS_DIR.glob("*.safetensors")):
        return {"OMNICODEC_ZOO_DIR": str(WEIGHTS_DIR)}
    print("note: the bundled weights do not travel with the job; the cluster reads them from its installed "
          "omnicodec, or set OMNICODEC_ZOO_DIR here to a folder on the cluster that holds them", file=sys.stderr)
    return {}


def runtime_env(root: str | None = None, job_files: str | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    root = root or repo_root()
    out: dict[str, Any] = {
        "working_dir": root,
        "env_vars": {
            "PYTHONPATH": os.pathsep.join(SOURCE_ROOTS),
            "RAY_USAGE_STATS_ENABLED": "0",
            "WANDB_MODE": os.environ.get("WANDB_MODE", "offline"),
            **(env or {}),
        },
    }
    if job_files:
        out["py_modules"] = [job_files]
    return out


def submit(address: str, args: list[str], wait: bool = True, timeout_s: float | None = None) -> tuple[str, str]:
    """Submit ``omnicodec ARGS`` with the user's files; stream its logs until it ends (``wait``)."""
    from ray.job_submission import JobSubmissionClient

    from omnicodec.jobs.job_files import PACKAGE, stage_command

    if not args:
        raise OmnicodecError("nothing to run: give an omnicodec command after --, e.g. -- train spec.yaml")
    from omnicodec.runtime.ray_env import use_token_if_available

    use_token_if_available()
    client = JobSubmissionClient(address)
    with tempfile.TemporaryDirectory(prefix="omnicodec-job-") as tmp:
        files = os.path.join(tmp, PACKAGE)
        staged = stage_command(list(args), files, local=cluster_is_here(address))
        job_id = client.submit_job(entrypoint="python -m omnicodec.cli._job " + shlex.join(staged),
                                   runtime_env=runtime_env(job_files=files, env=zoo_env(address)),
                                   metadata={"omnicodec": "1"})
    print(f"submitted {job_id} to {address}: omnicodec {shlex.join(args)}", flush=True)
    if not wait:
        return job_id, "SUBMITTED"
    return job_id, str(follow(client, job_id, timeout_s))


def follow(client: Any, job_id: str, timeout_s: float | None = None) -> Any:
    """Print the job's logs as they come (Ray's ``tail_job_logs``) and return its final status;
    a job still running after ``timeout_s`` is stopped."""
    import asyncio

    from ray.job_submission import JobStatus

    async def tail() -> None:
        async for lines in client.tail_job_logs(job_id):
            print(lines, end="", flush=True)

    async def tail_for(seconds: float | None) -> None:
        await asyncio.wait_for(tail(), seconds)

    try:
        asyncio.run(tail_for(timeout_s))
    except asyncio.TimeoutError:
        client.stop_job(job_id)
        raise OmnicodecError(f"job {job_id} did not finish within {timeout_s} s (stopped)") from None
    status = client.get_job_status(job_id)
    while status not in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):  # logs end just before
        time.sleep(0.5)
        status = client.get_job_status(job_id)
    return status


def submit_and_wait(address: str | None, args: list[str], wait: bool = True) -> int:
    """``omnicodec submit``: ``omnicodec ARGS`` as a Ray Job on the cluster at ``address`` (its
    dashboard); 0 when it succeeded (or was submitted, without ``wait``), else 1."""
    if not address:
        raise OmnicodecError("--address (or RAY_ADDRESS) is needed: the cluster's dashboard, e.g. http://head:8265")
    _, status = submit(address, [x for x in args if x != "--"], wait=wait)
    return 0 if status in ("SUBMITTED", "SUCCEEDED", "JobStatus.SUCCEEDED") else 1
