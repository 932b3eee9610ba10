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
    """One launch (``runner.launch``): the inputs are checked once, before Ray starts and before
    any run folder (a bad one is one line, exit 2); a finished run says so; Ray starts only
    when Ray Train will train (not with ``--local``)."""
    from omnicodec.errors import OmnicodecError
    from omnicodec.jobs.adaptor_job import AdaptorTrainConfig
    from omnicodec.jobs.report_cli import print_train_summary
    from omnicodec.jobs.shipped import find_spec
    from omnicodec.jobs.train import launch_adaptors
    from omnicodec.runtime.ray_env import init_ray

    cfg = AdaptorTrainConfig.from_yaml(find_spec(a.config), a.set)  # every path absolute from here on
    result = launch_adaptors(cfg, local_device=a.local, start_ray=lambda: init_ray(a.address))
    if result.metrics.get("already_complete") and result.error is None:
        print(f"run '{cfg.run.name}' is already complete ({int(result.metrics['step'])}/{cfg.optim.steps} steps); "
              f"its adaptors: {result.metrics['adaptors']} (raise optim.steps to train longer, or use a new run.name)")
    else:
        print_train_summary(result)
        if result.error:
            raise OmnicodecError(f"run {cfg.run.name} failed: {result.error}")
        print(f"adaptors: {result.metrics['adaptors']}  (every command that takes adaptors also accepts the run "
              f"name '{cfg.run.name}')")
    if a.export:
        from omnicodec.model import OmniCodec

        model = OmniCodec.from_checkpoint(result.metrics["adaptors"])
        model.save(a.export, metadata={**model.metadata, "exported_from": result.metrics["adaptors"]})
        print(f"exported adaptors to {a.export}")
