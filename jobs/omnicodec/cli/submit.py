"""``omnicodec submit``: any omnicodec command as a Ray Job on a cluster."""

from __future__ import annotations

import argparse
import os

from omnicodec.cli._common import add_command


def register(sub: argparse._SubParsersAction) -> None:
    s = add_command(sub, "submit", "submit a train/sweep/eval command to a Ray cluster as a Ray Job",
                    "Packages this checkout as the job's working_dir and runs `omnicodec ARGS...` on the cluster.\n\n"
                    "example: omnicodec submit --address http://head:8265 -- train jobs/omnicodec/jobs/specs/train.yaml",
                    _submit)
    s.add_argument("--address", default=os.environ.get("RAY_ADDRESS"), help="Ray dashboard address (http://HOST:8265)")
    s.add_argument("--no-wait", action="store_true")
    s.add_argument("args", nargs=argparse.REMAINDER, help="the omnicodec command to run there")


def _submit(a: argparse.Namespace) -> int:
    from omnicodec.jobs.submit import submit_and_wait

    return submit_and_wait(a.address, a.args, wait=not a.no_wait)
