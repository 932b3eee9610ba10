"""``omnicodec sweep``: a Ray Tune search whose report is the rate/accuracy Pareto front."""

from __future__ import annotations

import argparse

from omnicodec.cli._common import add_command


def register(sub: argparse._SubParsersAction) -> None:
    s = add_command(sub, "sweep", "Ray Tune search over adaptor sizes, lambda and task weights",
                    "Runs trials (each a Ray Train run) and reports the rate/accuracy Pareto front.\n\n"
                    "example: omnicodec sweep jobs/omnicodec/jobs/specs/sweep.yaml", _sweep)
    s.add_argument("config")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    s.add_argument("--address")


def _sweep(a: argparse.Namespace) -> None:
    from omnicodec.jobs.sweep import sweep_command

    sweep_command(a)
