"""``omnicodec demo``: the whole pipeline, small, on embedded defaults (what `make demo` runs)."""

from __future__ import annotations

import argparse
import os

from omnicodec.cli._common import HOME, add_command


def register(sub: argparse._SubParsersAction) -> None:
    s = add_command(sub, "demo", "the whole pipeline on embedded defaults: local Ray, local shards, bundled weights",
                    "Builds (or reuses) small scene shards, trains one all-in-one adaptor set for cls, seg and det\n"
                    "on the photo codec with 2 Ray Train workers, evaluates it with the bundled sets of the same\n"
                    "codec (the rest of the curve, labelled bundled) against the frozen codec and JPEG from real\n"
                    "bitstreams, prints the table, BD-rates and the report path. About 9 minutes on 2 CPU cores.",
                    _demo)
    s.add_argument("--out", default=os.path.join(HOME, "demo"), help="where shards, runs and the report go")
    s.add_argument("--steps", type=int, default=None, help="training steps per lambda (default from demo.yaml)")
    s.add_argument("--fresh", action="store_true", help="retrain even if the demo runs exist")


def _demo(a: argparse.Namespace) -> None:
    from omnicodec.jobs.demo import run_demo

    run_demo(a.out, steps=a.steps, fresh=a.fresh)
