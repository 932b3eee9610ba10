"""``omnicodec submit``: run an omnicodec command on a Ray cluster as a Ray Job.

The checkout travels as the job's ``working_dir`` (virtualenvs, shards, run outputs and
git metadata excluded) and the four source roots go on ``PYTHONPATH`` there, so the
cluster runs exactly this code; the cluster image provides the dependencies
(``infra/docker/Dockerfile``). Storage for runs should be shared (``s3://``, ``gs://``,
NFS): pass it with ``--set run.storage=...``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import time
from typing import Any

from omnicodec.errors import OmnicodecError

SOURCE_ROOTS = ("platform", "adaptors", "jobs", "serve")
# The bundled weights (over 100 MB with five photo-codec qualities) stay out of the upload: Ray
# caps a job's working_dir at 100 MiB, and the cluster image has them (pip install .), which
# omnicodec.zoo.weights_file finds; the JSON cards (fingerprints) do travel.
EXCLUDES = [".venv/", ".git/", "**/__pycache__/", "*.tar", "wandb/", "runs/", "report/", ".whl/", ".gl/", "*.omc",
            "platform/omnicodec/zoo/weights/*.safetensors", "benchmarks/results/"]


def repo_root() -> str:
    here = os.path.dirname(os.path.abspath(__file__))  # jobs/omnicodec/jobs
    return os.path.abspath(os.path.join(here, "..", "..", ".."))


def runtime_env(root: str | None = None) -> dict[str, Any]:
    root = root or repo_root()
    return {
        "working_dir": root,
        "excludes": EXCLUDES,
        "env_vars": {
            "PYTHONPATH": os.pathsep.join(SOURCE_ROOTS),
            "RAY_USAGE_STATS_ENABLED": "0",
            "WANDB_MODE": os.environ.get("WANDB_MODE", "offline"),
        },
    }


def submit(address: str, args: list[str], wait: bool = True, timeout_s: float | None = None) -> tuple[str, str]:
    from ray.job_submission import JobStatus, JobSubmissionClient

    if not args:
        raise OmnicodecError("nothing to run: give an omnicodec command after --, e.g. -- train spec.yaml")
    from omnicodec.jobs.ray_env import use_token_if_available

    use_token_if_available()
    client = JobSubmissionClient(address)
    job_id = client.submit_job(entrypoint="python -m omnicodec.cli " + shlex.join(args), runtime_env=runtime_env(),
                               metadata={"omnicodec": "1"})
    print(f"submitted {job_id} to {address}: omnicodec {shlex.join(args)}")
    if not wait:
        return job_id, "SUBMITTED"
    t0 = time.time()
    status = client.get_job_status(job_id)
    while status not in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
        if timeout_s is not None and time.time() - t0 > timeout_s:
            client.stop_job(job_id)
            raise OmnicodecError(f"job {job_id} did not finish within {timeout_s} s (stopped)")
        time.sleep(1.0)
        status = client.get_job_status(job_id)
    print(client.get_job_logs(job_id))
    return job_id, str(status)


def submit_command(a: argparse.Namespace) -> int:
    if not a.address:
        raise OmnicodecError("--address (or RAY_ADDRESS) is needed: the cluster's dashboard, e.g. http://head:8265")
    args = [x for x in a.args if x != "--"]
    _, status = submit(a.address, args, wait=not a.no_wait)
    return 0 if status in ("SUBMITTED", "SUCCEEDED", "JobStatus.SUCCEEDED") else 1
