"""``omnicodec``: one command line for data, training, evaluation, coding and serving.

The top layer (``jobs/omnicodec/cli``): it may import every layer below, and nothing below
imports it. One module per subcommand (``omnicodec/cli/<command>.py``), each with
``register(sub)`` adding its parser and its handler, which turns the parsed flags into typed
calls of the core, ``omnicodec.jobs`` and ``omnicodec.serve`` (no ``argparse.Namespace``
below the CLI); a new subcommand is one file plus its name in the ``SUBCOMMANDS`` registry's list. Every ``--help`` says what the command does, what it reads
and writes, and gives an example. User errors (bad files, configs, bitstreams) print one
line and exit 2; handlers import their heavy dependencies lazily so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from omnicodec import __version__
from omnicodec.cli._common import formatter
from omnicodec.errors import OmnicodecError
from omnicodec.registry import Registry

# the registry, in the order `omnicodec --help` lists them: each member is the module's
# ``register(sub)``, imported when the parser is built (modules import their handlers' needs lazily)
SUBCOMMANDS: Registry[Callable[[argparse._SubParsersAction], None]] = Registry("subcommand", lazy=True)
for _name in ("data", "pretrain", "train", "sweep", "eval", "encode", "decode", "info", "zoo", "serve", "client",
              "submit", "demo"):
    SUBCOMMANDS.add(_name, f"omnicodec.cli.{_name}:register")

EPILOG = """\
the pipeline, end to end:
  omnicodec data scenes --out DIR --train 2000 --test 200     make labelled multi-task shards
  omnicodec pretrain codec --quality 3                        train a base codec (or bring one)
  omnicodec train jobs/omnicodec/jobs/specs/train.yaml        train the adaptors on Ray Train
  omnicodec eval --run NAME --data DIR/test-{000000..000003}.tar   rate/accuracy report
  omnicodec encode photo.jpg -o photo.omc --adaptors CKPT    one bitstream ...
  omnicodec decode photo.omc --task seg -o seg.png           ... read by many machines
  omnicodec serve serve/omnicodec/serve/config.yaml          the HTTP router on Ray Serve
  omnicodec demo                                              all of it, small, in minutes
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="omnicodec", formatter_class=formatter, epilog=EPILOG,
        description="One bitstream from a frozen learned image codec, read by many machine tasks.",
    )
    p.add_argument("--version", action="version", version=f"omnicodec {__version__}")
    p.add_argument("--verbose", action="store_true", help="show Ray's own messages and worker logs on the console "
                                                          "(default: they go to a log file whose path is printed)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        SUBCOMMANDS.get(name)(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")  # via compressai
    args = build_parser().parse_args(argv)
    if args.verbose:
        os.environ["OMNICODEC_VERBOSE"] = "1"
    try:
        code = args.func(args)
    except OmnicodecError as e:
        print(f"omnicodec: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("omnicodec: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)
