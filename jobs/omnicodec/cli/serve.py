"""``omnicodec serve``: the decoded-latent router on Ray Serve (entropy-decode once, fan out per task)."""

from __future__ import annotations

import argparse

from omnicodec.cli._common import add_command


def register(sub: argparse._SubParsersAction) -> None:
    s = add_command(sub, "serve", "run the decoded-latent router on Ray Serve",
                    "Starts (or joins) Ray, deploys the app described by CONFIG and serves HTTP until Ctrl-C.\n"
                    "Binds 127.0.0.1 unless the config says otherwise. With --adaptors instead of CONFIG, serves\n"
                    "every task of that one checkpoint (run name, run/checkpoint/adaptors folder or zoo:NAME).\n\n"
                    "example: omnicodec serve serve/omnicodec/serve/config.yaml\n"
                    "         omnicodec serve --adaptors allinone-l2 --set http_options.port=8001", _serve)
    s.add_argument("config", nargs="?", help="Ray Serve config YAML (http_options + applications)")
    s.add_argument("--adaptors", help="serve this one adaptor checkpoint's tasks (no config file needed)")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    s.add_argument("--address")


def _serve(a: argparse.Namespace) -> None:
    from omnicodec.errors import ConfigError
    from omnicodec.serve.run import config_for_adaptors, load_serve_file, serve_forever

    if bool(a.config) == bool(a.adaptors):
        raise ConfigError("give a serve CONFIG file or --adaptors CHECKPOINT (one of them)")
    config = load_serve_file(a.config, a.set) if a.config else config_for_adaptors(a.adaptors, a.set)
    serve_forever(config, a.address)
