"""``omnicodec sweep``: a Ray Tune search whose report is the rate/accuracy Pareto front."""

from __future__ import annotations

import argparse

from omnicodec.cli._common import add_command, shipped_help


def register(sub: argparse._SubParsersAction) -> None:
    s = add_command(sub, "sweep", "Ray Tune search over adaptor sizes, lambda and task weights",
                    "Runs trials (each a Ray Train run) and reports the rate/accuracy Pareto front.\n\n"
                    "example: omnicodec sweep jobs/omnicodec/jobs/specs/sweep.yaml   (or by name: omnicodec sweep sweep)\n\n"
                    "Paths in the config and on the command line are taken from the folder you run in; a spec's\n"
                    "own relative `train:` from the spec's folder.\n" + shipped_help(), _sweep)
    s.add_argument("config", help="sweep YAML: a file, or a shipped spec's name (e.g. sweep, curves)")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    s.add_argument("--address")


def _sweep(a: argparse.Namespace) -> None:
    from omnicodec.jobs.sweep import sweep_command

    sweep_command(a)
