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
    from rich.console import Console
    from rich.table import Table

    from omnicodec import storage
    from omnicodec.jobs.shipped import find_spec
    from omnicodec.jobs.sweep import SweepConfig, param_label, preflight_sweep, run_sweep
    from omnicodec.runtime.ray_env import init_ray

    cfg = SweepConfig.from_cli(find_spec(a.config), a.set)
    preflight_sweep(cfg)  # the training config, its shards and networks, eval_data: one line, before Ray
    init_ray(a.address)
    summary = run_sweep(cfg)
    t = Table(title=f"sweep {cfg.name}: {len(summary['trials'])} trials (* = Pareto front)")
    for c in ("trial", "bpp", "score", "config"):
        t.add_column(c)
    for tr in sorted(summary["trials"], key=lambda r: (r["eval_bpp"] is None, r["eval_bpp"] or 0)):
        mark = "*" if tr["trial"] in summary["pareto"] else ""
        t.add_row(mark + tr["trial"][:24], f"{tr['eval_bpp']:.4f}" if tr["eval_bpp"] is not None else tr["status"],
                  f"{tr['eval_score']:.4f}" if tr["eval_score"] is not None else "", param_label(tr["config"]))
    Console(width=120).print(t)
    print(f"report: {storage.join(cfg.storage, cfg.name, 'sweep.json')} (pareto.png, trials.csv)")
