"""``omnicodec train``: multi-task adaptor training on Ray Train (or one local device)."""

from __future__ import annotations

import argparse

from omnicodec.cli._common import add_command, shipped_help


def register(sub: argparse._SubParsersAction) -> None:
    s = add_command(sub, "train", "multi-task adaptor training on Ray Train (resumable)",
                    "Trains the shared S-Adaptor and one T-Adaptor stack per task against frozen task networks,\n"
                    "loss R + lambda * sum_t w_t L_t. Relaunching the same command resumes the run.\n\n"
                    "example: omnicodec train jobs/omnicodec/jobs/specs/train.yaml --set optim.steps=500 --set lmbda=2\n"
                    "         omnicodec train train --local cuda   (the shipped spec by name; one GPU, no Ray)\n\n"
                    "Paths in the config and on the command line are taken from the folder you run in.\n"
                    + shipped_help(), _train)
    s.add_argument("config", help="training YAML: a file, or a shipped spec's name (e.g. train)")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key (repeatable)")
    s.add_argument("--address", help="Ray address to join (default: start a local loopback Ray)")
    s.add_argument("--export", metavar="DIR", help="also copy the final adaptor checkpoint to DIR (path or URL)")
    s.add_argument("--local", nargs="?", const="cpu", metavar="DEVICE",
                   help="train in this process on one device (cpu, cuda, cuda:1), without Ray: same steps, same "
                        "run folder and resume; run.num_workers is ignored")


def _train(a: argparse.Namespace) -> None:
    from omnicodec.jobs.cli_jobs import train_command

    train_command(a)
